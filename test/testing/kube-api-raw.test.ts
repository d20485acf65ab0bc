import { expect } from 'chai';
import { type KubeApiServer, formatMicroTime, parseMicroTime, startKubeApiServer } from '../../lib/testing/index.ts';

const L = '/apis/coordination.k8s.io/v1/namespaces/ns/leases';

describe('kube-api test server on the wire (raw HTTP)', () => {
  let server: KubeApiServer;

  beforeEach(async () => {
    server = await startKubeApiServer({ namespace: 'ns', tokens: { t: {} } });
  });
  afterEach(async () => {
    await server.close();
  });

  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(server.url + path, {
      method,
      headers: { authorization: 'Bearer t', 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
  }

  it('writes the exact NotFound Status body with Content-Type application/json', async () => {
    const r = await call('GET', `${L}/missing`);
    expect(r.status).to.equal(404);
    expect(r.headers.get('content-type')).to.equal('application/json');
    expect(r.text).to.equal(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"leases.coordination.k8s.io \\"missing\\" not found","reason":"NotFound","details":{"name":"missing","group":"coordination.k8s.io","kind":"leases"},"code":404}\n',
    );
  });

  it('writes 401 without details', async () => {
    const r = await call('GET', L, undefined, { authorization: 'Bearer nope' });
    expect(r.json).to.deep.equal({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  });

  it('serves list shapes: empty items array, resourceVersion, items without kind', async () => {
    const empty = await call('GET', L);
    expect(empty.json).to.deep.equal({ kind: 'LeaseList', apiVersion: 'coordination.k8s.io/v1', metadata: { resourceVersion: String(server.store.resourceVersion) }, items: [] });
    await call('POST', L, { metadata: { name: 'a' }, spec: {} });
    const one = await call('GET', L);
    expect(one.json.items[0]).to.not.have.property('kind');
    expect(one.json.items[0]).to.not.have.property('apiVersion');
    expect(one.json.items[0].metadata.creationTimestamp).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('answers bad JSON, a namespace mismatch and unknown fields like the apiserver', async () => {
    const bad = await call('POST', L, '{"metadata":');
    expect([bad.status, bad.json.reason]).to.deep.equal([400, 'BadRequest']);
    const ns = await call('POST', L, { metadata: { name: 'a', namespace: 'other' } });
    expect([ns.status, ns.json.message]).to.deep.equal([400, 'the namespace of the provided object does not match the namespace sent on the request']);
    const unknown = await call('POST', L, { metadata: { name: 'u' }, spec: { holderIdentity: 'x', typo: 1 } });
    expect(unknown.status).to.equal(201);
    expect(unknown.headers.get('warning')).to.equal('299 - "unknown field \\"spec.typo\\""');
    expect(unknown.json.spec).to.deep.equal({ holderIdentity: 'x' });
    const type = await call('POST', L, { metadata: { name: 'v' }, spec: { leaseDurationSeconds: '15' } });
    expect(type.json.message).to.equal(
      'Lease in version "v1" cannot be handled as a Lease: json: cannot unmarshal string into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32',
    );
  });

  it('rejects an unknown patch type with 415 and the exact message', async () => {
    await call('POST', L, { metadata: { name: 'p' }, spec: {} });
    const r = await call('PATCH', `${L}/p`, '{}', { 'content-type': 'application/apply-patch+cbor' });
    expect(r.status).to.equal(415);
    expect(r.json.message).to.equal(
      'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml',
    );
  });

  it('streams a watch as NDJSON lines with Content-Type application/json', async () => {
    await call('POST', L, { metadata: { name: 'w' }, spec: {} });
    const r = await call('GET', `${L}?watch=true&timeoutSeconds=1`);
    expect(r.headers.get('content-type')).to.equal('application/json');
    const lines = r.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.type, l.object.kind, l.object.metadata.name])).to.deep.equal([['ADDED', 'Lease', 'w']]);
  });

  it('serves discovery for kubectl', async () => {
    expect((await call('GET', '/api')).json.versions).to.deep.equal(['v1']);
    expect((await call('GET', '/apis')).json.groups[0].name).to.equal('coordination.k8s.io');
    const v1 = await call('GET', '/api/v1');
    expect(v1.json.resources.map((r: { name: string }) => r.name)).to.include.members(['configmaps', 'pods', 'pods/status']);
    const unknown = await call('GET', '/apis/nope/v1/things');
    expect([unknown.status, unknown.json.message]).to.deep.equal([404, 'the server could not find the requested resource']);
  });
});

describe('MicroTime parsing', () => {
  it('accepts exactly six fractional digits and prints UTC', () => {
    expect(formatMicroTime(parseMicroTime('2026-01-02T03:04:05.000001+02:00'))).to.equal('2026-01-02T01:04:05.000001Z');
  });
  const rejected: [string, string][] = [
    ['2026-08-11T19:37:19.103Z', 'cannot parse ".103Z" as ".000000"'],
    ['2026-08-11T19:37:19Z', 'cannot parse "Z" as ".000000"'],
    ['2026-08-11T19:37:19.123456789Z', 'cannot parse "789Z" as "Z07:00"'],
    ['2026-13-11T19:37:19.123456Z', 'month out of range'],
  ];
  for (const [value, detail] of rejected) {
    it(`rejects ${value}`, () => {
      expect(() => parseMicroTime(value)).to.throw(`parsing time "${value}" as "2006-01-02T15:04:05.000000Z07:00": ${detail}`);
    });
  }
});
