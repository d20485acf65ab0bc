import { expect } from 'chai';
import { type KubeApiServer, startKubeApiServer } from '../../lib/testing/index.ts';
import { waitFor } from '../support/wait.ts';
import { apiError, clients, k8s, lease, startWatch } from './kube-client.ts';

const NS = 'chaos';
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

/** Request options that abort the call after `ms`: client-node sets no timeout of its own. */
function timeout(ms: number) {
  const opts = k8s.setHeaderOptions('X-Test-Timeout', String(ms));
  const mw = opts.middleware![0]!;
  const pre = mw.pre.bind(mw);
  mw.pre = (ctx) => {
    ctx.setSignal(AbortSignal.timeout(ms));
    return pre(ctx);
  };
  return opts;
}

/** Resolves to the error a call failed with, asserting that it did fail and was no API answer. */
async function networkError(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(err).to.not.be.instanceOf(k8s.ApiException);
    return err as Error;
  }
  throw new Error('expected a network-level failure, but the call succeeded');
}

describe('kube-api test server: authentication and RBAC', () => {
  let server: KubeApiServer;

  beforeEach(async () => {
    server = await startKubeApiServer({
      namespace: NS,
      tokens: {
        admin: {},
        elector: {
          user: 'route-elector',
          rules: [
            { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'] },
            { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'watch'], resourceNames: ['mine'] },
          ],
        },
      },
    });
  });
  afterEach(async () => {
    await server.close();
  });

  it('answers a missing or unknown token with 401 Unauthorized', async () => {
    for (const token of [undefined, 'stranger']) {
      const err = await apiError(clients(server, token).coord.listNamespacedLease({ namespace: NS }));
      expect(err.code).to.equal(401);
    }
    const list = await clients(server, 'admin').coord.listNamespacedLease({ namespace: NS });
    expect(list.items).to.deep.equal([]);
  });

  it('denies what the rules do not allow with the apiserver Forbidden message', async () => {
    const { coord: admin } = clients(server, 'admin');
    const created = await admin.createNamespacedLease({ namespace: NS, body: lease('mine') });
    const { coord, core } = clients(server, 'elector');
    expect((await coord.readNamespacedLease({ name: 'mine', namespace: NS })).spec?.holderIdentity).to.equal('pod-a');

    const update = await apiError(coord.replaceNamespacedLease({ name: 'mine', namespace: NS, body: created }));
    expect([update.code, update.body.reason]).to.deep.equal([403, 'Forbidden']);
    expect(update.body.message).to.equal(
      'leases.coordination.k8s.io "mine" is forbidden: User "system:serviceaccount:chaos:route-elector" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "chaos"',
    );
    expect(update.body.details).to.deep.equal({ name: 'mine', group: 'coordination.k8s.io', kind: 'leases' });

    const create = await apiError(coord.createNamespacedLease({ namespace: NS, body: lease('new') }));
    expect(create.body.message).to.equal(
      'leases.coordination.k8s.io is forbidden: User "system:serviceaccount:chaos:route-elector" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "chaos"',
    );
    const pods = await apiError(core.listNamespacedPod({ namespace: NS }));
    expect(pods.body.message).to.equal(
      'pods is forbidden: User "system:serviceaccount:chaos:route-elector" cannot list resource "pods" in API group "" in the namespace "chaos"',
    );

    // list/watch narrowed to one name is authorized against resourceNames.
    const narrowed = await coord.listNamespacedLease({ namespace: NS, fieldSelector: 'metadata.name=mine' });
    expect(narrowed.items).to.have.length(1);
    const wide = await apiError(coord.listNamespacedLease({ namespace: NS }));
    expect(wide.code).to.equal(403);
  });

  it('changes permissions at run time with setToken', async () => {
    server.setToken('late', { rules: [] });
    const denied = await apiError(clients(server, 'late').coord.listNamespacedLease({ namespace: NS }));
    expect(denied.body.message).to.contain('User "system:serviceaccount:chaos:late" cannot list');
    server.setToken('late', {});
    expect((await clients(server, 'late').coord.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);
  });
});

describe('kube-api test server: fault injection per client', () => {
  let server: KubeApiServer;

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: NS });
  });
  afterEach(async () => {
    await server.close();
  });

  it('adds latency to one client only', async () => {
    const a = clients(server, 'a').coord;
    const b = clients(server, 'b').coord;
    server.faults('a').latency(1000);
    const slow = await networkError(a.listNamespacedLease({ namespace: NS }, timeout(200)));
    expect(slow.name).to.match(/TimeoutError|AbortError/);
    expect((await b.listNamespacedLease({ namespace: NS }, timeout(200))).items).to.deep.equal([]);
    server.faults('a').clear();
    expect((await a.listNamespacedLease({ namespace: NS }, timeout(200))).items).to.deep.equal([]);
  });

  it('answers a counted burst of 5xx, then recovers', async () => {
    const a = clients(server, 'a').coord;
    server.faults('a').fail(2, 503);
    for (let i = 0; i < 2; i++) {
      const err = await apiError(a.listNamespacedLease({ namespace: NS }));
      expect([err.code, err.body.reason, err.body.kind]).to.deep.equal([503, 'ServiceUnavailable', 'Status']);
    }
    expect((await a.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);

    server.faults('a').failRate(1, 500);
    const err = await apiError(a.readNamespacedLease({ name: 'x', namespace: NS }));
    expect([err.code, err.body.reason]).to.deep.equal([500, 'InternalError']);
    expect((await clients(server, 'b').coord.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);
    server.faults('a').failRate(0);
    expect((await a.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);
  });

  it('drops connections without an answer', async () => {
    const a = clients(server, 'a').coord;
    server.faults('a').drop(1);
    await networkError(a.listNamespacedLease({ namespace: NS }));
    expect(server.requests({ token: 'a' }).at(-1)?.fault).to.equal('drop');
    expect((await a.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);
  });

  it('blackholes a client: requests hang, its watch goes silent, clear() breaks the held connections', async () => {
    const a = clients(server, 'a');
    const b = clients(server, 'b');
    const watchA = await startWatch(a.kc, LEASES);
    const watchB = await startWatch(b.kc, LEASES);
    server.faults('a').blackhole();

    const hung = await networkError(a.coord.listNamespacedLease({ namespace: NS }, timeout(300)));
    expect(hung.name).to.match(/TimeoutError|AbortError/);
    await b.coord.createNamespacedLease({ namespace: NS, body: lease('during') });
    await waitFor(() => watchB.events.length === 1, { message: 'the unaffected client sees the event' });
    expect(watchA.events).to.deep.equal([]);

    server.faults('a').clear();
    await waitFor(() => watchA.ended, { message: 'the blackholed watch to be broken on clear' });
    expect(watchA.events).to.deep.equal([]);
    expect((await a.coord.listNamespacedLease({ namespace: NS })).items).to.have.length(1);
    watchB.stop();
  });

  it('stallWatches() silences a client’s open watch for good, not even ending it at timeoutSeconds, while its new watches work', async () => {
    const a = clients(server, 'a');
    const b = clients(server, 'b');
    const stalled = await startWatch(a.kc, LEASES, { timeoutSeconds: 1 });
    const control = await startWatch(b.kc, LEASES, { timeoutSeconds: 1 });
    server.faults('a').stallWatches();
    await b.coord.createNamespacedLease({ namespace: NS, body: lease('after-stall') });
    const fresh = await startWatch(a.kc, LEASES);
    await waitFor(() => fresh.events.some((e) => e.object.metadata?.name === 'after-stall'), { message: 'a new watch of the stalled client to work' });
    await waitFor(() => control.ended, { message: 'the unaffected watch to end at its timeoutSeconds' });
    expect(control.events.map((e) => e.type)).to.include('ADDED');
    expect(stalled.events).to.deep.equal([]);
    expect(stalled.ended, 'the stalled watch ended').to.equal(false);
    stalled.stop();
    fresh.stop();
  });

  it('faults() without a token applies to every client', async () => {
    server.faults().fail(1, 500);
    const err = await apiError(clients(server, 'z').coord.listNamespacedLease({ namespace: NS }));
    expect(err.code).to.equal(500);
    server.clearFaults();
    expect((await clients(server, 'z').coord.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);
  });

  it('disconnect() ends a client’s open watch', async () => {
    const a = clients(server, 'a');
    const w = await startWatch(a.kc, LEASES);
    server.faults('a').disconnect();
    await waitFor(() => w.ended, { message: 'the watch to end' });
  });

  it('restart() closes every connection, keeps the port and every object, and continues the resourceVersion', async () => {
    const { kc, coord } = clients(server, 'a');
    const created = await coord.createNamespacedLease({ namespace: NS, body: lease('kept') });
    const w = await startWatch(kc, LEASES);
    await waitFor(() => w.events.length === 1, { message: 'initial ADDED' });
    const port = server.port;

    await server.restart();
    await waitFor(() => w.ended, { message: 'the watch to be closed by the restart' });
    expect(server.port).to.equal(port);
    const read = await coord.readNamespacedLease({ name: 'kept', namespace: NS });
    expect(read.metadata?.uid).to.equal(created.metadata?.uid);
    expect(read.metadata?.resourceVersion).to.equal(created.metadata?.resourceVersion);
    const next = await coord.createNamespacedLease({ namespace: NS, body: lease('after') });
    expect(Number(next.metadata?.resourceVersion)).to.equal(Number(created.metadata?.resourceVersion) + 1);
  });

  it('refuses connections between stop() and start()', async () => {
    const { coord } = clients(server, 'a');
    await server.stop();
    await networkError(coord.listNamespacedLease({ namespace: NS }));
    await server.start();
    expect((await coord.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);
  });

  it('counts requests per token and verb', async () => {
    const { coord } = clients(server, 'counted');
    await coord.createNamespacedLease({ namespace: NS, body: lease('c') });
    await coord.readNamespacedLease({ name: 'c', namespace: NS });
    await coord.readNamespacedLease({ name: 'c', namespace: NS });
    await coord.listNamespacedLease({ namespace: NS });
    expect(server.requestCounts().counted).to.deep.equal({ create: 1, get: 2, list: 1 });
    expect(server.requestCount('counted')).to.equal(4);
    const gets = server.requests({ token: 'counted', verb: 'get' });
    expect(gets.map((r) => [r.resource, r.name, r.status])).to.deep.equal([
      ['leases', 'c', 200],
      ['leases', 'c', 200],
    ]);
    server.resetRequestCounts();
    expect(server.requestCount()).to.equal(0);
  });
});

describe('kube-api test server over TLS', () => {
  let server: KubeApiServer;

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: NS, tls: true, tokens: { a: {}, b: {} } });
  });
  afterEach(async () => {
    await server.close();
  });

  it('serves https, verified against the certificate the kubeconfig carries', async () => {
    expect(server.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(server.kubeconfig()).to.contain('certificate-authority-data:').and.not.to.contain('insecure-skip-tls-verify');
    await clients(server, 'a').coord.createNamespacedLease({ namespace: NS, body: lease('tls') });
    expect(server.requests({ token: 'a', verb: 'create' })).to.have.length(1);
  });

  it('finds a client\'s connections by token on TLS sockets: disconnect() ends its watch only', async () => {
    const a = await startWatch(clients(server, 'a').kc, LEASES);
    const b = await startWatch(clients(server, 'b').kc, LEASES);
    await clients(server, 'a').coord.createNamespacedLease({ namespace: NS, body: lease('x') });
    await waitFor(() => a.events.length === 1 && b.events.length === 1, { message: 'both watches to see the lease' });
    server.faults('a').disconnect();
    await waitFor(() => a.ended, { message: 'the watch of client a to end' });
    expect(b.ended).to.equal(false);
    server.faults('b').drop(1);
    await networkError(clients(server, 'b').coord.listNamespacedLease({ namespace: NS }));
    expect((await clients(server, 'a').coord.listNamespacedLease({ namespace: NS })).items).to.have.length(1);
  });

  it('keeps its certificate across restart()', async () => {
    const { coord } = clients(server, 'a');
    await server.restart();
    expect((await coord.listNamespacedLease({ namespace: NS })).items).to.deep.equal([]);
  });
});

describe('kube-api test server: authorization by stored Roles and RoleBindings', () => {
  let server: KubeApiServer;
  const rbac = '/apis/rbac.authorization.k8s.io/v1/namespaces';

  beforeEach(async () => {
    server = await startKubeApiServer({
      namespace: NS,
      tokens: {
        admin: {},
        sa: { user: 'runner', rules: 'roles' },
        bob: { user: 'oidc:bob', rules: 'roles' },
      },
    });
  });
  afterEach(async () => {
    await server.close();
  });

  async function post(path: string, body: unknown): Promise<number> {
    const res = await fetch(server.url + path, { method: 'POST', headers: { authorization: 'Bearer admin', 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await res.text();
    return res.status;
  }
  const role = (name: string, namespace: string, rules: unknown[]) => post(`${rbac}/${namespace}/roles`, { metadata: { name }, rules });
  const binding = (name: string, namespace: string, role: string, subjects: unknown[], kind = 'Role') =>
    post(`${rbac}/${namespace}/rolebindings`, { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: role }, subjects });
  const canList = async (token: string, namespace = NS) => {
    try {
      await clients(server, token).coord.listNamespacedLease({ namespace });
      return true;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 403) return false;
      throw err;
    }
  };

  it('grants a service account, a user and a group what their bound Roles allow, in that namespace only', async () => {
    expect(await role('lister', NS, [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list'] }])).to.equal(201);
    expect(await role('lister', 'other', [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list'] }])).to.equal(201);
    expect(await canList('sa')).to.equal(false);
    expect(await binding('sa', NS, 'lister', [{ kind: 'ServiceAccount', name: 'runner' }])).to.equal(201);
    expect(await canList('sa')).to.equal(true);
    expect(await canList('sa', 'other')).to.equal(false);
    expect(await canList('bob')).to.equal(false);
    expect(await binding('group', 'other', 'lister', [{ kind: 'Group', name: 'system:authenticated' }])).to.equal(201);
    expect(await canList('bob', 'other')).to.equal(true);
    expect(await binding('user', NS, 'lister', [{ kind: 'User', name: 'oidc:bob' }])).to.equal(201);
    expect(await canList('bob')).to.equal(true);
  });

  it('grants nothing through a ClusterRole (not held) or a service account of another namespace', async () => {
    expect(await role('lister', NS, [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list'] }])).to.equal(201);
    expect(await binding('cluster', NS, 'lister', [{ kind: 'ServiceAccount', name: 'runner' }], 'ClusterRole')).to.equal(201);
    expect(await binding('elsewhere', NS, 'lister', [{ kind: 'ServiceAccount', name: 'runner', namespace: 'other' }])).to.equal(201);
    expect(await canList('sa')).to.equal(false);
  });

  it('validates Roles and RoleBindings as the apiserver does, and keeps roleRef fixed', async () => {
    expect(await role('bad', NS, [{ apiGroups: [''], resources: ['pods'] }])).to.equal(422);
    expect(await binding('b', NS, 'r', [{ kind: 'Robot', name: 'x' }])).to.equal(422);
    expect(await binding('b', NS, 'r', [{ kind: 'User', name: 'x' }])).to.equal(201);
    const res = await fetch(`${server.url}${rbac}/${NS}/rolebindings/b`, {
      method: 'PATCH',
      headers: { authorization: 'Bearer admin', 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'other' } }),
    });
    expect(res.status).to.equal(422);
    expect(((await res.json()) as { message: string }).message).to.contain('roleRef: Invalid value').and.to.contain('cannot change roleRef');
  });
});
