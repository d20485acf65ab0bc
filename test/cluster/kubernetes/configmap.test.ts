import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '../../../lib/testing/index.ts';
import { createKubernetesClusterService } from '../../../lib/cluster/kubernetes/index.ts';
import { ConfigMapLockStore } from '../../../lib/cluster/kubernetes/configmap-store.ts';
import { PodMembers } from '../../../lib/cluster/kubernetes/pod-members.ts';
import { loadClientNode, loadKubeConfig } from '../../../lib/cluster/kubernetes/client.ts';
import { LockConflictError, microTime, type LockRecord } from '../../../lib/cluster/election/lock-store.ts';
import { resolveClusterConfig } from '../../../lib/cluster/config.ts';
import type { ClusterService, ClusterView } from '../../../lib/cluster/cluster-service.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';

const LEASE = 1000;
const TEN = Array.from({ length: 10 }, (_, i) => `lock${i + 1}`);
const signal = () => AbortSignal.timeout(5000);
const record = (holder: string, token: number): LockRecord => ({
  holderIdentity: holder,
  holderInstance: `${holder}-instance`,
  leaseDurationMs: LEASE,
  acquireTime: microTime(),
  renewTime: microTime(),
  leaseTransitions: 0,
  fencingToken: token,
});
const released = (holder: string, token: number): LockRecord => ({ ...record('', token), holderInstance: `${holder}-instance`, releasedBy: `${holder}-instance` });

describe('kubernetes backend: ConfigMap mode, the seed protocol (against the API test server)', function () {
  this.timeout(30_000);
  let server: KubeApiServer;
  let dir: string;
  const services: ClusterService[] = [];
  const stores: ConfigMapLockStore[] = [];

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: 'cm', tokens: { p1: {}, p2: {}, p3: {}, outsider: {} } });
    dir = await mkdtemp(join(tmpdir(), 'dromedary-k8s-cm-'));
    for (const name of ['p1', 'p2', 'p3']) server.createPod({ name, namespace: 'cm', labels: { app: 'cm-app' }, phase: 'Running', ready: true });
  });

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    for (const s of stores.splice(0)) await s.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function kubeconfigFor(id: string): Promise<string> {
    const kubeconfig = join(dir, `${id}.yaml`);
    await writeFile(kubeconfig, server.kubeconfig({ token: id, namespace: 'cm' }));
    return kubeconfig;
  }

  async function member(id: string, leaseDuration = LEASE, capture = captureLogger(), renewDeadline = 700): Promise<{ service: ClusterService; view: ClusterView; started: number }> {
    const config = resolveClusterConfig({
      flags: { cluster: 'kubernetes', memberId: id, timings: { leaseDuration, renewDeadline, retryPeriod: 100 } },
      env: { KUBECONFIG: await kubeconfigFor(id), DROMEDARY_K8S_LOCK: 'configmap', DROMEDARY_CLUSTER_LABELS: 'app=cm-app' },
    });
    const service = await createKubernetesClusterService(config, capture.logger);
    services.push(service);
    const started = performance.now();
    await service.start();
    return { service, view: service.view('lock1'), started };
  }

  /** The lock store alone, as pod `id` would use it. */
  async function store(id: string): Promise<ConfigMapLockStore> {
    const k8s = await loadClientNode();
    const kc = loadKubeConfig(k8s, { KUBECONFIG: await kubeconfigFor(id) });
    const { logger } = captureLogger();
    const members = new PodMembers(k8s, kc, 'cm', { app: 'cm-app' }, 30_000, logger);
    const created = new ConfigMapLockStore(k8s, kc, { namespace: 'cm', name: 'leaders', labels: { provider: 'dromedary' }, leaseDurationMs: LEASE, members, watchIdleMs: 30_000, logger });
    stores.push(created);
    return created;
  }

  /** The terms begun per lock, from the elector's log. */
  const termsBegun = (messages: string[]) => {
    const terms = new Map<string, number>();
    for (const m of messages) {
      const lock = / begins a term of (\S+) /.exec(m)?.[1];
      if (lock) terms.set(lock, (terms.get(lock) ?? 0) + 1);
    }
    return terms;
  };

  const data = () => (server.getConfigMap('leaders', 'cm')?.data ?? {}) as Record<string, string>;

  it('records the holder in the leaders ConfigMap and starts leading only leaseDuration after taking the lock', async () => {
    const first = await member('p1');
    let ledAt: number | undefined;
    first.view.on('leadership', (event) => {
      if (event.isLocal) ledAt ??= Date.now();
    });
    await waitFor(() => data()['leader.pod.lock1'] === 'p1');
    await waitFor(() => ledAt !== undefined, { timeout: 5000 });
    // The wait counts from the start of the attempt that took the lock, which is before its write reached
    // the server by at most the call's timeout (the renew deadline, 700 ms). The leadership event can come
    // late on a busy machine, never early, so this bound holds under any load; leading at once would fail it.
    const [took] = server.requests({ token: 'p1', resource: 'configmaps' }).filter((r) => r.verb === 'create' || r.verb === 'update');
    expect(ledAt! - took!.time).to.be.at.least(LEASE - 700);
    expect(first.view.isLeader).to.equal(true);
    expect(data()['leader.local.timestamp.lock1']).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const second = await member('p2');
    await waitFor(() => second.view.leader === 'p1');
    expect(second.view.members.map((m) => m.id).sort()).to.include.members(['p1', 'p2']);
  });

  it("keeps other locks' keys when writing one lock, and removes its keys on release", async () => {
    const a = await member('p1');
    const other = a.service.view('lock2');
    await waitFor(() => data()['leader.pod.lock1'] === 'p1' && data()['leader.pod.lock2'] === 'p1');
    await other.close();
    await waitFor(() => data()['leader.pod.lock2'] === undefined);
    expect(data()['leader.pod.lock1']).to.equal('p1');
  });

  it('keeps the leader state in leader.state.<lock> beside the lock’s other keys, through a release, for the next leader', async () => {
    const a = await member('p1');
    await waitFor(() => a.view.isLeader, { timeout: 5000 });
    await a.view.state.set('cursor', { since: 12 });
    expect(JSON.parse(data()['leader.state.lock1']!)).to.deep.equal({ cursor: { since: 12 } });
    const b = await member('p2');
    await waitFor(() => b.view.leader === 'p1');
    expect(await b.view.state.get('cursor')).to.deep.equal({ since: 12 });
    await a.service.stop();
    expect(data()['leader.released.lock1'], 'p1 released lock1').to.be.a('string');
    expect(JSON.parse(data()['leader.state.lock1']!)).to.deep.equal({ cursor: { since: 12 } });
    await waitFor(() => b.view.isLeader, { timeout: 5000 });
    expect(await b.view.state.get('cursor')).to.deep.equal({ since: 12 });
    await b.view.state.set('cursor', { since: 13 });
    expect(JSON.parse(data()['leader.state.lock1']!)).to.deep.equal({ cursor: { since: 13 } });
  });

  it('releases every lock it holds on stop, though each release moves the version the others were read at', async () => {
    const a = await member('p1');
    const locks = ['lock2', 'lock3'].map((l) => a.service.view(l));
    await waitFor(() => a.view.isLeader && locks.every((v) => v.isLeader), { timeout: 5000 });
    await a.view.state.set('cursor', 1);
    await a.service.stop();
    for (const lock of ['lock1', 'lock2', 'lock3']) {
      expect(data(), lock).to.include({ [`leader.released.${lock}`]: data()[`leader.instance.${lock}`] });
      expect(data(), lock).not.to.have.property(`leader.pod.${lock}`);
    }
    expect(JSON.parse(data()['leader.state.lock1']!)).to.deep.equal({ cursor: 1 });
  });

  it('lets another member take a lock whose holder is no longer a live pod, while a healthy holder keeps it', async () => {
    const a = await member('p1');
    await waitFor(() => a.view.isLeader, { timeout: 5000 });
    const b = await member('p2');
    await waitFor(() => b.view.leader === 'p1');
    // The holder keeps renewing while its pod is Ready: nobody takes over.
    const writes = server.requests({ verb: 'update' }).length;
    await waitFor(() => server.requests({ verb: 'update' }).length > writes + 3);
    expect(b.view.isLeader).to.equal(false);
    // Its pod stops being Ready and it loses the API server: it must stop, and p2 may take over.
    server.setPodStatus('p1', { ready: false }, 'cm');
    server.faults('p1').blackhole();
    await waitFor(() => b.view.isLeader, { timeout: 8000 });
    expect(a.view.isLeader).to.equal(false);
    expect(data()['leader.pod.lock1']).to.equal('p2');
    server.faults('p1').clear();
  });

  it("judges a holder's silence by its own lock's keys: another lock's renewals in the same ConfigMap do not make it look alive", async () => {
    // The timestamps have whole seconds (and a byte-identical write is no change at all), so the
    // ConfigMap changes about once a second while anyone renews: a lease of several seconds tells
    // "silent holder" from "quiet second" apart.
    const lease = 3000;
    const a = await member('p1', lease);
    await waitFor(() => a.view.isLeader, { timeout: 2 * lease });
    const b = await member('p2', lease);
    const other = b.service.view('lock2');
    await waitFor(() => other.isLeader && b.view.leader === 'p1', { timeout: 2 * lease });
    // p1 is cut off but its pod stays Ready: it keeps lock1, while p2 renews lock2 in the same ConfigMap.
    server.faults('p1').blackhole();
    await waitFor(() => b.view.leader === undefined, { timeout: 3 * lease, message: "p2's view of p1's lease to run out" });
    expect(other.isLeader).to.equal(true);
    expect(b.view.isLeader, 'took a lock from a live pod').to.equal(false);
    expect(data()['leader.pod.lock1']).to.equal('p1');
    server.faults('p1').clear();
  });

  it('never lets a pod that is not a live member take a held lock', async () => {
    const a = await member('p1');
    await waitFor(() => a.view.isLeader, { timeout: 5000 });
    const outsider = await member('outsider');
    server.faults('p1').blackhole();
    await waitFor(() => !a.view.isLeader, { timeout: 5000 });
    const requests = server.requests({ token: 'outsider' }).length;
    await waitFor(() => server.requests({ token: 'outsider' }).length > requests + 5);
    expect(outsider.view.isLeader).to.equal(false);
    expect(data()['leader.pod.lock1']).to.equal('p1');
    server.faults('p1').clear();
  });

  describe('each lock has its own version, so writes for one lock never fail another lock\'s compare-and-swap', () => {
    /** Log lines of a member losing or failing to keep a lock, after the `since`-th line. */
    const troubleSince = (capture: ReturnType<typeof captureLogger>, since: number) =>
      capture.messages().slice(since).filter((m) => /Lost a race|stops leading|lost|could not/.test(m));

    /**
     * Member p1 leading lock2..lock10 with a renew deadline of 1.5 s (so that a busy machine's pauses do
     * not end its terms), and where its log stood once it led them all.
     */
    async function nineRenewing() {
      const renewing = captureLogger();
      const renewer = await member('p1', 2000, renewing, 1500);
      await renewer.view.close();
      const nine = TEN.slice(1).map((lock) => renewer.service.view(lock));
      await waitFor(() => nine.every((v) => v.isLeader), { timeout: 10_000 });
      return { renewing, since: renewing.messages().length };
    }

    it('a lone member holding 10 locks at short timings keeps one term per lock over many renewals, and loses no compare-and-swap', async () => {
      // A renew deadline of 1.5 s (renewals every 500 ms): a busy machine's pauses do not end terms,
      // while the old whole-ConfigMap version failed nearly every renewal, whatever the timings.
      const capture = captureLogger();
      const a = await member('p1', 2000, capture, 1500);
      const views = TEN.map((lock) => (lock === 'lock1' ? a.view : a.service.view(lock)));
      await waitFor(() => views.every((v) => v.isLeader), { timeout: 10_000, message: () => `all 10 locks led; leading: ${views.filter((v) => v.isLeader).length}` });
      const tokens = views.map((v) => v.term?.token);
      // (Before the first terms, all but one of the ten lose the race to create the ConfigMap.)
      const since = capture.messages().length;
      const updates = server.requests({ token: 'p1', verb: 'update' }).length;
      await waitFor(() => server.requests({ token: 'p1', verb: 'update' }).length >= updates + 50, { timeout: 30_000, message: '50 more renewals' });
      const trouble = troubleSince(capture, since);
      expect(trouble, 'nothing lost').to.deep.equal([]);
      expect(views.every((v) => v.isLeader), 'all 10 still led').to.equal(true);
      expect(views.map((v) => v.term?.token)).to.deep.equal(tokens);
      expect(Object.fromEntries(termsBegun(capture.messages()))).to.deep.equal(Object.fromEntries(TEN.map((lock) => [lock, 1])));
    });

    it("of two writers of one lock's version exactly one wins, though other locks are written between their read and their writes", async () => {
      // Another member renews nine locks in the same ConfigMap all along.
      const { renewing, since } = await nineRenewing();
      const [p2, p3, other] = [await store('p2'), await store('p3'), await store('p3')];
      for (let round = 1; round <= 10; round += 1) {
        const [seen2, seen3] = await Promise.all([p2.get('race', signal()), p3.get('race', signal())]);
        expect(seen2!.version, 'the same keys, the same version').to.equal(seen3!.version);
        // A write for another lock after the racers read: it must not decide their race.
        const otherNow = (await other.get('other', signal()))!;
        await other.update('other', record('p3', round), otherNow.version, signal());
        const outcomes = await Promise.allSettled([
          p2.update('race', record('p2', round), seen2!.version, signal()),
          p3.update('race', record('p3', round), seen3!.version, signal()),
        ]);
        const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [['p2', 'p3'][i]!] : []));
        expect(won, `round ${round}: one winner`).to.have.length(1);
        const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
        expect(lost.reason, `round ${round}`).to.be.instanceOf(LockConflictError);
        expect(data()['leader.pod.race'], `round ${round}`).to.equal(won[0]);
        expect(data()['leader.token.race'], `round ${round}`).to.equal(String(round));
      }
      expect(troubleSince(renewing, since), 'the nine renewed all along').to.deep.equal([]);
    });

    it('two members racing for one lock while another renews nine: one takes it, nobody else begins a term', async () => {
      // A renew deadline of 1.5 s for all: a busy machine's pauses do not end terms.
      const { renewing, since } = await nineRenewing();
      const [c2, c3] = [captureLogger(), captureLogger()];
      const [b, c] = await Promise.all([member('p2', 2000, c2, 1500), member('p3', 2000, c3, 1500)]);
      const racers = [b.service.view('race'), c.service.view('race')];
      await waitFor(() => racers.some((v) => v.isLeader), { timeout: 10_000 });
      // Five renewals of each of the nine later (several renew deadlines), still one leader of the race,
      // one term begun for it in all, and no new term of the nine.
      const updates = server.requests({ token: 'p1', verb: 'update' }).length;
      await waitFor(() => server.requests({ token: 'p1', verb: 'update' }).length >= updates + 45, { timeout: 30_000, message: '45 more renewals' });
      expect(troubleSince(renewing, since), 'the nine renewed all along').to.deep.equal([]);
      expect(racers.filter((v) => v.isLeader)).to.have.length(1);
      const raceTerms = [c2, c3].map((cap) => termsBegun(cap.messages()).get('race') ?? 0);
      expect(raceTerms.reduce((x, y) => x + y)).to.equal(1);
      expect(data()['leader.pod.race']).to.equal(racers[0]!.isLeader ? 'p2' : 'p3');
      expect(Object.fromEntries(termsBegun(renewing.messages()))).to.deep.equal(Object.fromEntries(TEN.slice(1).map((lock) => [lock, 1])));
    });

    it('releases of many locks at once all succeed at the first compare-and-swap', async () => {
      const holder = await store('p1');
      for (const [i, lock] of TEN.entries()) {
        const now = await holder.get(lock, signal());
        if (now) await holder.update(lock, record('p1', i), now.version, signal());
        else await holder.create(lock, record('p1', i), signal());
      }
      const seen = await Promise.all(TEN.map((lock) => holder.get(lock, signal())));
      const outcomes = await Promise.allSettled(TEN.map((lock, i) => holder.update(lock, released('p1', i), seen[i]!.version, signal())));
      expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'released'))).to.deep.equal(TEN.map(() => 'released'));
      for (const lock of TEN) expect(data(), lock).not.to.have.property(`leader.pod.${lock}`);
      // The same through the elector: a member stopping with 10 locks releases every one.
      const capture = captureLogger();
      const a = await member('p2', LEASE, capture);
      const views = TEN.map((lock) => (lock === 'lock1' ? a.view : a.service.view(lock)));
      await waitFor(() => views.every((v) => v.isLeader), { timeout: 5 * LEASE });
      await a.service.stop();
      for (const lock of TEN) expect(data(), lock).to.include({ [`leader.released.${lock}`]: data()[`leader.instance.${lock}`] });
      expect(capture.messages().filter((m) => / released lock\d+$/.test(m))).to.have.length(10);
    });
  });

  it("keeps Camel's keys readable, and a Camel member's write to a lock's keys changes that lock's version only", async () => {
    const a = await store('p1');
    await a.create('lock1', record('p1', 1), signal());
    const lock2 = (await a.get('lock2', signal()))!;
    await a.update('lock2', record('p1', 2), lock2.version, signal());
    const [v1, v2] = await Promise.all([a.get('lock1', signal()), a.get('lock2', signal())]);
    // Camel's write: its two keys, at the ConfigMap's resourceVersion, nothing else touched.
    const k8s = await loadClientNode();
    const core = loadKubeConfig(k8s, { KUBECONFIG: await kubeconfigFor('p3') }).makeApiClient(k8s.CoreV1Api);
    const map = await core.readNamespacedConfigMap({ name: 'leaders', namespace: 'cm' });
    expect(map.data).to.include({ 'leader.pod.lock1': 'p1', 'leader.pod.lock2': 'p1' });
    expect(map.data!['leader.local.timestamp.lock1']).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    map.data = { ...map.data, 'leader.pod.lock2': 'camel-pod', 'leader.local.timestamp.lock2': '2026-01-01T00:00:00Z' };
    await core.replaceNamespacedConfigMap({ name: 'leaders', namespace: 'cm', body: map });
    expect((await a.get('lock1', signal()))!.version).to.equal(v1!.version);
    const after = (await a.get('lock2', signal()))!;
    expect(after.version).not.to.equal(v2!.version);
    expect(after.record.holderIdentity).to.equal('camel-pod');
    const lost = await a.update('lock2', record('p1', 3), v2!.version, signal()).catch((err: unknown) => err);
    expect(lost).to.be.instanceOf(LockConflictError);
    expect(data()['leader.pod.lock2']).to.equal('camel-pod');
  });
});
