import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '../../../lib/testing/index.ts';
import { LeaseLockStore, leaseName } from '../../../lib/cluster/kubernetes/lease-store.ts';
import { loadClientNode, loadKubeConfig } from '../../../lib/cluster/kubernetes/client.ts';
import { createKubernetesClusterService, parseClusterLabels } from '../../../lib/cluster/kubernetes/index.ts';
import { resolveClusterConfig } from '../../../lib/cluster/config.ts';
import { LockConflictError, microTime, type LockRecord } from '../../../lib/cluster/election/lock-store.ts';
import type { ClusterService } from '../../../lib/cluster/cluster-service.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';

const signal = () => AbortSignal.timeout(5000);
const record = (holder: string, transitions = 0): LockRecord => ({
  holderIdentity: holder,
  leaseDurationMs: 15_000,
  acquireTime: microTime(),
  renewTime: microTime(),
  leaseTransitions: transitions,
});

describe('kubernetes backend: Lease lock store (against the API test server)', function () {
  this.timeout(30_000);
  let server: KubeApiServer;
  let dir: string;

  before(async () => {
    server = await startKubeApiServer({
      namespace: 'apps',
      tokens: {
        alpha: {},
        beta: {},
        gamma: {},
        readonly: { rules: [{ verbs: ['get', 'list', 'watch'], resources: ['leases'], apiGroups: ['coordination.k8s.io'] }] },
      },
    });
    dir = await mkdtemp(join(tmpdir(), 'dromedary-k8s-'));
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function kubeconfigFor(token: string): Promise<string> {
    const path = join(dir, `${token}.yaml`);
    await writeFile(path, server.kubeconfig({ token, namespace: 'apps' }));
    return path;
  }

  async function store(token: string) {
    const k8s = await loadClientNode();
    const kc = loadKubeConfig(k8s, { KUBECONFIG: await kubeconfigFor(token) });
    const capture = captureLogger();
    return { store: new LeaseLockStore(k8s, kc, { namespace: 'apps', prefix: 'orders', labels: { provider: 'dromedary', app: 'orders' }, watchIdleMs: 30_000, logger: capture.logger }), ...capture };
  }

  it('makes lock names valid DNS-1123 Lease names, one Lease per lock name: a name that had to change gets a hash suffix', () => {
    expect(leaseName('dromedary', 'lock1')).to.equal('dromedary-lock1');
    expect(leaseName('Orders', 'my-lock-2')).to.equal('orders-my-lock-2');
    expect(leaseName('Orders', 'My_Lock/2')).to.match(/^orders-my-lock-2-[0-9a-f]{8}$/);
    expect(leaseName('x', '--')).to.match(/^x-[0-9a-f]{8}$/);
    // The case: distinct locks that used to share one Lease.
    const names = ['orders-a', 'Orders_A', 'orders_a', 'ORDERS-A', 'orders.a'].map((lock) => leaseName('dromedary', lock));
    expect(new Set(names).size).to.equal(5);
    expect(names[0]).to.equal('dromedary-orders-a');
    const long = leaseName('dromedary', 'x'.repeat(300));
    expect(long.length).to.be.at.most(253);
    expect(long).not.to.equal(leaseName('dromedary', 'x'.repeat(301)));
    for (const name of [...names, long]) expect(name).to.match(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/);
  });

  it('keeps the holder instance, the release marker and the fencing token in annotations, holderIdentity readable', async () => {
    const { store: s } = await store('alpha');
    const held = { ...record('pod-a'), holderInstance: 'host-1-abcd', fencingToken: 1_764_000_000_123 };
    const created = await s.create('annotated', held, signal());
    const lease = server.getLease('orders-annotated', 'apps')!;
    expect((lease.spec as Record<string, unknown>).holderIdentity).to.equal('pod-a');
    expect(lease.metadata.annotations).to.deep.equal({ 'dromedary.io/lock': 'annotated', 'dromedary.io/holder-instance': 'host-1-abcd', 'dromedary.io/fencing-token': '1764000000123' });
    expect((await s.get('annotated', signal()))!.record).to.include({ holderInstance: 'host-1-abcd', fencingToken: 1_764_000_000_123 });
    const released = await s.update('annotated', { ...held, holderIdentity: '', releasedBy: 'host-1-abcd' }, created.version, signal());
    expect((await s.get('annotated', signal()))!.record).to.include({ holderIdentity: '', releasedBy: 'host-1-abcd', holderInstance: 'host-1-abcd' });
    // A later holder's replace drops the marker: it can never make that holder's record look released.
    await s.update('annotated', { ...record('pod-b', 1), holderInstance: 'host-2-ef01', fencingToken: 1_764_000_000_124 }, released.version, signal());
    expect(server.getLease('orders-annotated', 'apps')!.metadata.annotations).not.to.have.property('dromedary.io/released-by');
  });

  it('keeps the leader state in the dromedary.io/leader-state annotation as JSON, the same through a read and the watch, and carries it through a replace', async () => {
    const { store: s } = await store('alpha');
    const notices: Array<[string | undefined, LockRecord | null | undefined]> = [];
    const off = s.watch('stateful', (version, rec) => notices.push([version, rec]));
    try {
      await waitFor(() => s.watching('stateful'), { message: 'the watch to connect' });
      const state = { 'http-poll://api/events': { since: 35, etag: 'W/"a"' }, note: 'ü' };
      const created = await s.create('stateful', { ...record('pod-a'), holderInstance: 'host-1-abcd', fencingToken: 9, state }, signal());
      expect(server.getLease('orders-stateful', 'apps')!.metadata.annotations).to.include({ 'dromedary.io/leader-state': JSON.stringify(state) });
      const read = (await s.get('stateful', signal()))!.record;
      expect(read.state).to.deep.equal(state);
      const notified = await waitFor(() => notices.find(([version]) => version === created.version), { message: 'the creation to reach the watch' });
      expect(notified[1]).to.deep.equal(read);
      // A record without state (a release of a record that never had any) leaves no annotation behind.
      await s.update('stateful', { ...record('pod-a'), holderInstance: 'host-1-abcd', fencingToken: 9 }, created.version, signal());
      expect(server.getLease('orders-stateful', 'apps')!.metadata.annotations).not.to.have.property('dromedary.io/leader-state');
      expect((await s.get('stateful', signal()))!.record).not.to.have.property('state');
    } finally {
      off();
    }
  });

  it('gives the same record through a read and through the watch, so a follower\'s lease clock restarts only when the record changed', async () => {
    const { store: s } = await store('alpha');
    const notices: Array<[string | undefined, LockRecord | null | undefined]> = [];
    const off = s.watch('both-ways', (version, rec) => notices.push([version, rec]));
    try {
      await waitFor(() => s.watching('both-ways'), { message: 'the watch to connect' });
      const created = await s.create('both-ways', { ...record('pod-a'), holderInstance: 'host-1-abcd', fencingToken: 7 }, signal());
      const notified = await waitFor(() => notices.find(([version]) => version === created.version), { message: 'the creation to reach the watch' });
      expect(notified[1]).to.deep.equal((await s.get('both-ways', signal()))!.record);
    } finally {
      off();
    }
  });

  it('reports an update of a deleted Lease as a lost race, and its deletion to the watch as null', async () => {
    const { store: s } = await store('alpha');
    const created = await s.create('deleted', record('pod-a'), signal());
    const notices: Array<unknown> = [];
    const off = s.watch('deleted', (_version, rec) => notices.push(rec));
    try {
      await waitFor(() => s.watching('deleted'), { message: 'the watch to connect' });
      const k8s = await loadClientNode();
      const kc = loadKubeConfig(k8s, { KUBECONFIG: await kubeconfigFor('beta') });
      await kc.makeApiClient(k8s.CoordinationV1Api).deleteNamespacedLease({ name: 'orders-deleted', namespace: 'apps' });
      await waitFor(() => notices.includes(null), { message: 'the deletion to reach the watch' });
      await s.update('deleted', record('pod-a'), created.version, signal()).then(() => expect.fail('should conflict'), (e) => expect(e).to.be.instanceOf(LockConflictError));
    } finally {
      off();
    }
  });

  it('parses cluster labels and refuses malformed ones', () => {
    expect(parseClusterLabels('app=x, group=y')).to.deep.equal({ app: 'x', group: 'y' });
    expect(() => parseClusterLabels('app')).to.throw(/not key=value/);
  });

  it('refuses a DROMEDARY_K8S_WATCH_IDLE that is not a duration of at least 2s, saying what to set', async () => {
    for (const value of ['soon', '1s']) {
      const config = resolveClusterConfig({ flags: { cluster: 'kubernetes', memberId: 'x' }, env: { KUBECONFIG: await kubeconfigFor('alpha'), DROMEDARY_K8S_WATCH_IDLE: value } });
      let error: unknown;
      await createKubernetesClusterService(config, captureLogger().logger).catch((err: unknown) => (error = err));
      expect(String(error)).to.match(new RegExp(`DROMEDARY_K8S_WATCH_IDLE="${value}" is not a duration of at least 2s: use e\\.g\\. 30s`));
    }
  });

  it('creates, reads and replaces a Lease with client-go semantics', async () => {
    const { store: s } = await store('alpha');
    expect(await s.get('create-read', signal())).to.equal(undefined);
    const created = await s.create('create-read', record('pod-a'), signal());
    const lease = server.getLease('orders-create-read', 'apps')!;
    expect(lease.metadata.labels).to.deep.equal({ provider: 'dromedary', app: 'orders' });
    const spec = lease.spec as Record<string, unknown>;
    expect(spec.holderIdentity).to.equal('pod-a');
    expect(spec.leaseDurationSeconds).to.equal(15);
    expect(spec.renewTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(spec.acquireTime).to.match(/\.\d{6}Z$/);
    const read = (await s.get('create-read', signal()))!;
    expect(read.version).to.equal(created.version);
    expect(read.record.holderIdentity).to.equal('pod-a');
    expect(read.record.leaseDurationMs).to.equal(15_000);
    const updated = await s.update('create-read', record('pod-b', 1), read.version, signal());
    expect(updated.version).not.to.equal(read.version);
    expect((server.getLease('orders-create-read', 'apps')!.spec as Record<string, unknown>).leaseTransitions).to.equal(1);
  });

  it('turns 409s into lost races: a second create, and an update with a stale resourceVersion', async () => {
    const { store: a } = await store('alpha');
    const { store: b } = await store('beta');
    const first = await a.create('race', record('pod-a'), signal());
    await b.create('race', record('pod-b'), signal()).then(() => expect.fail('should conflict'), (e) => expect(e).to.be.instanceOf(LockConflictError));
    await a.update('race', record('pod-a'), first.version, signal());
    await b.update('race', record('pod-b'), first.version, signal()).then(() => expect.fail('should conflict'), (e) => expect(e).to.be.instanceOf(LockConflictError));
  });

  it('explains a 403: the verb, the resource, the namespace and where the Role is', async () => {
    const { store: s, lines } = await store('readonly');
    const err = await s.create('forbidden', record('pod-a'), signal()).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('Kubernetes refused to create leases.coordination.k8s.io in namespace apps (403 Forbidden');
    expect(err?.message).to.contain('examples/kubernetes/');
    expect(lines.some((l) => l.level === 'error' && l.message.includes('403'))).to.equal(true);
  });

  it('times requests out instead of hanging on an API server that never answers', async () => {
    const { store: s } = await store('gamma');
    server.faults('gamma').blackhole();
    try {
      const t0 = performance.now();
      const err = await s.get('blackholed', AbortSignal.timeout(300)).then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect(performance.now() - t0).to.be.below(3000);
    } finally {
      server.faults('gamma').clear();
    }
  });

  describe('cluster service', () => {
    const services: ClusterService[] = [];
    afterEach(async () => {
      for (const s of services.splice(0)) await s.stop();
      for (const t of ['alpha', 'beta', 'gamma']) server.faults(t).clear();
    });

    async function member(token: string) {
      const config = resolveClusterConfig({
        flags: { cluster: 'kubernetes', memberId: `pod-${token}`, timings: { leaseDuration: 1200, renewDeadline: 800, retryPeriod: 150 } },
        env: { KUBECONFIG: await kubeconfigFor(token), DROMEDARY_CLUSTER_LABELS: 'app=svc', DROMEDARY_K8S_LEASE_PREFIX: 'svc' },
      });
      const capture = captureLogger();
      const service = await createKubernetesClusterService(config, capture.logger);
      services.push(service);
      await service.start();
      return { service, view: service.view('lock1'), ...capture };
    }

    it('elects one member, and a member cut off from the API server steps down before another takes over', async () => {
      const members = [await member('alpha'), await member('beta'), await member('gamma')];
      const leader = await waitFor(() => members.find((m) => m.view.isLeader), { timeout: 5000 });
      expect(members.filter((m) => m.view.isLeader)).to.have.length(1);
      await waitFor(() => members.every((m) => m.view.leader === leader.service.memberId));
      const token = leader.service.memberId.replace('pod-', '');
      server.faults(token).blackhole();
      const next = await waitFor(() => members.find((m) => m !== leader && m.view.isLeader), { timeout: 5000 });
      expect(leader.view.isLeader, 'the cut-off leader still believes it leads').to.equal(false);
      expect(next).not.to.equal(leader);
      expect(leader.messages().join('\n')).to.contain('stepping down');
      const lease = server.getLease('svc-lock1', 'apps')!;
      expect((lease.spec as Record<string, unknown>).leaseTransitions).to.equal(1);
      expect(lease.metadata.labels).to.include({ app: 'svc', provider: 'dromedary' });
    });

    it('hands over at once when the leader stops gracefully (the Lease is released)', async () => {
      const a = await member('alpha');
      await waitFor(() => a.view.isLeader, { timeout: 5000 });
      const b = await member('beta');
      await waitFor(() => b.view.leader === 'pod-alpha');
      const t0 = performance.now();
      await a.service.stop();
      await waitFor(() => b.view.isLeader, { timeout: 2000 });
      expect(performance.now() - t0).to.be.below(1000);
    });

    it('warns when the release is answered with 5xx: the lock is free once its lease runs out, and no handover is claimed', async () => {
      const a = await member('alpha');
      await waitFor(() => a.view.isLeader, { timeout: 5000 });
      server.faults('alpha').fail(5, 503);
      await a.service.stop();
      const warning = a.lines.find((l) => l.level === 'warn' && l.message.includes('could not release lock1'));
      expect(warning?.message).to.match(/HTTP 503.*followers take it over once its lease runs out, up to 2000ms from its last renewal/);
      expect(a.messages()).not.to.include('no member leads lock1 now');
      expect((server.getLease('svc-lock1', 'apps')!.spec as Record<string, unknown>).holderIdentity).to.equal('pod-alpha');
    });

    /** Records each member's leading intervals from its view's events, and checks that none overlap. */
    function intervals(members: Array<{ service: ClusterService; view: ReturnType<ClusterService['view']> }>) {
      const closed: Array<[string, number, number]> = [];
      const open = new Map<string, number>();
      for (const m of members) {
        m.view.on('leadership', ({ isLocal }) => {
          const id = m.service.memberId;
          if (isLocal && !open.has(id)) open.set(id, performance.now());
          if (!isLocal && open.has(id)) {
            closed.push([id, open.get(id)!, performance.now()]);
            open.delete(id);
          }
        });
      }
      return () => {
        const all = [...closed, ...[...open].map(([id, t]) => [id, t, performance.now()] as [string, number, number])].sort((a, b) => a[1] - b[1]);
        for (let i = 1; i < all.length; i += 1) expect(all[i]![1], `${all[i - 1]![0]} and ${all[i]![0]} led at once`).to.be.at.least(all[i - 1]![2]);
        return all.length;
      };
    }

    it('keeps at most one leader through 5xx bursts and slow responses, and a leader once they end', async () => {
      const members = [await member('alpha'), await member('beta'), await member('gamma')];
      const check = intervals(members);
      await waitFor(() => members.some((m) => m.view.isLeader), { timeout: 5000 });
      const failedBefore = server.requests().filter((r) => r.fault === 'fail').length;
      for (const token of ['alpha', 'beta', 'gamma']) server.faults(token).failRate(0.5, 503).latency(100);
      // The burst lasts until the members have met 10 failed requests between them.
      await waitFor(() => server.requests().filter((r) => r.fault === 'fail').length >= failedBefore + 10, { timeout: 15_000 });
      for (const token of ['alpha', 'beta', 'gamma']) server.faults(token).clear();
      await waitFor(() => members.filter((m) => m.view.isLeader).length === 1, { timeout: 5000 });
      expect(check()).to.be.at.least(1);
    });

    it('keeps a single leader across an API server restart', async () => {
      const a = await member('alpha');
      const b = await member('beta');
      await waitFor(() => a.view.isLeader || b.view.isLeader, { timeout: 5000 });
      await server.restart();
      await waitFor(() => (a.view.isLeader ? 1 : 0) + (b.view.isLeader ? 1 : 0) === 1, { timeout: 5000 });
      expect(a.view.isLeader && b.view.isLeader).to.equal(false);
    });
  });
});
