import { expect } from 'chai';
import { type KubeApiServer, startKubeApiServer } from '../../lib/testing/index.ts';
import { waitFor } from '../support/wait.ts';
import { apiError, clients, k8s, lease, startWatch } from './kube-client.ts';

const NS = 'team-a';
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

describe('kube-api test server with @kubernetes/client-node: leases and configmaps', () => {
  let server: KubeApiServer;
  let coord: k8s.CoordinationV1Api;
  let core: k8s.CoreV1Api;
  let kc: k8s.KubeConfig;

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: NS });
    ({ coord, core, kc } = clients(server));
  });
  afterEach(async () => {
    await server.close();
  });

  it('creates, reads, replaces, merge-patches, json-patches and deletes a lease', async () => {
    const created = await coord.createNamespacedLease({ namespace: NS, body: lease('lock-1', {}, { app: 'demo' }) });
    expect(created.kind).to.equal('Lease');
    expect(created.metadata?.uid).to.match(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.creationTimestamp).to.be.instanceOf(Date);
    expect(created.metadata?.resourceVersion).to.match(/^\d+$/);

    const read = await coord.readNamespacedLease({ name: 'lock-1', namespace: NS });
    expect(read.spec?.holderIdentity).to.equal('pod-a');
    expect(read.metadata?.labels).to.deep.equal({ app: 'demo' });

    read.spec!.holderIdentity = 'pod-b';
    const replaced = await coord.replaceNamespacedLease({ name: 'lock-1', namespace: NS, body: read });
    expect(replaced.spec?.holderIdentity).to.equal('pod-b');
    expect(Number(replaced.metadata?.resourceVersion)).to.be.greaterThan(Number(read.metadata?.resourceVersion));

    const merged = await coord.patchNamespacedLease(
      { name: 'lock-1', namespace: NS, body: { spec: { holderIdentity: 'pod-c' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(merged.spec?.holderIdentity).to.equal('pod-c');
    expect(merged.spec?.leaseDurationSeconds).to.equal(15);

    const strategic = await coord.patchNamespacedLease(
      { name: 'lock-1', namespace: NS, body: { spec: { leaseTransitions: 2 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    expect(strategic.spec?.leaseTransitions).to.equal(2);

    // The client's default patch type is JSON Patch.
    const jsonPatched = await coord.patchNamespacedLease({
      name: 'lock-1',
      namespace: NS,
      body: [
        { op: 'test', path: '/spec/holderIdentity', value: 'pod-c' },
        { op: 'replace', path: '/spec/holderIdentity', value: 'pod-d' },
      ],
    });
    expect(jsonPatched.spec?.holderIdentity).to.equal('pod-d');

    const failedTest = await apiError(
      coord.patchNamespacedLease({ name: 'lock-1', namespace: NS, body: [{ op: 'test', path: '/spec/holderIdentity', value: 'nobody' }] }),
    );
    expect(failedTest.code).to.equal(422);

    const list = await coord.listNamespacedLease({ namespace: NS });
    expect(list.items.map((l) => l.metadata?.name)).to.deep.equal(['lock-1']);
    expect(list.metadata?.resourceVersion).to.equal(jsonPatched.metadata?.resourceVersion);

    const status = await coord.deleteNamespacedLease({ name: 'lock-1', namespace: NS });
    expect(status.status).to.equal('Success');
    expect(status.details?.uid).to.equal(created.metadata?.uid);
    const gone = await apiError(coord.readNamespacedLease({ name: 'lock-1', namespace: NS }));
    expect(gone.code).to.equal(404);
    expect(gone.body.reason).to.equal('NotFound');
    expect(gone.body.message).to.equal('leases.coordination.k8s.io "lock-1" not found');
  });

  it('answers lost races and bad writes with the apiserver codes and reasons', async () => {
    const first = await coord.createNamespacedLease({ namespace: NS, body: lease('race') });

    const exists = await apiError(coord.createNamespacedLease({ namespace: NS, body: lease('race') }));
    expect([exists.code, exists.body.reason]).to.deep.equal([409, 'AlreadyExists']);

    await coord.replaceNamespacedLease({ name: 'race', namespace: NS, body: { ...first, spec: { ...first.spec, holderIdentity: 'pod-b' } } });
    const stale = await apiError(coord.replaceNamespacedLease({ name: 'race', namespace: NS, body: first }));
    expect([stale.code, stale.body.reason]).to.deep.equal([409, 'Conflict']);
    expect(stale.body.message).to.equal(
      'Operation cannot be fulfilled on leases.coordination.k8s.io "race": the object has been modified; please apply your changes to the latest version and try again',
    );

    const noRv = await apiError(coord.replaceNamespacedLease({ name: 'race', namespace: NS, body: lease('race') }));
    expect([noRv.code, noRv.body.reason, noRv.body.details.kind]).to.deep.equal([422, 'Invalid', 'leases']);

    const current = await coord.readNamespacedLease({ name: 'race', namespace: NS });
    const zero = await apiError(
      coord.replaceNamespacedLease({ name: 'race', namespace: NS, body: { ...current, spec: { ...current.spec, leaseDurationSeconds: 0 } } }),
    );
    expect([zero.code, zero.body.details.kind]).to.deep.equal([422, 'Lease']);
    expect(zero.body.message).to.equal(
      'Lease.coordination.k8s.io "race" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0',
    );
    const negative = await apiError(coord.createNamespacedLease({ namespace: NS, body: lease('neg', { leaseTransitions: -1 }) }));
    expect(negative.code).to.equal(422);
    expect(negative.body.details.causes[0].field).to.equal('spec.leaseTransitions');

    const rvOnCreate = await apiError(
      coord.createNamespacedLease({ namespace: NS, body: { ...lease('with-rv'), metadata: { name: 'with-rv', resourceVersion: '5' } } }),
    );
    expect(rvOnCreate.code).to.equal(500);
    expect(rvOnCreate.body.message).to.equal('resourceVersion should not be set on objects to be created');
    expect(rvOnCreate.body).to.not.have.property('reason');

    const mismatch = await apiError(coord.replaceNamespacedLease({ name: 'race', namespace: NS, body: { ...current, metadata: { ...current.metadata, name: 'other' } } }));
    expect(mismatch.code).to.equal(400);
    expect(mismatch.body.message).to.equal('the name of the object (other) does not match the name on the URL (race)');
  });

  it('creates a missing lease on PUT (201) unless the body carries a uid (409)', async () => {
    const res = await coord.replaceNamespacedLeaseWithHttpInfo({ name: 'fresh', namespace: NS, body: lease('fresh') });
    expect(res.httpStatusCode).to.equal(201);
    expect(res.data.metadata?.uid).to.be.a('string');

    const withUid = await apiError(
      coord.replaceNamespacedLease({
        name: 'ghost',
        namespace: NS,
        body: { ...lease('ghost'), metadata: { name: 'ghost', uid: '0b6a6d2e-9f3c-4a51-9c4e-1d2e3f4a5b6c' } },
      }),
    );
    expect([withUid.code, withUid.body.reason]).to.deep.equal([409, 'Conflict']);
    expect(withUid.body.message).to.contain('Precondition failed: UID in precondition: 0b6a6d2e-9f3c-4a51-9c4e-1d2e3f4a5b6c');
  });

  it('round-trips V1MicroTime with six digits and rejects a plain Date with 400', async () => {
    const t = new k8s.V1MicroTime('2026-03-04T05:06:07.123Z');
    const created = await coord.createNamespacedLease({ namespace: NS, body: lease('micro', { renewTime: t, acquireTime: t }) });
    // The client leaves MicroTime fields as strings on read.
    expect(created.spec?.renewTime as unknown).to.equal('2026-03-04T05:06:07.123000Z');
    const read = await coord.readNamespacedLease({ name: 'micro', namespace: NS });
    expect(read.spec?.acquireTime as unknown).to.equal('2026-03-04T05:06:07.123000Z');

    const bad = await apiError(
      coord.createNamespacedLease({ namespace: NS, body: lease('millis', { renewTime: new Date('2026-08-11T19:37:19.103Z') as k8s.V1MicroTime }) }),
    );
    expect([bad.code, bad.body.reason]).to.deep.equal([400, 'BadRequest']);
    expect(bad.body.message).to.equal(
      'Lease in version "v1" cannot be handled as a Lease: parsing time "2026-08-11T19:37:19.103Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".103Z" as ".000000"',
    );
  });

  it('shares one resourceVersion counter across resources and skips no-op writes', async () => {
    const a = await coord.createNamespacedLease({ namespace: NS, body: lease('rv-a') });
    const cm = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'rv-cm' }, data: { k: 'v' } } });
    expect(Number(cm.metadata?.resourceVersion)).to.equal(Number(a.metadata?.resourceVersion) + 1);

    const same = await coord.replaceNamespacedLease({ name: 'rv-a', namespace: NS, body: a });
    expect(same.metadata?.resourceVersion).to.equal(a.metadata?.resourceVersion);
    const samePatch = await coord.patchNamespacedLease(
      { name: 'rv-a', namespace: NS, body: { spec: { holderIdentity: 'pod-a' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(samePatch.metadata?.resourceVersion).to.equal(a.metadata?.resourceVersion);
    expect(server.store.resourceVersion).to.equal(Number(cm.metadata?.resourceVersion));
  });

  it('follows the ConfigMap strategy: unconditional PUT without RV, 404 for a missing one, stale RV 409', async () => {
    const cm = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'leaders' }, data: { 'leader.pod.a': 'p1' } } });
    const blind = await core.replaceNamespacedConfigMap({ name: 'leaders', namespace: NS, body: { metadata: { name: 'leaders' }, data: { 'leader.pod.a': 'p2' } } });
    expect(blind.data).to.deep.equal({ 'leader.pod.a': 'p2' });
    expect(blind.metadata?.uid).to.equal(cm.metadata?.uid);

    const stale = await apiError(core.replaceNamespacedConfigMap({ name: 'leaders', namespace: NS, body: cm }));
    expect([stale.code, stale.body.reason]).to.deep.equal([409, 'Conflict']);

    const missing = await apiError(core.replaceNamespacedConfigMap({ name: 'nope', namespace: NS, body: { metadata: { name: 'nope' }, data: {} } }));
    expect([missing.code, missing.body.message]).to.deep.equal([404, 'configmaps "nope" not found']);
    expect(missing.body.details).to.deep.equal({ name: 'nope', kind: 'configmaps' });

    const patched = await core.patchNamespacedConfigMap(
      { name: 'leaders', namespace: NS, body: { data: { 'leader.pod.b': 'p3' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(patched.data).to.deep.equal({ 'leader.pod.a': 'p2', 'leader.pod.b': 'p3' });

    const list = await core.listNamespacedConfigMap({ namespace: NS, fieldSelector: 'metadata.name=leaders' });
    expect(list.items).to.have.length(1);
    const deleted = await core.deleteNamespacedConfigMap({ name: 'leaders', namespace: NS });
    expect(deleted.details?.kind).to.equal('configmaps');
  });

  it('rejects a delete whose preconditions do not match', async () => {
    const created = await coord.createNamespacedLease({ namespace: NS, body: lease('pre') });
    const bad = await apiError(
      coord.deleteNamespacedLease({ name: 'pre', namespace: NS, body: { preconditions: { resourceVersion: '1' } } }),
    );
    expect([bad.code, bad.body.reason]).to.deep.equal([409, 'Conflict']);
    expect(bad.body.message).to.contain(`ResourceVersion in precondition: 1, ResourceVersion in object meta: ${created.metadata?.resourceVersion}`);
    await coord.deleteNamespacedLease({ name: 'pre', namespace: NS, body: { preconditions: { uid: created.metadata?.uid } } });
  });

  it('pages a list with limit and continue', async () => {
    for (const n of ['p-1', 'p-2', 'p-3']) await coord.createNamespacedLease({ namespace: NS, body: lease(n) });
    const page1 = await coord.listNamespacedLease({ namespace: NS, limit: 2 });
    expect(page1.items.map((l) => l.metadata?.name)).to.deep.equal(['p-1', 'p-2']);
    expect(page1.metadata?._continue).to.be.a('string');
    expect(page1.metadata?.remainingItemCount).to.equal(1);
    const page2 = await coord.listNamespacedLease({ namespace: NS, limit: 2, _continue: page1.metadata?._continue });
    expect(page2.items.map((l) => l.metadata?.name)).to.deep.equal(['p-3']);
    expect(page2.metadata?._continue).to.equal(undefined);
  });

  it('watches: synthetic ADDED first, then live events, with kind and apiVersion', async () => {
    await coord.createNamespacedLease({ namespace: NS, body: lease('w-1') });
    const w = await startWatch(kc, LEASES, {});
    try {
      await waitFor(() => w.events.length === 1, { message: 'initial ADDED' });
      expect(w.events[0]!.type).to.equal('ADDED');
      expect(w.events[0]!.object.kind).to.equal('Lease');
      expect(w.events[0]!.object.apiVersion).to.equal('coordination.k8s.io/v1');

      const cur = await coord.readNamespacedLease({ name: 'w-1', namespace: NS });
      await coord.replaceNamespacedLease({ name: 'w-1', namespace: NS, body: { ...cur, spec: { ...cur.spec, holderIdentity: 'pod-z' } } });
      await coord.deleteNamespacedLease({ name: 'w-1', namespace: NS });
      await waitFor(() => w.events.length === 3, { message: 'MODIFIED and DELETED' });
      expect(w.events.map((e) => e.type)).to.deep.equal(['ADDED', 'MODIFIED', 'DELETED']);
      expect(w.events[2]!.object.metadata.resourceVersion).to.equal(String(server.store.resourceVersion));
    } finally {
      w.stop();
    }
  });

  it('watches one object by fieldSelector and resumes from a resourceVersion', async () => {
    const a = await coord.createNamespacedLease({ namespace: NS, body: lease('one') });
    await coord.createNamespacedLease({ namespace: NS, body: lease('other') });
    const b = await coord.replaceNamespacedLease({ name: 'one', namespace: NS, body: { ...a, spec: { ...a.spec, holderIdentity: 'pod-b' } } });
    const w = await startWatch(kc, LEASES, { fieldSelector: 'metadata.name=one', resourceVersion: a.metadata?.resourceVersion });
    try {
      await waitFor(() => w.events.length === 1, { message: 'the MODIFIED after the given resourceVersion' });
      expect(w.events[0]!.type).to.equal('MODIFIED');
      expect(w.events[0]!.object.metadata.resourceVersion).to.equal(b.metadata?.resourceVersion);
      await coord.deleteNamespacedLease({ name: 'other', namespace: NS });
      await coord.deleteNamespacedLease({ name: 'one', namespace: NS });
      await waitFor(() => w.events.length === 2, { message: 'DELETED of the watched lease' });
      expect(w.events[1]!.type).to.equal('DELETED');
      expect(w.events.every((e) => e.object.metadata.name === 'one')).to.equal(true);
    } finally {
      w.stop();
    }
  });

  it('answers a too-old resourceVersion with 200, an ERROR 410 Expired event, then a close', async () => {
    const old = await coord.createNamespacedLease({ namespace: NS, body: lease('exp') });
    await coord.patchNamespacedLease(
      { name: 'exp', namespace: NS, body: { spec: { holderIdentity: 'pod-q' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    server.store.compact();
    const w = await startWatch(kc, LEASES, { resourceVersion: old.metadata?.resourceVersion });
    const err = await w.done;
    expect(err).to.equal(null);
    expect(w.events).to.have.length(1);
    expect(w.events[0]!.type).to.equal('ERROR');
    expect(w.events[0]!.object).to.include({ kind: 'Status', status: 'Failure', code: 410, reason: 'Expired' });
    expect(w.events[0]!.object.message).to.equal(`too old resource version: ${old.metadata?.resourceVersion} (${server.store.resourceVersion})`);
  });

  it('keeps a bounded history: a watch from before the oldest kept event expires', async () => {
    await server.close();
    server = await startKubeApiServer({ namespace: NS, historyLimit: 3 });
    ({ coord, kc } = clients(server));
    const first = await coord.createNamespacedLease({ namespace: NS, body: lease('h-0') });
    for (let i = 1; i <= 4; i++) await coord.createNamespacedLease({ namespace: NS, body: lease(`h-${i}`) });
    const w = await startWatch(kc, LEASES, { resourceVersion: first.metadata?.resourceVersion });
    await w.done;
    expect(w.events.map((e) => [e.type, e.object.code])).to.deep.equal([['ERROR', 410]]);
    const recent = await startWatch(kc, LEASES, { resourceVersion: String(server.store.resourceVersion - 2) });
    try {
      await waitFor(() => recent.events.length === 2, { message: 'the two retained events' });
      expect(recent.events.map((e) => e.object.metadata.name)).to.deep.equal(['h-3', 'h-4']);
    } finally {
      recent.stop();
    }
  });

  it('ends a watch at timeoutSeconds and sends bookmarks when allowed', async () => {
    await server.close();
    server = await startKubeApiServer({ namespace: NS, bookmarkIntervalMs: 100 });
    ({ kc } = clients(server));
    const w = await startWatch(kc, LEASES, { timeoutSeconds: 1, allowWatchBookmarks: true });
    const err = await w.done;
    expect(err).to.equal(null);
    const bookmarks = w.events.filter((e) => e.type === 'BOOKMARK');
    expect(bookmarks.length).to.be.greaterThan(0);
    expect(bookmarks[0]!.object).to.deep.equal({
      kind: 'Lease',
      apiVersion: 'coordination.k8s.io/v1',
      metadata: { resourceVersion: String(server.store.resourceVersion), creationTimestamp: null },
    });
  });

  it('feeds a client-node informer (list, then watch from the list resourceVersion)', async () => {
    await coord.createNamespacedLease({ namespace: NS, body: lease('inf-1') });
    const informer = k8s.makeInformer(kc, LEASES, () => coord.listNamespacedLease({ namespace: NS }));
    const seen: string[] = [];
    informer.on('add', (obj) => seen.push(`add:${obj.metadata?.name}`));
    informer.on('update', (obj) => seen.push(`update:${obj.metadata?.name}`));
    await informer.start();
    try {
      await coord.createNamespacedLease({ namespace: NS, body: lease('inf-2') });
      await waitFor(() => seen.includes('add:inf-2'), { message: 'the informer to see inf-2' });
      expect(seen).to.include('add:inf-1');
      expect(informer.list().map((l) => l.metadata?.name).sort()).to.deep.equal(['inf-1', 'inf-2']);
    } finally {
      await informer.stop();
    }
  });
});
