import { expect } from 'chai';
import { type KubeApiServer, SelectorError, matchesLabels, parseLabelSelector, startKubeApiServer } from '../../lib/testing/index.ts';
import { waitFor } from '../support/wait.ts';
import { apiError, clients, k8s, startWatch } from './kube-client.ts';

const NS = 'apps';

describe('label selector grammar', () => {
  const labels = { app: 'demo', tier: 'web', rank: '7', 'example.com/role': 'lead' };
  const cases: [string, boolean][] = [
    ['', true],
    ['app=demo', true],
    ['app==demo', true],
    ['app=other', false],
    ['app!=other', true],
    ['app!=demo', false],
    ['missing!=x', true],
    ['app in (demo,other)', true],
    ['app in (other)', false],
    ['missing in (x)', false],
    ['app notin (other)', true],
    ['app notin (demo)', false],
    ['missing notin (x)', true],
    ['app', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['rank>5', true],
    ['rank>7', false],
    ['rank<10', true],
    ['app>1', false],
    ['missing<10', false],
    ['example.com/role=lead', true],
    [' app = demo , tier in ( web ) ', true],
    ['app=demo,tier=db', false],
    ['tier in (foo,,web)', true],
  ];
  for (const [selector, expected] of cases) {
    it(`"${selector}" ${expected ? 'matches' : 'does not match'}`, () => {
      expect(matchesLabels(parseLabelSelector(selector), labels)).to.equal(expected);
    });
  }

  it('matches an empty value only where it is allowed', () => {
    expect(matchesLabels(parseLabelSelector('x in (foo,,baz)'), { x: '' })).to.equal(true);
    expect(matchesLabels(parseLabelSelector('x='), { x: '' })).to.equal(true);
  });

  for (const bad of ['app in ()', 'app in (a', '!', 'rank>x', 'app=a b', '=x', 'app notin a', 'bad key=x', 'a/b/c=x']) {
    it(`rejects "${bad}"`, () => {
      expect(() => parseLabelSelector(bad)).to.throw(SelectorError);
    });
  }
});

describe('kube-api test server: pods', () => {
  let server: KubeApiServer;
  let core: k8s.CoreV1Api;
  let kc: k8s.KubeConfig;

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: NS });
    ({ core, kc } = clients(server));
    server.createPod({ name: 'p-1', labels: { app: 'demo', group: 'g1', rank: '1' } });
    server.createPod({ name: 'p-2', labels: { app: 'demo', group: 'g2', rank: '5' }, ready: false });
    server.createPod({ name: 'p-3', labels: { app: 'other' }, phase: 'Pending' });
    server.createPod({ name: 'p-4', labels: { app: 'demo', group: 'g1' }, namespace: 'elsewhere' });
  });
  afterEach(async () => {
    await server.close();
  });

  const names = (list: k8s.V1PodList): string[] => list.items.map((p) => p.metadata!.name!);

  it('lists pods with every selector form through the real client', async () => {
    const sel = async (labelSelector: string) => names(await core.listNamespacedPod({ namespace: NS, labelSelector }));
    expect(await sel('app=demo')).to.deep.equal(['p-1', 'p-2']);
    expect(await sel('app==demo,group=g1')).to.deep.equal(['p-1']);
    expect(await sel('group!=g1')).to.deep.equal(['p-2', 'p-3']);
    expect(await sel('group in (g1,g2)')).to.deep.equal(['p-1', 'p-2']);
    expect(await sel('group notin (g1)')).to.deep.equal(['p-2', 'p-3']);
    expect(await sel('group')).to.deep.equal(['p-1', 'p-2']);
    expect(await sel('!group')).to.deep.equal(['p-3']);
    expect(await sel('rank>2')).to.deep.equal(['p-2']);
    expect(await sel('rank<2')).to.deep.equal(['p-1']);
    const bad = await apiError(core.listNamespacedPod({ namespace: NS, labelSelector: 'app in (' }));
    expect([bad.code, bad.body.reason]).to.deep.equal([400, 'BadRequest']);
  });

  it('filters by status.phase and metadata.name field selectors, and lists across namespaces', async () => {
    expect(names(await core.listNamespacedPod({ namespace: NS, fieldSelector: 'status.phase=Running' }))).to.deep.equal(['p-1', 'p-2']);
    expect(names(await core.listNamespacedPod({ namespace: NS, fieldSelector: 'status.phase!=Running' }))).to.deep.equal(['p-3']);
    expect(names(await core.listNamespacedPod({ namespace: NS, fieldSelector: 'metadata.name=p-2' }))).to.deep.equal(['p-2']);
    const all = await core.listPodForAllNamespaces({ labelSelector: 'group=g1' });
    expect(all.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).to.deep.equal(['apps/p-1', 'elsewhere/p-4']);
    const bad = await apiError(core.listNamespacedPod({ namespace: NS, fieldSelector: 'spec.bogus=x' }));
    expect([bad.code, bad.body.message]).to.deep.equal([400, 'field label not supported: spec.bogus']);
    const badLease = await apiError(
      clients(server).coord.listNamespacedLease({ namespace: NS, fieldSelector: 'spec.holderIdentity=x' }),
    );
    expect(badLease.body.message).to.equal('"spec.holderIdentity" is not a known field selector: only "metadata.name", "metadata.namespace"');
  });

  it('reports phase and readiness as conditions', async () => {
    const p1 = await core.readNamespacedPod({ name: 'p-1', namespace: NS });
    const ready = (p: k8s.V1Pod) => p.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    expect([p1.status?.phase, ready(p1)]).to.deep.equal(['Running', 'True']);
    const p2 = await core.readNamespacedPod({ name: 'p-2', namespace: NS });
    expect(ready(p2)).to.equal('False');
    server.setPodStatus('p-2', { ready: true });
    expect(ready(await core.readNamespacedPod({ name: 'p-2', namespace: NS }))).to.equal('True');
  });

  it('resets status on API create and changes it only through the status subresource', async () => {
    const created = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: 'api-pod', labels: { app: 'demo' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] }, status: { phase: 'Running' } },
    });
    expect(created.status?.phase).to.equal('Pending');
    const invalidPod = await apiError(core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'empty' }, spec: { containers: [] } } }));
    expect([invalidPod.code, invalidPod.body.message]).to.deep.equal([422, 'Pod "empty" is invalid: spec.containers: Required value']);

    const patched = await core.patchNamespacedPodStatus(
      { name: 'api-pod', namespace: NS, body: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    expect(patched.status?.phase).to.equal('Running');
    // A main-resource write cannot move the status.
    const replaced = await core.replaceNamespacedPod({ name: 'api-pod', namespace: NS, body: { ...patched, status: { phase: 'Failed' } } });
    expect(replaced.status?.phase).to.equal('Running');

    const deleted = await core.deleteNamespacedPod({ name: 'api-pod', namespace: NS });
    expect(deleted.kind).to.equal('Pod');
    expect(server.getPod('api-pod')).to.equal(undefined);
  });

  it('streams pod changes to a label-selected watch, turning "stopped matching" into DELETED', async () => {
    const w = await startWatch(kc, `/api/v1/namespaces/${NS}/pods`, { labelSelector: 'app=demo' });
    try {
      await waitFor(() => w.events.length === 2, { message: 'two initial ADDED events' });
      server.setPodStatus('p-1', { ready: false });
      await core.patchNamespacedPod(
        { name: 'p-2', namespace: NS, body: { metadata: { labels: { app: 'moved' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      server.createPod({ name: 'p-5', labels: { app: 'demo' } });
      server.deletePod('p-1');
      server.createPod({ name: 'p-6', labels: { app: 'unrelated' } });
      await waitFor(() => w.events.length === 6, { message: 'four more events' });
      expect(w.events.map((e) => `${e.type}:${e.object.metadata.name}`)).to.deep.equal([
        'ADDED:p-1',
        'ADDED:p-2',
        'MODIFIED:p-1',
        'DELETED:p-2',
        'ADDED:p-5',
        'DELETED:p-1',
      ]);
    } finally {
      w.stop();
    }
  });
});
