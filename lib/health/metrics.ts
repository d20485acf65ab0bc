import type { Context } from '../engine/context.ts';
import type { Route } from '../engine/route.ts';
import type { ClusterService } from '../cluster/cluster-service.ts';
import { MasterConsumer } from '../components/master/master-consumer.ts';
import { isConsuming } from './overview.ts';
import { EXCHANGE_OBSERVER, type ExchangeListener, type ExchangeObserver } from '../spi/exchange-observer.ts';
import { endpointMetrics } from './endpoint-metrics.ts';

type PromClient = typeof import('prom-client');

export interface Metrics {
  /** The Prometheus text exposition of every metric. */
  text(): Promise<string>;
  readonly contentType: string;
}

/** The duration histogram times up to SAMPLES_PER_TICK exchanges per route every TICK_MS (all of them below 500/s). */
export const SAMPLES_PER_TICK = 50;
export const TICK_MS = 100;

/** Upper bounds in seconds of cluster store requests: a local file or memory, up to an API server near its timeout. */
const STORE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Upper bounds in seconds: from sub-millisecond in-memory routes to slow HTTP and broker calls. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics with prom-client, loaded only here (the health port is on). Route counts, lock
 * state and the components' endpoint counts are read from what the engine, the cluster service and
 * the endpoints already keep, when Prometheus scrapes; only the duration histogram is fed per exchange, through the context's ExchangeObserver.
 * Registers that observer on the context, so call it before the context starts its routes.
 */
export async function createMetrics(options: { context: Context; cluster?: ClusterService }): Promise<Metrics> {
  const prom: PromClient = await import('prom-client');
  const { context, cluster } = options;
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry });

  const duration = new prom.Histogram({
    name: 'dromedary_exchange_duration_seconds',
    help: 'Time from a route receiving an exchange to the route finishing it, failed or not',
    labelNames: ['route', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  // A clock read costs as much as a step: each route times at most SAMPLES_PER_TICK exchanges per
  // tick, so a quiet route has every exchange in the histogram and a busy one a steady sample,
  // while the exchanges beyond it cost one comparison.
  const budgets = new Set<{ left: number }>();
  let ticker: NodeJS.Timeout | undefined;
  const observer: ExchangeObserver = {
    forRoute(routeId: string): ExchangeListener {
      const completed = duration.labels({ route: routeId, outcome: 'completed' });
      const failed = duration.labels({ route: routeId, outcome: 'failed' });
      const budget = { left: SAMPLES_PER_TICK };
      budgets.add(budget);
      return {
        wants: () => budget.left > 0 && budget.left-- > 0,
        finished: (exchange, startedMs) => (exchange.exception === undefined ? completed : failed).observe((performance.now() - startedMs) / 1000),
      };
    },
    start: async () => {
      ticker ??= setInterval(() => {
        for (const budget of budgets) budget.left = SAMPLES_PER_TICK;
      }, TICK_MS).unref();
    },
    stop: async () => {
      clearInterval(ticker);
      ticker = undefined;
      budgets.clear();
    },
  };
  context.addService(EXCHANGE_OBSERVER, observer);

  // A route's counts restart with the route; the counters add what each Route object did since the last scrape.
  const seen = new WeakMap<Route, { completed: number; failed: number }>();
  new prom.Counter({
    name: 'dromedary_exchanges_total',
    help: 'Exchanges a route finished, by outcome (completed or failed)',
    labelNames: ['route', 'outcome'],
    registers: [registry],
    collect() {
      for (const route of context.routes) {
        const { total, failed, inflight } = route.stats;
        const completed = total - failed - inflight;
        const last = seen.get(route) ?? { completed: 0, failed: 0 };
        this.inc({ route: route.id, outcome: 'completed' }, Math.max(0, completed - last.completed));
        this.inc({ route: route.id, outcome: 'failed' }, Math.max(0, failed - last.failed));
        seen.set(route, { completed: Math.max(completed, last.completed), failed });
      }
    },
  });
  new prom.Gauge({
    name: 'dromedary_exchanges_inflight',
    help: 'Exchanges a route is processing now',
    labelNames: ['route'],
    registers: [registry],
    collect() {
      this.reset();
      for (const route of context.routes) this.set({ route: route.id }, route.inflight);
    },
  });
  new prom.Gauge({
    name: 'dromedary_route_started',
    help: '1 while a route is started and takes exchanges, 0 while it stops',
    labelNames: ['route'],
    registers: [registry],
    collect() {
      this.reset();
      for (const route of context.routes) this.set({ route: route.id }, route.status === 'started' ? 1 : 0);
    },
  });

  new prom.Gauge({
    name: 'dromedary_route_consuming',
    help: "1 while the route's consumer takes exchanges on this member (for a master: route, while this member leads), else 0",
    labelNames: ['route'],
    registers: [registry],
    collect() {
      this.reset();
      for (const route of context.routes) this.set({ route: route.id }, isConsuming(route) ? 1 : 0);
    },
  });
  const refusedSeen = new WeakMap<MasterConsumer, number>();
  new prom.Counter({
    name: 'dromedary_master_refused_total',
    help: "Exchanges a master: route's gate refused because this member's leadership had lapsed (fencing)",
    labelNames: ['route'],
    registers: [registry],
    collect() {
      for (const route of context.routes) {
        const consumer = route.consumer;
        if (!(consumer instanceof MasterConsumer)) continue;
        const last = refusedSeen.get(consumer) ?? 0;
        this.inc({ route: route.id }, Math.max(0, consumer.refused - last));
        refusedSeen.set(consumer, Math.max(last, consumer.refused));
      }
    },
  });

  if (cluster) {
    const locks = () =>
      cluster.locks.map((lock) => {
        // Another reference to a lock that already has views: closing it never stops the election.
        const view = cluster.view(lock);
        try {
          return { lock, isLeader: view.isLeader, leader: view.leader, token: view.term?.token, members: view.members.length, stats: view.stats };
        } finally {
          void view.close();
        }
      });
    new prom.Gauge({
      name: 'dromedary_lock_leader',
      help: '1 while this member leads the lock (its leadership valid now), else 0',
      labelNames: ['lock'],
      registers: [registry],
      collect() {
        this.reset();
        for (const l of locks()) this.set({ lock: l.lock }, l.isLeader ? 1 : 0);
      },
    });
    new prom.Gauge({
      name: 'dromedary_lock_leader_known',
      help: '1 while this member knows a leader of the lock (itself or another), 0 when none',
      labelNames: ['lock'],
      registers: [registry],
      collect() {
        this.reset();
        for (const l of locks()) this.set({ lock: l.lock }, l.leader === undefined ? 0 : 1);
      },
    });
    new prom.Gauge({
      name: 'dromedary_lock_term',
      help: "The fencing token of this member's current term of the lock; absent while it does not lead",
      labelNames: ['lock'],
      registers: [registry],
      collect() {
        this.reset();
        for (const l of locks()) if (l.token !== undefined) this.set({ lock: l.lock }, l.token);
      },
    });
    // A lock's election, and its count, starts over when its last view closes and a new one opens.
    const transitionsSeen = new Map<string, number>();
    new prom.Counter({
      name: 'dromedary_lock_transitions_total',
      help: 'Leadership transitions this member saw: terms it began, times it stopped leading, and changes of leader from one other member to another',
      labelNames: ['lock'],
      registers: [registry],
      collect() {
        for (const { lock, stats } of locks()) {
          const last = transitionsSeen.get(lock) ?? 0;
          this.inc({ lock }, stats.transitions >= last ? stats.transitions - last : stats.transitions);
          transitionsSeen.set(lock, stats.transitions);
        }
      },
    });
    new prom.Gauge({
      name: 'dromedary_lock_last_renew_age_seconds',
      help: "Seconds since this member's last successful renewal of the lock; absent while it does not lead",
      labelNames: ['lock'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { lock, stats } of locks()) if (stats.lastRenewAgeMs !== undefined) this.set({ lock }, stats.lastRenewAgeMs / 1000);
      },
    });
    new prom.Gauge({
      name: 'dromedary_lock_members',
      help: 'Members this member sees taking part in the lock, itself included',
      labelNames: ['lock'],
      registers: [registry],
      collect() {
        this.reset();
        for (const l of locks()) this.set({ lock: l.lock }, l.members);
      },
    });
  }

  const requests = cluster?.storeRequests;
  if (requests) {
    const requestsSeen = new Map<string, number>();
    new prom.Counter({
      name: 'dromedary_cluster_store_requests_total',
      help: 'Requests this member made to its cluster store, by verb (get, create, update, release, members, heartbeat) and outcome (ok, conflict, error, timeout)',
      labelNames: ['verb', 'outcome'],
      registers: [registry],
      collect() {
        for (const { verb, outcome, count } of requests.counts()) {
          const key = `${verb} ${outcome}`;
          this.inc({ verb, outcome }, count - (requestsSeen.get(key) ?? 0));
          requestsSeen.set(key, count);
        }
      },
    });
    const latency = new prom.Histogram({
      name: 'dromedary_cluster_store_request_duration_seconds',
      help: 'Time a cluster store request took, until it finished or was abandoned (timeout), by verb',
      labelNames: ['verb'],
      buckets: STORE_BUCKETS,
      registers: [registry],
    });
    // A few requests per retryPeriod: each observed as it finishes, for as long as the cluster service lives.
    requests.onRequest((verb, _outcome, seconds) => latency.observe({ verb }, seconds));
  }

  // The amqp and http-poll components' own counts (published, polls, backoff...), per endpoint.
  const refreshEndpoints = endpointMetrics({ prom, registry, endpoints: () => context.endpoints(), logger: context.logger });

  return {
    contentType: registry.contentType,
    text: async () => {
      await refreshEndpoints();
      return registry.metrics();
    },
  };
}
