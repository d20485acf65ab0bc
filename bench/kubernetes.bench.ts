import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import * as k8s from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from '../lib/testing/index.ts';
import { createKubernetesClusterService } from '../lib/cluster/kubernetes/index.ts';
import { resolveClusterConfig } from '../lib/cluster/config.ts';
import { DEFAULT_TIMINGS } from '../lib/cluster/election/timings.ts';
import type { ClusterService, ClusterView } from '../lib/cluster/cluster-service.ts';
import { fmt, median, printTable } from './measure.ts';

const MEMBERS = ['m1', 'm2', 'm3'];
const lockNames = (count: number) => Array.from({ length: count }, (_, i) => `lock${i}`);
/** The handover and failover part: 3 members, 10 locks. */
const LOCKS = lockNames(10);
const logger = winston.createLogger({ silent: true });
const { leaseDuration, renewDeadline, retryPeriod, jitter } = DEFAULT_TIMINGS;
const ENV_WINDOW = Number(process.env.K8S_BENCH_WINDOW_S ?? '');
/** The steady-state window, in seconds (K8S_BENCH_WINDOW_S). */
const WINDOW_S = Number.isFinite(ENV_WINDOW) && ENV_WINDOW > 0 ? ENV_WINDOW : 20;

/** What every contender offers the bench: who leads each lock here, and a way to stop. */
interface Member {
  id: string;
  leads(lock: string): boolean;
  stop(graceful: boolean): Promise<void>;
}

type MakeMember = (server: KubeApiServer, dir: string, id: string, prefix: string, locks: readonly string[]) => Promise<Member>;

/** dromedary's kubernetes backend, one ClusterService per member with its own client and token. */
function dromedaryMember(renewals: 'heartbeat' | 'per-lock'): MakeMember {
  return async (server, dir, id, prefix, locks) => {
    const kubeconfig = join(dir, `${id}.yaml`);
    await writeFile(kubeconfig, server.kubeconfig({ token: id }));
    const config = resolveClusterConfig({ flags: { cluster: 'kubernetes', memberId: id }, env: { KUBECONFIG: kubeconfig, DROMEDARY_K8S_LEASE_PREFIX: prefix, DROMEDARY_RENEWALS: renewals } });
    const service: ClusterService = await createKubernetesClusterService(config, logger);
    await service.start();
    const views = new Map<string, ClusterView>(locks.map((l) => [l, service.view(l)]));
    return {
      id,
      leads: (lock) => views.get(lock)!.isLeader,
      async stop(graceful) {
        if (graceful) await service.stop();
        else server.faults(id).blackhole(); // a crash, as the API server and the others see it
      },
    };
  };
}

/**
 * The references: client-go's tools/leaderelection loop, written out, one Lease per lock. Every
 * member tries each lock every retryPeriod × (1 + random × jitter) with a GET, then a PUT when it
 * holds the lock or the lock is free or expired by its own observation; the leader renews every
 * retryPeriod. No watch.
 * - `current`: today's client-go. The leader renews with one PUT of the Lease it last wrote (the
 *   optimistic fast path, falling back to GET on a failure), and with ReleaseOnCancel a stopping
 *   leader writes the Lease with an empty holder and a 1 s lease, so followers take it at their next try.
 * - `old`: client-go before the fast path, as the bench had it: the leader renews with GET then PUT,
 *   and never releases (a stopped leader just goes quiet).
 */
function referenceMember(loop: 'current' | 'old'): MakeMember {
  return async (server, _dir, id, prefix, locks) => {
    const kc = new k8s.KubeConfig();
    kc.loadFromString(server.kubeconfig({ token: id }));
    const api = kc.makeApiClient(k8s.CoordinationV1Api);
    const ns = server.namespace;
    const state = new Map<string, { validUntil: number; observedRv?: string; observedAt: number; timer?: NodeJS.Timeout; last?: k8s.V1Lease }>();
    let running = true;
    let reported = false;
    const leading = (s: { validUntil: number }) => performance.now() < s.validUntil;
    const tick = async (lock: string) => {
      const s = state.get(lock)!;
      const name = `${prefix}-${lock}`;
      const start = performance.now();
      const now = new k8s.V1MicroTime();
      const spec = { holderIdentity: id, leaseDurationSeconds: leaseDuration / 1000, acquireTime: now, renewTime: now, leaseTransitions: 0 };
      try {
        if (loop === 'current' && leading(s) && s.last) {
          // The fast path: the leader updates the Lease it last wrote, without reading it first.
          try {
            s.last = await api.replaceNamespacedLease({ name, namespace: ns, body: { ...s.last, spec: { ...s.last.spec, renewTime: now } } });
            s.validUntil = start + renewDeadline;
            return;
          } catch {
            // Falls back to the slow path below, as client-go does.
          }
        }
        let lease: k8s.V1Lease | undefined;
        try {
          lease = await api.readNamespacedLease({ name, namespace: ns });
        } catch (err) {
          if ((err as { code?: number }).code !== 404) throw err;
        }
        if (!lease) {
          s.last = await api.createNamespacedLease({ namespace: ns, body: { metadata: { name, namespace: ns }, spec } });
          s.validUntil = start + renewDeadline;
        } else {
          if (lease.metadata?.resourceVersion !== s.observedRv) {
            s.observedRv = lease.metadata?.resourceVersion;
            s.observedAt = performance.now();
          }
          const holder = lease.spec?.holderIdentity ?? '';
          const expired = s.observedAt + (lease.spec?.leaseDurationSeconds ?? 0) * 1000 < performance.now();
          if (holder === id || holder === '' || expired) {
            const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === id ? 0 : 1);
            const acquireTime = holder === id ? (lease.spec?.acquireTime ?? now) : now;
            s.last = await api.replaceNamespacedLease({ name, namespace: ns, body: { ...lease, spec: { ...spec, acquireTime, leaseTransitions: transitions } } });
            s.validUntil = start + renewDeadline;
          } else s.validUntil = -Infinity;
        }
      } catch (err) {
        // A failed try (a lost race is normal); the next one comes on schedule.
        if ((err as { code?: number }).code !== 409 && !reported) {
          reported = true;
          process.stderr.write(`[kubernetes bench, reference] ${id}: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}\n`);
        }
      } finally {
        if (running) s.timer = setTimeout(() => void tick(lock), leading(s) ? retryPeriod : retryPeriod * (1 + Math.random() * jitter));
      }
    };
    for (const lock of locks) {
      state.set(lock, { validUntil: -Infinity, observedAt: 0 });
      void tick(lock);
    }
    return {
      id,
      leads: (lock) => leading(state.get(lock)!),
      async stop(graceful) {
        running = false;
        for (const s of state.values()) clearTimeout(s.timer);
        if (!graceful || loop === 'old') return;
        // ReleaseOnCancel: an empty holder and a one-second lease on every Lease this member leads.
        await Promise.all(
          locks.map(async (lock) => {
            const s = state.get(lock)!;
            if (!leading(s) || !s.last) return;
            s.validUntil = -Infinity;
            const now = new k8s.V1MicroTime();
            const spec = { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: s.last.spec?.leaseTransitions ?? 0 };
            await api.replaceNamespacedLease({ name: `${prefix}-${lock}`, namespace: ns, body: { ...s.last, spec } }).catch(() => undefined);
          }),
        );
      },
    };
  };
}

function until(check: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve(performance.now()) : setTimeout(poll, 5));
    poll();
  });
}

interface Figures {
  handover: number[];
  crash: number[];
}

/** One graceful stop and one crash of the member leading most locks, with 3 members and 10 locks. */
async function measureFailover(make: MakeMember, name: string): Promise<Figures> {
  const server = await startKubeApiServer({ tokens: Object.fromEntries(MEMBERS.map((m) => [m, {}])) });
  const dir = await mkdtemp(join(tmpdir(), 'dromedary-bench-k8s-'));
  const figures: Figures = { handover: [], crash: [] };
  try {
    const progress = (text: string) => process.stderr.write(`[kubernetes bench, ${name}] ${text}\n`);
    let members = await Promise.all(MEMBERS.map((id) => make(server, dir, id, 'f', LOCKS)));
    await until(() => LOCKS.every((l) => members.some((m) => m.leads(l))));
    await new Promise((r) => setTimeout(r, 2 * retryPeriod));
    for (const graceful of [true, false]) {
      const leader = members.reduce((best, m) => (LOCKS.filter((l) => m.leads(l)).length > LOCKS.filter((l) => best.leads(l)).length ? m : best));
      const held = LOCKS.filter((l) => leader.leads(l));
      const others = members.filter((m) => m !== leader);
      const t0 = performance.now();
      await leader.stop(graceful);
      await Promise.all(
        held.map(async (lock) => {
          const t = await until(() => others.some((m) => m.leads(lock)));
          (graceful ? figures.handover : figures.crash).push(t - t0);
        }),
      );
      members = others;
      progress(`${graceful ? 'graceful handover' : 'crash failover'} of ${held.length} locks done`);
    }
    for (const m of members) await m.stop(true);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

interface Steady {
  /** Every member's requests per second (watches count one each). */
  all: number;
  /** The leader's. */
  leader: number;
}

/**
 * Steady-state requests/s with `count` locks: the first member starts alone and leads every lock,
 * then two followers join; requests are counted over a window once everything has settled.
 */
async function measureSteady(make: MakeMember, name: string, count: number): Promise<Steady> {
  const server = await startKubeApiServer({ tokens: Object.fromEntries(MEMBERS.map((m) => [m, {}])) });
  const dir = await mkdtemp(join(tmpdir(), 'dromedary-bench-k8s-'));
  const locks = lockNames(count);
  const members: Member[] = [];
  try {
    members.push(await make(server, dir, MEMBERS[0]!, 's', locks));
    await until(() => locks.every((l) => members[0]!.leads(l)));
    for (const id of MEMBERS.slice(1)) members.push(await make(server, dir, id, 's', locks));
    // Let followers settle (their first tries, the watches' first reopening), then count.
    await new Promise((r) => setTimeout(r, 2 * retryPeriod + 1000));
    server.resetRequestCounts();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const figures = { all: server.requestCount() / WINDOW_S, leader: server.requestCount(MEMBERS[0]) / WINDOW_S };
    if (!locks.every((l) => members[0]!.leads(l))) process.stderr.write(`[kubernetes bench, ${name}] the first member lost a lock during the window\n`);
    process.stderr.write(`[kubernetes bench, ${name}] ${count} locks: ${figures.all.toFixed(2)} requests/s, the leader ${figures.leader.toFixed(2)}\n`);
    return figures;
  } finally {
    for (const m of members) await m.stop(true);
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const heartbeat = dromedaryMember('heartbeat');
  const perLock = dromedaryMember('per-lock');
  const current = referenceMember('current');
  const old = referenceMember('old');
  const ms = (v: number) => `${fmt(v, 0)} ms`;
  const ratio = (a: number, b: number) => (a / b).toFixed(3);

  const steadyRows = [];
  for (const count of [1, 10, 100]) {
    const [hb, pl, ref] = [await measureSteady(heartbeat, 'dromedary, heartbeats', count), await measureSteady(perLock, 'dromedary, per-lock', count), await measureSteady(current, 'client-go', count)];
    const aim = count === 10 ? ' (aim ≤ 0.2)' : count === 100 ? ' (aim ≤ 0.05)' : '';
    steadyRows.push(
      {
        name: `API requests/s, ${count} lock${count === 1 ? '' : 's'}, heartbeat renewals (the leader's)`,
        value: `${fmt(hb.all, 2)} (${fmt(hb.leader, 2)})`,
        baseline: `${fmt(ref.all, 2)} (${fmt(ref.leader, 2)}) (client-go's current loop)`,
        ratio: `${ratio(hb.all, ref.all)} (${ratio(hb.leader, ref.leader)})`,
        note: `all members${aim}; the leader's in brackets`,
      },
      {
        name: `API requests/s, ${count} lock${count === 1 ? '' : 's'}, per-lock renewals (the leader's)`,
        value: `${fmt(pl.all, 2)} (${fmt(pl.leader, 2)})`,
        baseline: `${fmt(ref.all, 2)} (${fmt(ref.leader, 2)}) (client-go's current loop)`,
        ratio: `${ratio(pl.all, ref.all)} (${ratio(pl.leader, ref.leader)})`,
        note: 'one Lease write per lock and renewal, as client-go',
      },
    );
  }
  printTable(`Kubernetes Leases on the API test server, steady state (3 members, the first leading every lock; lease ${leaseDuration / 1000} s, renew ${renewDeadline / 1000} s, retry ${retryPeriod / 1000} s; ${WINDOW_S} s window)`, steadyRows);

  const ours = await measureFailover(heartbeat, 'dromedary, heartbeats');
  const oursPerLock = await measureFailover(perLock, 'dromedary, per-lock');
  const fair = await measureFailover(current, 'client-go, current loop');
  const before = await measureFailover(old, 'client-go, old loop');
  const row = (what: string, mine: number[], theirs: number[], label: string, note: string) => ({
    name: `${what} (${mine.length} locks)`,
    value: ms(median(mine)),
    baseline: `${ms(median(theirs))} (${label}, ${theirs.length} locks)`,
    ratio: ratio(median(mine), median(theirs)),
    note,
  });
  printTable(`Kubernetes Leases on the API test server, handover and failover (3 members, 10 locks; medians over the locks moved)`, [
    row('graceful handover, heartbeat renewals', ours.handover, fair.handover, "client-go's current loop with ReleaseOnCancel", 'aim: well under 1 s'),
    row('graceful handover, heartbeat renewals', ours.handover, before.handover, "client-go's old loop: GET+PUT, no release", ''),
    row('graceful handover, per-lock renewals', oursPerLock.handover, fair.handover, "client-go's current loop with ReleaseOnCancel", ''),
    row('graceful handover, per-lock renewals', oursPerLock.handover, before.handover, "client-go's old loop: GET+PUT, no release", ''),
    row('crash failover, heartbeat renewals', ours.crash, fair.crash, "client-go's current loop", `aim: ≤ leaseDuration + 0.5 s = ${leaseDuration + 500} ms`),
    row('crash failover, heartbeat renewals', ours.crash, before.crash, "client-go's old loop", ''),
    row('crash failover, per-lock renewals', oursPerLock.crash, fair.crash, "client-go's current loop", ''),
    row('crash failover, per-lock renewals', oursPerLock.crash, before.crash, "client-go's old loop", ''),
  ]);
}
