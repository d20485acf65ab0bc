import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '../../lib/engine/context.ts';
import { Exchange } from '../../lib/exchange/index.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import type { ClusterView } from '../../lib/cluster/cluster-service.ts';
import { startHealthServer, type HealthServer } from '../../lib/health/health-server.ts';
import { SAMPLES_PER_TICK, TICK_MS } from '../../lib/health/metrics.ts';
import { CLUSTER_SERVICE } from '../../lib/components/master/master-component.ts';
import type { MasterConsumer } from '../../lib/components/master/master-consumer.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

/** The value of one sample line of the Prometheus text, e.g. `name{a="b"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics and the console on the health port', function () {
  this.timeout(20_000);
  let context: Context;
  let cluster: ElectorClusterService;
  let view: ClusterView;
  let health: HealthServer;
  let release: () => void;
  let store: MemoryLockStore;
  const timings = validateTimings({ leaseDuration: 1000, renewDeadline: 600, retryPeriod: 100 });

  beforeEach(async () => {
    const { logger } = captureLogger();
    store = new MemoryLockStore();
    cluster = new ElectorClusterService({ kind: 'memory', memberId: 'm1', store, timings, logger });
    view = cluster.view('lock1');
    await cluster.start();
    context = new Context({ logger });
    context.addService(CLUSTER_SERVICE, cluster);
    let gate!: Promise<void>;
    gate = new Promise((resolve) => (release = resolve));
    await context.addRoutes((r) => {
      r.from('direct:ok').routeId('ok').setBody(() => 'fine');
      r.from('direct:bad').routeId('bad').process(() => {
        throw new RangeError('bad input');
      });
      r.from('direct:slow').routeId('slow').process(() => gate);
      r.from('master:lock1:timer:guarded?period=50').routeId('guarded').setBody(() => 'guarded');
    });
    // Before the routes start, as `dromedary run` does, so every route reports its durations.
    health = await startHealthServer({ context, cluster, port: 0 });
    await context.start();
  });

  afterEach(async () => {
    release();
    await health.close();
    await context.stop();
    await view.close();
    await cluster.stop();
  });

  it('counts exchanges per route and outcome, in flight, durations, leadership and term, and Node process metrics', async () => {
    const template = context.createProducerTemplate();
    for (let i = 0; i < 3; i += 1) await template.send('direct:ok', new Exchange({ body: i }));
    for (let i = 0; i < 2; i += 1) await template.send('direct:bad', new Exchange({ body: i }));
    const slow = template.send('direct:slow', new Exchange({ body: 'wait' }));
    await waitFor(() => view.isLeader, { timeout: 5000, message: 'm1 to lead lock1' });

    await waitFor(() => (context.route('guarded')!.consumer as MasterConsumer).isMaster, { timeout: 5000, message: 'the guarded route to consume on the leader' });
    const res = await fetch(`${health.url}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    // The master route consumes here once this member leads (the views of one lock agree at once).
    expect(sample(text, 'dromedary_route_consuming{route="guarded"}')).to.equal(1);
    expect(sample(text, 'dromedary_master_refused_total{route="guarded"}')).to.equal(0);
    expect(sample(text, 'dromedary_exchanges_total{route="ok",outcome="completed"}')).to.equal(3);
    expect(sample(text, 'dromedary_exchanges_total{route="ok",outcome="failed"}')).to.equal(0);
    expect(sample(text, 'dromedary_exchanges_total{route="bad",outcome="failed"}')).to.equal(2);
    expect(sample(text, 'dromedary_exchanges_total{route="slow",outcome="completed"}')).to.equal(0);
    expect(sample(text, 'dromedary_exchanges_inflight{route="slow"}')).to.equal(1);
    expect(sample(text, 'dromedary_exchanges_inflight{route="ok"}')).to.equal(0);
    expect(sample(text, 'dromedary_exchange_duration_seconds_count{route="ok",outcome="completed"}')).to.equal(3);
    expect(sample(text, 'dromedary_exchange_duration_seconds_count{route="bad",outcome="failed"}')).to.equal(2);
    expect(sample(text, 'dromedary_exchange_duration_seconds_bucket{le="+Inf",route="ok",outcome="completed"}')).to.equal(3);
    expect(sample(text, 'dromedary_route_started{route="ok"}')).to.equal(1);
    expect(sample(text, 'dromedary_route_consuming{route="ok"}')).to.equal(1);
    expect(sample(text, 'dromedary_lock_leader{lock="lock1"}')).to.equal(1);
    expect(sample(text, 'dromedary_lock_leader_known{lock="lock1"}')).to.equal(1);
    expect(sample(text, 'dromedary_lock_term{lock="lock1"}')).to.equal(view.term!.token);
    expect(sample(text, 'dromedary_lock_members{lock="lock1"}')).to.equal(1);
    // Leading now: every term it began but the current one also ended, so an odd count (1 unless a renewal was late).
    expect(sample(text, 'dromedary_lock_transitions_total{lock="lock1"}')! % 2).to.equal(1);
    expect(sample(text, 'dromedary_lock_last_renew_age_seconds{lock="lock1"}')).to.be.within(0, timings.renewDeadline / 1000);
    expect(text).to.match(/^# TYPE dromedary_lock_transitions_total counter$/m);
    // The election's store requests: it found no record and created it (then renews it by updates, below).
    expect(sample(text, 'dromedary_cluster_store_requests_total{verb="create",outcome="ok"}')).to.equal(1);
    expect(sample(text, 'dromedary_cluster_store_requests_total{verb="get",outcome="ok"}')).to.be.at.least(1);
    const updates = sample(text, 'dromedary_cluster_store_requests_total{verb="update",outcome="ok"}') ?? 0;
    expect(text).to.match(/^# TYPE dromedary_cluster_store_request_duration_seconds histogram$/m);
    expect(text).to.match(/^# TYPE dromedary_exchanges_total counter$/m);
    expect(text).to.match(/^# TYPE dromedary_exchange_duration_seconds histogram$/m);
    expect(text).to.match(/^process_cpu_seconds_total \d/m);
    expect(text).to.match(/^nodejs_eventloop_lag_seconds \d/m);

    // The slow exchange finishes: it moves from in flight to completed, and counters only grow.
    release();
    await slow;
    await template.send('direct:ok', new Exchange({ body: 'again' }));
    const after = await (await fetch(`${health.url}/metrics`)).text();
    expect(sample(after, 'dromedary_exchanges_inflight{route="slow"}')).to.equal(0);
    expect(sample(after, 'dromedary_exchanges_total{route="slow",outcome="completed"}')).to.equal(1);
    expect(sample(after, 'dromedary_exchanges_total{route="ok",outcome="completed"}')).to.equal(4);
    expect(sample(after, 'dromedary_exchanges_total{route="bad",outcome="failed"}')).to.equal(2);
    // Renewals go on every retryPeriod: the request counter grows from scrape to scrape, by what happened between them.
    await waitFor(async () => sample(await (await fetch(`${health.url}/metrics`)).text(), 'dromedary_cluster_store_requests_total{verb="update",outcome="ok"}')! > updates, {
      timeout: timings.renewDeadline * 5,
      message: 'more renewals counted',
    });
    const later = await (await fetch(`${health.url}/metrics`)).text();
    expect(sample(later, 'dromedary_cluster_store_requests_total{verb="create",outcome="ok"}')).to.equal(1);
    // Timed as they finish since the health port opened (the service started before it, so its first requests are only counted).
    expect(sample(later, 'dromedary_cluster_store_request_duration_seconds_count{verb="update"}')).to.be.at.least(1);
    expect(sample(later, 'dromedary_cluster_store_requests_total{verb="update",outcome="conflict"}')).to.equal(undefined);
  });

  it('times every exchange of a quiet route, and a sample of a busy one while counting them all', async () => {
    const template = context.createProducerTemplate();
    const scrape = async () => (await fetch(`${health.url}/metrics`)).text();
    const timed = (text: string) => sample(text, 'dromedary_exchange_duration_seconds_count{route="ok",outcome="completed"}') ?? 0;
    // A burst within one tick: the first SAMPLES_PER_TICK are timed, the rest only counted.
    const burst = SAMPLES_PER_TICK * 4;
    await Promise.all(Array.from({ length: burst }, (_, i) => template.send('direct:ok', new Exchange({ body: i }))));
    const afterBurst = await scrape();
    expect(sample(afterBurst, 'dromedary_exchanges_total{route="ok",outcome="completed"}')).to.equal(burst);
    expect(timed(afterBurst)).to.be.at.least(SAMPLES_PER_TICK).and.below(burst);
    // The next tick refills the budget: a quiet route's next exchange is timed.
    const before = timed(afterBurst);
    await waitFor(
      async () => {
        await template.send('direct:ok', new Exchange({ body: 'quiet' }));
        return timed(await scrape()) > before;
      },
      { timeout: TICK_MS * 20, interval: TICK_MS, message: 'an exchange after the next tick to be timed' },
    );
  });

  it('serves the console page and the overview it polls, read-only', async () => {
    const template = context.createProducerTemplate();
    await template.send('direct:ok', new Exchange({ body: 1 }));
    await template.send('direct:bad', new Exchange({ body: 1 }));
    await waitFor(() => (context.route('guarded')!.consumer as MasterConsumer).isMaster, { timeout: 5000, message: 'the guarded route to consume on the leader' });
    const page = await fetch(`${health.url}/`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).to.match(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(await page.text()).to.contain('<title>dromedary console</title>');
    const res = await fetch(`${health.url}/api/overview`);
    const o = (await res.json()) as Record<string, unknown> & { routes: Array<Record<string, unknown>>; locks: Array<Record<string, unknown>> };
    expect(o).to.include({ member: 'm1', kind: 'memory', state: 'started' });
    expect(o.routes.find((r) => r.id === 'ok')).to.deep.equal({ id: 'ok', endpoint: 'direct:ok', status: 'started', consuming: true, completed: 1, failed: 0, inflight: 0 });
    expect(o.routes.find((r) => r.id === 'guarded')).to.include({ status: 'started', consuming: true });
    expect(o.routes.find((r) => r.id === 'bad')).to.include({ completed: 0, failed: 1 });
    expect(o.locks).to.deep.equal([{ lock: 'lock1', leader: 'm1', isLeader: true, term: view.term!.token, members: [{ id: 'm1', isLeader: true, isLocal: true }] }]);
    // No endpoint here counts work of its own (direct:, timer:): the endpoints list is empty.
    expect(o.endpoints).to.deep.equal([]);
    expect((await fetch(`${health.url}/api/overview`, { method: 'POST' })).status).to.equal(405);
  });

  it('shows a follower: leader 0, a leader known, and no term', async () => {
    await waitFor(() => view.isLeader, { timeout: 5000, message: 'm1 to lead lock1' });
    const follower = new ElectorClusterService({ kind: 'memory', memberId: 'm2', store, timings, logger: captureLogger().logger });
    const followerView = follower.view('lock1');
    await follower.start();
    const followerContext = new Context({ logger: captureLogger().logger });
    followerContext.addService(CLUSTER_SERVICE, follower);
    await followerContext.addRoutes((r) => {
      r.from('master:lock1:timer:guarded?period=50').routeId('guarded').setBody(() => 'guarded');
    });
    const followerHealth = await startHealthServer({ context: followerContext, cluster: follower, port: 0 });
    await followerContext.start();
    try {
      await waitFor(() => followerView.leader === 'm1', { timeout: 5000, message: 'm2 to see m1 lead' });
      const text = await (await fetch(`${followerHealth.url}/metrics`)).text();
      // Started on the follower too, but not consuming there.
      expect(sample(text, 'dromedary_route_started{route="guarded"}')).to.equal(1);
      expect(sample(text, 'dromedary_route_consuming{route="guarded"}')).to.equal(0);
      const o = (await (await fetch(`${followerHealth.url}/api/overview`)).json()) as { routes: Array<Record<string, unknown>> };
      expect(o.routes.find((r) => r.id === 'guarded')).to.include({ status: 'started', consuming: false });
      expect(sample(text, 'dromedary_lock_leader{lock="lock1"}')).to.equal(0);
      expect(sample(text, 'dromedary_lock_leader_known{lock="lock1"}')).to.equal(1);
      expect(text).not.to.match(/^dromedary_lock_term\{/m);
      // Learning of the leader it found is no transition; it renews nothing.
      expect(sample(text, 'dromedary_lock_transitions_total{lock="lock1"}')).to.equal(0);
      expect(text).not.to.match(/^dromedary_lock_last_renew_age_seconds\{/m);
    } finally {
      await followerHealth.close();
      await followerContext.stop();
      await followerView.close();
      await follower.stop();
    }
  });
});

describe('prom-client is loaded only when the health port is on (end to end)', function () {
  this.timeout(60_000);
  let dir: string;
  const processes: ProcessHandle[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-metrics-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    await writeFile(
      join(dir, 'routes', 'probe.ts'),
      [
        "import { createRequire } from 'node:module';",
        "import { from } from 'dromedary';",
        'const require = createRequire(import.meta.url);',
        "from('timer:probe?period=200&delay=0').process(() => {",
        "  console.log(`prom-client loaded: ${Object.keys(require.cache).some((k) => k.includes('/prom-client/'))}`);",
        '});',
        '',
      ].join('\n'),
    );
  });

  afterEach(async () => {
    for (const p of processes.splice(0)) await p.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [flags, loaded] of [[[], false], [['--health-port', '0'], true]] as const) {
    it(`${flags.length === 0 ? 'without' : 'with'} --health-port: ${loaded}`, async () => {
      const p = spawnCli(['run', 'routes', '--cluster', 'none', ...flags], { cwd: dir });
      processes.push(p);
      const line = await p.waitForLine(/prom-client loaded: /, 20_000);
      expect(line).to.contain(`prom-client loaded: ${loaded}`);
    });
  }
});
