import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '../../../lib/testing/index.ts';
import { LeaseLockStore } from '../../../lib/cluster/kubernetes/lease-store.ts';
import { loadClientNode, loadKubeConfig } from '../../../lib/cluster/kubernetes/client.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';
import { spawnCli } from '../../support/cli-process.ts';

// Issue 17: a closed or wrong API port logged only `fetch failed`, a 401 only `HTTP-Code: 401`, and a
// token without `watch` on leases only a debug line.
describe('kubernetes backend: failed API requests name the server, the cause and the fix (against the API test server)', function () {
  this.timeout(30_000);
  let server: KubeApiServer;
  let dir: string;

  before(async () => {
    server = await startKubeApiServer({
      namespace: 'apps',
      tls: true,
      tokens: {
        good: {},
        nowatch: { rules: [{ verbs: ['get', 'list', 'create', 'update'], resources: ['leases'], apiGroups: ['coordination.k8s.io'] }] },
      },
    });
    dir = await mkdtemp(join(tmpdir(), 'dromedary-k8s-failures-'));
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function storeFor(kubeconfigText: string, watchIdleMs = 30_000) {
    const path = join(dir, `kc-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(path, kubeconfigText, { mode: 0o600 });
    const k8s = await loadClientNode();
    const kc = loadKubeConfig(k8s, { KUBECONFIG: path });
    const capture = captureLogger();
    const store = new LeaseLockStore(k8s, kc, { namespace: 'apps', prefix: 'orders', labels: { app: 'orders' }, watchIdleMs, logger: capture.logger });
    return { store, path, ...capture };
  }

  async function getError(store: LeaseLockStore): Promise<Error> {
    try {
      await store.get('lock1', AbortSignal.timeout(10_000));
    } catch (err) {
      return err as Error;
    } finally {
      await store.close();
    }
    throw new Error('the request succeeded');
  }

  const pointedAt = (url: string) => server.kubeconfig({ token: 'good', namespace: 'apps' }).replace(server.url, url);

  it('a closed port: the URL and ECONNREFUSED, not just "fetch failed"', async () => {
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(probe.address() as { port: number }).port}`;
    await new Promise((resolve) => probe.close(resolve));
    const { store } = await storeFor(pointedAt(url));
    const err = await getError(store);
    expect(err.message).to.contain(`get Lease orders-lock1 failed: cannot reach the Kubernetes API at ${url}: ECONNREFUSED`);
    expect(err.message).to.contain('nothing listens there; check the server address and port in the kubeconfig');
  });

  it('a port that does not speak TLS: the URL and the TLS cause', async () => {
    const plain: Server = createHttpServer((_req, res) => res.end('not kubernetes'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(plain.address() as { port: number }).port}`;
      const { store } = await storeFor(pointedAt(url));
      const err = await getError(store);
      expect(err.message).to.contain(`cannot reach the Kubernetes API at ${url}: ERR_SSL_WRONG_VERSION_NUMBER`);
      expect(err.message).to.contain('the server does not speak TLS on that port');
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('an untrusted certificate: says the kubeconfig does not trust it', async () => {
    const text = server.kubeconfig({ token: 'good', namespace: 'apps' }).replace(/^\s*certificate-authority-data: .*\n/m, '');
    const { store } = await storeFor(text);
    const err = await getError(store);
    expect(err.message).to.match(new RegExp(`cannot reach the Kubernetes API at ${server.url}: \\w+.*TLS: the server's certificate is not trusted`));
  });

  it('a 401: the credentials were refused, and where they came from', async () => {
    const { store, path } = await storeFor(server.kubeconfig({ token: 'not-a-known-token', namespace: 'apps' }));
    const err = await getError(store);
    expect(err.message).to.match(
      new RegExp(`refused the credentials \\(401 Unauthorized\\): the token of user "[^"]*" in KUBECONFIG=${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    expect(err.message).not.to.contain('not-a-known-token');
  });

  it('a token without watch on leases: one warning naming the verb and the Role, however often the watch is retried', async () => {
    const { store, lines } = await storeFor(server.kubeconfig({ token: 'nowatch', namespace: 'apps' }));
    try {
      const stop = store.watch('lock1', () => undefined);
      const refused = () => lines.filter((l) => /refused to watch/.test(l.message));
      await waitFor(() => refused().length > 0, { timeout: 10_000, message: 'the refused watch to be reported' });
      const [warning] = refused();
      expect(warning!.level).to.equal('warn');
      expect(warning!.message).to.contain('Kubernetes refused to watch leases.coordination.k8s.io in namespace apps (403 Forbidden)');
      expect(warning!.message).to.contain('Grant the pod\'s service account the "watch" verb on "leases" (apiGroup coordination.k8s.io) in its Role');
      // The watch is retried with backoff (250 ms, 500 ms, 1 s …): wait for a few more refusals, still one warning.
      await waitFor(() => server.requests().filter((r) => r.verb === 'watch' && r.token === 'nowatch').length >= 3, {
        timeout: 10_000,
        message: 'the watch to be retried',
      });
      expect(refused()).to.have.length(1);
      stop();
    } finally {
      await store.close();
    }
  });

  it('dromedary run and dromedary status log the URL and the cause of an API they cannot reach', async () => {
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(probe.address() as { port: number }).port}`;
    await new Promise((resolve) => probe.close(resolve));
    const kubeconfig = join(dir, 'closed.yaml');
    await writeFile(kubeconfig, pointedAt(url), { mode: 0o600 });
    await writeFile(join(dir, 'route.mjs'), "export default (r) => r.from('master:l1:timer:t?period=1000').log('x');\n");
    const cause = new RegExp(`cannot reach the Kubernetes API at ${url.replace(/[.]/g, '\\.')}: ECONNREFUSED`);
    const run = spawnCli(['run', '--cluster', 'kubernetes', join(dir, 'route.mjs')], { env: { KUBECONFIG: kubeconfig } });
    try {
      await run.waitForLine(cause);
      expect(run.output).not.to.match(/fetch failed/);
    } finally {
      await run.stop();
    }
    const status = spawnCli(['status', '--cluster', 'kubernetes'], { env: { KUBECONFIG: kubeconfig } });
    try {
      expect((await status.exited).code, status.output).to.not.equal(0);
      expect(status.output).to.match(cause);
    } finally {
      await status.stop();
    }
  });
});
