import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '../../../lib/testing/index.ts';
import { createKubernetesClusterService } from '../../../lib/cluster/kubernetes/index.ts';
import { resolveClusterConfig } from '../../../lib/cluster/config.ts';
import type { ClusterService, ClusterView } from '../../../lib/cluster/cluster-service.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';

const LEASE = 1000;

describe('kubernetes backend: ConfigMap mode, the seed protocol (against the API test server)', function () {
  this.timeout(30_000);
  let server: KubeApiServer;
  let dir: string;
  const services: ClusterService[] = [];

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: 'cm', tokens: { p1: {}, p2: {}, p3: {}, outsider: {} } });
    dir = await mkdtemp(join(tmpdir(), 'dromedary-k8s-cm-'));
    for (const name of ['p1', 'p2', 'p3']) server.createPod({ name, namespace: 'cm', labels: { app: 'cm-app' }, phase: 'Running', ready: true });
  });

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function member(id: string, leaseDuration = LEASE): Promise<{ service: ClusterService; view: ClusterView; started: number }> {
    const kubeconfig = join(dir, `${id}.yaml`);
    await writeFile(kubeconfig, server.kubeconfig({ token: id, namespace: 'cm' }));
    const config = resolveClusterConfig({
      flags: { cluster: 'kubernetes', memberId: id, timings: { leaseDuration, renewDeadline: 700, retryPeriod: 100 } },
      env: { KUBECONFIG: kubeconfig, DROMEDARY_K8S_LOCK: 'configmap', DROMEDARY_CLUSTER_LABELS: 'app=cm-app' },
    });
    const service = await createKubernetesClusterService(config, captureLogger().logger);
    services.push(service);
    const started = performance.now();
    await service.start();
    return { service, view: service.view('lock1'), started };
  }

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
});
