import { expect } from 'chai';
import { type KubeApiServer, startKubeApiServer } from '../../lib/testing/index.ts';

const L = '/apis/coordination.k8s.io/v1/namespaces/ns/leases';
const CM = '/api/v1/namespaces/ns/configmaps';

/** Protobuf wire encoding, just enough to build what kubectl's typed clients send. */
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
const bytesField = (n: number, b: Buffer | string) => {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([varint((n << 3) | 2), varint(data.length), data]);
};
const intField = (n: number, v: number) => Buffer.concat([varint(n << 3), varint(v)]);
const entry = (n: number, k: string, v: string | Buffer) => bytesField(n, Buffer.concat([bytesField(1, k), bytesField(2, v)]));
function k8sProtobuf(apiVersion: string, kind: string, raw: Buffer): Buffer {
  const typeMeta = Buffer.concat([bytesField(1, apiVersion), bytesField(2, kind)]);
  return Buffer.concat([Buffer.from('k8s\0', 'binary'), bytesField(1, typeMeta), bytesField(2, raw), bytesField(3, ''), bytesField(4, '')]);
}

// Issue 12.7: what kubectl needs from an API server besides JSON CRUD.
describe('kube-api test server: what kubectl sends and reads', () => {
  let server: KubeApiServer;

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: 'ns' });
  });
  afterEach(async () => {
    await server.close();
  });

  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(server.url + path, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
  }

  describe('OpenAPI v3', () => {
    it('lists a document per group version, whose PATCH operations name their kind and take fieldValidation', async () => {
      const root = await call('GET', '/openapi/v3');
      expect(root.status).to.equal(200);
      expect(Object.keys(root.json.paths).sort()).to.deep.equal(['api/v1', 'apis/coordination.k8s.io/v1', 'apis/rbac.authorization.k8s.io/v1']);
      const url = root.json.paths['apis/coordination.k8s.io/v1'].serverRelativeURL as string;
      expect(url).to.match(/^\/openapi\/v3\/apis\/coordination\.k8s\.io\/v1\?hash=[0-9A-F]{128}$/);
      const doc = await call('GET', url);
      const patch = doc.json.paths['/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}'].patch;
      expect(patch['x-kubernetes-group-version-kind']).to.deep.equal({ group: 'coordination.k8s.io', version: 'v1', kind: 'Lease' });
      expect(patch.parameters.map((p: { name: string }) => p.name)).to.include('fieldValidation');
      expect(Object.keys(patch.requestBody.content)).to.include('application/apply-patch+yaml');
      const core = await call('GET', root.json.paths['api/v1'].serverRelativeURL);
      const kinds = Object.values(core.json.paths as Record<string, { patch?: { 'x-kubernetes-group-version-kind': { kind: string } } }>)
        .map((p) => p.patch?.['x-kubernetes-group-version-kind'].kind)
        .filter(Boolean);
      expect(kinds.sort()).to.deep.equal(['ConfigMap', 'Pod', 'ServiceAccount']);
      expect((await call('GET', '/openapi/v3/apis/apps/v1')).status).to.equal(404);
    });
  });

  describe('fieldValidation', () => {
    it('Strict refuses unknown fields with the strict decoder\'s 400; Ignore drops them without a warning; Warn warns', async () => {
      const body = { metadata: { name: 'a' }, data: { k: 'v' }, extra: 1 };
      const strict = await call('POST', `${CM}?fieldValidation=Strict`, body);
      expect(strict.status).to.equal(400);
      expect(strict.json.message).to.equal('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra"');
      expect(server.getConfigMap('a', 'ns')).to.equal(undefined);
      const ignore = await call('POST', `${CM}?fieldValidation=Ignore`, body);
      expect(ignore.status).to.equal(201);
      expect(ignore.headers.get('warning')).to.equal(null);
      const warn = await call('POST', CM, { ...body, metadata: { name: 'b' } });
      expect(warn.headers.get('warning')).to.equal('299 - "unknown field \\"extra\\""');
      expect((await call('POST', `${CM}?fieldValidation=Loud`, body)).status).to.equal(400);
    });
  });

  describe('server-side apply (application/apply-patch+yaml)', () => {
    const apply = (name: string, body: unknown, query = '?fieldManager=kubectl') =>
      call('PATCH', `${L}/${name}${query}`, body, { 'content-type': 'application/apply-patch+yaml' });

    it('creates an absent object (201), then merges into it (200)', async () => {
      const created = await apply('s', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 's' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 5 } });
      expect(created.status).to.equal(201);
      const updated = await apply('s', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 's', labels: { x: 'y' } }, spec: { holderIdentity: 'b' } });
      expect(updated.status).to.equal(200);
      expect(server.getLease('s', 'ns')?.spec).to.deep.include({ holderIdentity: 'b', leaseDurationSeconds: 5 });
      expect(server.getLease('s', 'ns')?.metadata.labels).to.deep.equal({ x: 'y' });
    });

    it('replaces an atomic list (a Role\'s rules) rather than merging it', async () => {
      const path = '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/r?fieldManager=kubectl';
      const role = (verbs: string[]) => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'r' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs }] });
      expect((await call('PATCH', path, role(['get', 'list']), { 'content-type': 'application/apply-patch+yaml' })).status).to.equal(201);
      const second = await call('PATCH', path, role(['watch']), { 'content-type': 'application/apply-patch+yaml' });
      expect(second.json.rules).to.deep.equal([{ apiGroups: [''], resources: ['pods'], verbs: ['watch'] }]);
    });

    it('requires a fieldManager (422) and reads JSON only, saying so', async () => {
      const missing = await apply('s', { metadata: { name: 's' } }, '');
      expect(missing.status).to.equal(422);
      expect(missing.json.message).to.contain('fieldManager: Required value: is required for apply patch');
      const yaml = await apply('s', 'metadata:\n  name: s\n');
      expect(yaml.status).to.equal(400);
      expect(yaml.json.message).to.contain('apply configurations written as JSON');
    });
  });

  describe('dryRun=All', () => {
    it('checks a create, an update, a patch and a delete, and writes none of them', async () => {
      await call('POST', CM, { metadata: { name: 'd' }, data: { k: 'v1' } });
      const rv = server.store.resourceVersion;
      const create = await call('POST', `${CM}?dryRun=All`, { metadata: { name: 'e' }, data: { k: 'v' } });
      expect(create.status).to.equal(201);
      expect(create.json.metadata.name).to.equal('e');
      expect((await call('POST', `${CM}?dryRun=All`, { metadata: { name: 'd' } })).status).to.equal(409);
      expect((await call('PUT', `${CM}/d?dryRun=All`, { metadata: { name: 'd' }, data: { k: 'v2' } })).json.data).to.deep.equal({ k: 'v2' });
      const patch = await call('PATCH', `${CM}/d?dryRun=All`, { data: { k: 'v3' } }, { 'content-type': 'application/merge-patch+json' });
      expect(patch.json.data).to.deep.equal({ k: 'v3' });
      expect((await call('DELETE', `${CM}/d?dryRun=All`)).status).to.equal(200);
      expect((await call('DELETE', `${CM}/d`, { dryRun: ['All'], propagationPolicy: 'Background' })).status).to.equal(200);
      expect(server.getConfigMap('d', 'ns')?.data).to.deep.equal({ k: 'v1' });
      expect(server.getConfigMap('e', 'ns')).to.equal(undefined);
      expect(server.store.resourceVersion).to.equal(rv);
      expect((await call('POST', `${CM}?dryRun=Some`, { metadata: { name: 'f' } })).status).to.equal(400);
    });
  });

  describe('protobuf bodies (application/vnd.kubernetes.protobuf)', () => {
    const PB = { 'content-type': 'application/vnd.kubernetes.protobuf', accept: 'application/vnd.kubernetes.protobuf,application/json' };

    it('creates a ConfigMap as `kubectl create configmap` sends it, answering in JSON', async () => {
      const meta = Buffer.concat([bytesField(1, 'pb'), entry(11, 'app', 'web')]);
      const raw = Buffer.concat([bytesField(1, meta), entry(2, 'k', 'v'), entry(2, 'z', 'w'), entry(3, 'bin', Buffer.from([0, 1, 2])), intField(4, 1)]);
      const r = await call('POST', `${CM}?fieldManager=kubectl-create&fieldValidation=Strict`, k8sProtobuf('v1', 'ConfigMap', raw), PB);
      expect(r.status).to.equal(201);
      expect(r.headers.get('content-type')).to.equal('application/json');
      const stored = server.getConfigMap('pb', 'ns')!;
      expect(stored.data).to.deep.equal({ k: 'v', z: 'w' });
      expect(stored.binaryData).to.deep.equal({ bin: 'AAEC' });
      expect(stored.immutable).to.equal(true);
      expect(stored.metadata.labels).to.deep.equal({ app: 'web' });
    });

    it('creates a Lease, keeping microsecond times', async () => {
      const time = Buffer.concat([intField(1, 1767323045), intField(2, 123456000)]);
      const spec = Buffer.concat([bytesField(1, 'pod-a'), intField(2, 15), bytesField(4, time), intField(5, 2)]);
      const raw = Buffer.concat([bytesField(1, bytesField(1, 'pl')), bytesField(2, spec)]);
      const r = await call('POST', L, k8sProtobuf('coordination.k8s.io/v1', 'Lease', raw), PB);
      expect(r.status).to.equal(201);
      expect(server.getLease('pl', 'ns')?.spec).to.deep.equal({ holderIdentity: 'pod-a', leaseDurationSeconds: 15, renewTime: '2026-01-02T03:04:05.123456Z', leaseTransitions: 2 });
    });

    it('refuses a body of another kind, a body without the prefix, and kinds it cannot read, naming the fix', async () => {
      const wrongKind = await call('POST', CM, k8sProtobuf('v1', 'Secret', Buffer.alloc(0)), PB);
      expect(wrongKind.status).to.equal(400);
      expect(wrongKind.json.message).to.contain('the body holds Secret (v1), not ConfigMap (v1)');
      expect((await call('POST', CM, Buffer.from('{}'), PB)).json.message).to.contain('Kubernetes protobuf prefix');
      const pod = await call('POST', '/api/v1/namespaces/ns/pods', k8sProtobuf('v1', 'Pod', Buffer.alloc(0)), PB);
      expect(pod.status).to.equal(400);
      expect(pod.json.message).to.contain('send Pod as application/json');
      const other = await call('POST', CM, 'x', { 'content-type': 'text/plain' });
      expect(other.status).to.equal(415);
    });
  });
});
