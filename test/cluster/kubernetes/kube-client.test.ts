import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as clientNode from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from '../../../lib/testing/index.ts';
import { loadKubeClient, loadKubeConfig, resolveNamespace } from '../../../lib/cluster/kubernetes/client.ts';
import { LeaseLockStore } from '../../../lib/cluster/kubernetes/lease-store.ts';
import { microTime, type LockRecord } from '../../../lib/cluster/election/lock-store.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';

const signal = () => AbortSignal.timeout(5000);
const record = (holder: string): LockRecord => ({ holderIdentity: holder, leaseDurationMs: 15_000, acquireTime: microTime(), renewTime: microTime(), leaseTransitions: 0 });
const ROOT = join(import.meta.dirname, '..', '..', '..');
const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** An OIDC id-token valid for an hour (the API test server knows it as a bearer token; nobody checks its signature). */
const ID_TOKEN = `${base64url({ alg: 'RS256', typ: 'JWT' })}.${base64url({ iss: 'https://idp.example', sub: 'ann', exp: Math.floor(Date.now() / 1000) + 3600 })}.c2lnbmF0dXJl`;

/**
 * The backend's Kubernetes client: client-node's kubeconfig parsing and authenticators applied to a
 * small REST transport. Its requests meet the API test server over TLS; the real client-node reads
 * back what it wrote.
 */
describe('kubernetes backend: the Kubernetes client (kubeconfig, authentication, transport)', function () {
  this.timeout(30_000);
  let server: KubeApiServer;
  let dir: string;

  before(async () => {
    server = await startKubeApiServer({ namespace: 'apps', tls: true, tokens: { alpha: {}, exec: {}, account: {}, [ID_TOKEN]: {} } });
    dir = await mkdtemp(join(tmpdir(), 'dromedary-kube-client-'));
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function storeWith(env: Record<string, string>, serviceAccountDir?: string) {
    const k8s = await loadKubeClient();
    const kc = loadKubeConfig(k8s, env, serviceAccountDir);
    const capture = captureLogger();
    const store = new LeaseLockStore(k8s, kc, { namespace: 'apps', prefix: 'kc', labels: { provider: 'dromedary' }, watchIdleMs: 30_000, logger: capture.logger });
    return { store, kc };
  }

  async function kubeconfigFile(text: string): Promise<string> {
    const path = join(dir, `kc-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(path, text, { mode: 0o600 });
    return path;
  }

  it('writes Lease times as MicroTime (six fractional digits) that the real client-node reads back', async () => {
    const { store } = await storeWith({ KUBECONFIG: await kubeconfigFile(server.kubeconfig({ token: 'alpha' })) });
    const created = await store.create('wire', record('pod-a'), signal());
    const raw = server.getLease('kc-wire', 'apps')!.spec as Record<string, unknown>;
    expect(raw.acquireTime).to.match(/\.\d{6}Z$/);
    expect(raw.renewTime).to.match(/\.\d{6}Z$/);
    const kc = new clientNode.KubeConfig();
    kc.loadFromString(server.kubeconfig({ token: 'alpha' }));
    const lease = await kc.makeApiClient(clientNode.CoordinationV1Api).readNamespacedLease({ name: 'kc-wire', namespace: 'apps' });
    expect(lease.metadata?.resourceVersion).to.equal(created.version);
    expect(lease.spec?.holderIdentity).to.equal('pod-a');
    expect(new Date(lease.spec!.renewTime!).toISOString()).to.equal(created.record.renewTime);
  });

  it('runs an exec credential plugin for its token, and runs it again only once the credential expires', async () => {
    const count = join(dir, 'exec-runs');
    const plugin = join(dir, 'plugin.mjs');
    await writeFile(
      plugin,
      `import { appendFileSync } from 'node:fs';
appendFileSync(${JSON.stringify(count)}, 'run\\n');
const expirationTimestamp = new Date(Date.now() + 3600_000).toISOString();
console.log(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'exec', expirationTimestamp } }));
`,
    );
    const text = server
      .kubeconfig()
      .replace(/ {2}user: \{\}/, `  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${JSON.stringify(process.execPath)}\n      args: [${JSON.stringify(plugin)}]`);
    const { store } = await storeWith({ KUBECONFIG: await kubeconfigFile(text) });
    const created = await store.create('exec', record('pod-a'), signal());
    await store.get('exec', signal());
    await store.update('exec', record('pod-a'), created.version, signal());
    expect(server.requests({ token: 'exec' }).map((r) => r.verb)).to.deep.equal(['create', 'get', 'update']);
    expect((await readFile(count, 'utf8')).trim().split('\n')).to.have.length(1);
  });

  it("sends an oidc auth provider's id-token, through client-node's own OIDC module", async () => {
    const text = server
      .kubeconfig()
      .replace(/ {2}user: \{\}/, `  user:\n    auth-provider:\n      name: oidc\n      config:\n        client-id: dromedary\n        idp-issuer-url: https://idp.example\n        id-token: ${ID_TOKEN}`);
    const { store } = await storeWith({ KUBECONFIG: await kubeconfigFile(text) });
    await store.create('oidc', record('pod-a'), signal());
    expect(server.requests({ token: ID_TOKEN, verb: 'create' })).to.have.length(1);
  });

  it("goes through the kubeconfig's proxy-url (an HTTP CONNECT proxy), with TLS to the API server inside it", async () => {
    const tunnels: string[] = [];
    const sockets: Socket[] = [];
    const proxy = createHttpServer();
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      sockets.push(client);
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
      const text = server.kubeconfig({ token: 'alpha' }).replace(/(certificate-authority-data: .*\n)/, `$1    proxy-url: ${proxyUrl}\n`);
      const { store } = await storeWith({ KUBECONFIG: await kubeconfigFile(text) });
      await store.create('proxied', record('pod-a'), signal());
      expect(tunnels).to.deep.equal([new URL(server.url).host]);
      expect(server.requests({ token: 'alpha', verb: 'create' }).some((r) => r.path.endsWith('/leases'))).to.equal(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it("uses a pod's service account: its token file, its CA and its namespace", async () => {
    const account = join(dir, 'serviceaccount');
    await mkdir(account, { recursive: true });
    await writeFile(join(account, 'token'), 'account');
    await writeFile(join(account, 'ca.crt'), server.tls!.cert);
    await writeFile(join(account, 'namespace'), 'apps');
    const port = new URL(server.url).port;
    const { store, kc } = await storeWith({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }, account);
    expect(resolveNamespace(kc, {}, account)).to.equal('apps');
    await store.create('account', record('pod-a'), signal());
    expect(server.requests({ token: 'account', verb: 'create' })).to.have.length(1);
  });

  it('verifies the server certificate against tls-server-name when the kubeconfig names one', async () => {
    const named = (name: string) => server.kubeconfig({ token: 'alpha' }).replace(/(certificate-authority-data: .*\n)/, `$1    tls-server-name: ${name}\n`);
    const { store: good } = await storeWith({ KUBECONFIG: await kubeconfigFile(named('localhost')) });
    expect(await good.get('absent', signal())).to.equal(undefined);
    const { store: wrong } = await storeWith({ KUBECONFIG: await kubeconfigFile(named('kubernetes.default.svc')) });
    const err = await wrong.get('absent', signal()).then(
      () => expect.fail('a certificate for another name was accepted'),
      (e: Error) => e,
    );
    expect(err.message).to.contain(`cannot reach the Kubernetes API at ${server.url}: ERR_TLS_CERT_ALTNAME_INVALID`);
  });

  it('does not write a request on a kept-alive connection the server has closed', async () => {
    const { store } = await storeWith({ KUBECONFIG: await kubeconfigFile(server.kubeconfig({ token: 'alpha' })) });
    const created = await store.create('restart', record('pod-a'), signal());
    await server.stop();
    await server.start();
    const updated = await store.update('restart', record('pod-b'), created.version, signal());
    expect(updated.record.holderIdentity).to.equal('pod-b');
  });

  it('never sends a write twice: one held by a partition and reset when it heals fails, for the elector to retry', async () => {
    const { store } = await storeWith({ KUBECONFIG: await kubeconfigFile(server.kubeconfig({ token: 'alpha' })) });
    const created = await store.create('held', record('pod-a'), signal());
    const updates = () => server.requests({ token: 'alpha', verb: 'update' }).length;
    const before = updates();
    server.faults('alpha').blackhole();
    const update = store.update('held', record('pod-b'), created.version, AbortSignal.timeout(20_000)).then(
      () => 'applied',
      (e: Error) => e.message,
    );
    await waitFor(() => updates() > before, { message: 'the update to reach the server' });
    server.faults('alpha').clear();
    expect(await update).to.match(/update Lease kc-held failed: cannot reach the Kubernetes API at .*ECONNRESET/);
    expect(updates()).to.equal(before + 1);
    expect((await store.get('held', signal()))!.record.holderIdentity).to.equal('pod-a');
  });

  it('leaves a complete response alone when its signal fires afterwards (a watch stopped on its last event)', async () => {
    const { store, kc } = await storeWith({ KUBECONFIG: await kubeconfigFile(server.kubeconfig({ token: 'alpha' })) });
    await store.create('late-abort', record('pod-a'), signal());
    const k8s = await loadKubeClient();
    const transport = new k8s.KubeTransport(kc);
    for (let i = 0; i < 3; i += 1) {
      const controller = new AbortController();
      const response = await transport.open('GET', '/apis/coordination.k8s.io/v1/namespaces/apps/leases/kc-late-abort', {}, undefined, { signal: controller.signal });
      // Stopped on the body's last data, as ResourceWatch stops a stream on an ERROR event that is the
      // last thing the server sent: the response is complete, its kept-alive socket going back to the pool.
      await new Promise<void>((resolve) => {
        response.on('data', () => controller.abort());
        response.on('close', resolve);
      });
    }
    expect((await store.get('late-abort', signal()))!.record.holderIdentity).to.equal('pod-a');
  });

  it("loads none of client-node's generated API clients: a Lease member reads, writes and watches without them", async () => {
    const kubeconfig = await kubeconfigFile(server.kubeconfig({ token: 'alpha' }));
    const url = (path: string) => JSON.stringify(pathToFileURL(join(ROOT, path)).href);
    const script = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
const { loadKubeClient, loadKubeConfig } = await import(${url('lib/cluster/kubernetes/client.ts')});
const { LeaseLockStore } = await import(${url('lib/cluster/kubernetes/lease-store.ts')});
const k8s = await loadKubeClient();
const kc = loadKubeConfig(k8s, { KUBECONFIG: process.env.KUBECONFIG });
const logger = { error() {}, warn() {}, info() {}, debug() {} };
const store = new LeaseLockStore(k8s, kc, { namespace: 'apps', prefix: 'modules', labels: { provider: 'dromedary' }, watchIdleMs: 30000, logger });
let watching;
const seen = new Promise((resolve) => (watching = store.watch('lock1', resolve)));
const now = new Date().toISOString();
await store.create('lock1', { holderIdentity: 'a', leaseDurationMs: 15000, acquireTime: now, renewTime: now, leaseTransitions: 0 }, AbortSignal.timeout(5000));
await seen;
watching();
await store.close();
console.log(JSON.stringify(loaded.filter((u) => u.includes('/@kubernetes/client-node/'))));
`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    let code: number | null;
    try {
      code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    }
    expect(code, out).to.equal(0);
    const loaded = JSON.parse(out.trim().split('\n').pop()!) as string[];
    expect(loaded.length, out).to.be.greaterThan(0);
    expect(loaded.filter((u) => /\/dist\/(gen\/|index\.js|config\.js|api\.js)/.test(u))).to.deep.equal([]);
  });
});
