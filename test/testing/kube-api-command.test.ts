import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KubeApiServer, runKubeApiCommand, startKubeApiServer } from '../../lib/testing/index.ts';
import { ConfigurationError } from '../../lib/errors.ts';
import { request } from 'node:https';
import { k8s } from './kube-client.ts';

/** The status of a GET over HTTPS, trusting the kubeconfig's CA (fetch cannot be given one). */
function statusOf(url: string, kubeconfigText: string, token?: string): Promise<number> {
  const ca = Buffer.from(/certificate-authority-data: "([^"]+)"/.exec(kubeconfigText)![1]!, 'base64').toString();
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('runKubeApiCommand (dromedary kube-api)', () => {
  let server: KubeApiServer | undefined;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dromedary-kube-api-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts the server, writes a kubeconfig the real client loads, and prints both', async () => {
    const lines: string[] = [];
    const path = join(dir, 'kubeconfig.yaml');
    server = await runKubeApiCommand({ kubeconfigPath: path, token: 'dev', namespace: 'demo', out: (l) => lines.push(l) });
    expect(lines[0]).to.equal(`Kubernetes API test server listening on ${server.url}`);
    expect(server.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(lines[1]).to.contain(path);
    // HTTPS, verified against the server's own certificate: client-go sends tokens only over TLS.
    expect(readFileSync(path, 'utf8')).to.contain('certificate-authority-data:').and.not.to.contain('insecure-skip-tls-verify');

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(path);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).to.equal('demo');
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    await coord.createNamespacedLease({ namespace: 'demo', body: { metadata: { name: 'x' }, spec: { leaseDurationSeconds: 5 } } });
    expect(server.requests({ token: 'dev', verb: 'create' })).to.have.length(1);
  });

  // Issue 17.5: any local user could rewrite Leases through the command's server.
  it('requires the token it writes into the kubeconfig: none or a made-up one gets 401', async () => {
    const path = join(dir, 'kubeconfig.yaml');
    server = await runKubeApiCommand({ kubeconfigPath: path, namespace: 'demo', out: () => undefined });
    const text = readFileSync(path, 'utf8');
    const written = /token: "([^"]+)"/.exec(text)?.[1];
    expect(written).to.match(/^[A-Za-z0-9_-]{43}$/);
    const leases = `${server.url}/apis/coordination.k8s.io/v1/namespaces/demo/leases`;
    expect(await statusOf(leases, text)).to.equal(401);
    expect(await statusOf(leases, text, 'made-up')).to.equal(401);
    expect(await statusOf(leases, text, written)).to.equal(200);

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(path);
    await kc.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({ namespace: 'demo', body: { metadata: { name: 'y' }, spec: { leaseDurationSeconds: 5 } } });
    expect(server.getLease('y', 'demo')).not.to.equal(undefined);
  });

  it('draws a new token each time', async () => {
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    server = await runKubeApiCommand({ kubeconfigPath: a, out: () => undefined });
    await server.close();
    server = await runKubeApiCommand({ kubeconfigPath: b, out: () => undefined });
    expect(readFileSync(a, 'utf8').match(/token: .*/)![0]).not.to.equal(readFileSync(b, 'utf8').match(/token: .*/)![0]);
  });

  it('accepts requests without a token only when asked to (anonymous), and writes no token then', async () => {
    const path = join(dir, 'kubeconfig.yaml');
    const lines: string[] = [];
    server = await runKubeApiCommand({ kubeconfigPath: path, anonymous: true, out: (l) => lines.push(l) });
    expect(readFileSync(path, 'utf8')).not.to.contain('token:');
    expect(await statusOf(`${server.url}/api/v1/namespaces/default/configmaps`, readFileSync(path, 'utf8'))).to.equal(200);
    expect(lines.join('\n')).to.contain('Anonymous access');
  });

  it('writes the kubeconfig 0600 whatever the umask, also over an existing readable file', async () => {
    const path = join(dir, 'kubeconfig.yaml');
    writeFileSync(path, 'old', { mode: 0o644 });
    const umask = process.umask(0o000);
    try {
      server = await runKubeApiCommand({ kubeconfigPath: path, out: () => undefined });
    } finally {
      process.umask(umask);
    }
    expect(statSync(path).mode & 0o777).to.equal(0o600);
    expect(readFileSync(path, 'utf8')).to.contain('token:');
  });

  it('rejects bad options with a message naming the fix', async () => {
    try {
      server = await startKubeApiServer({ namespace: 'Not_Valid' });
      expect.fail('expected a ConfigurationError');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigurationError);
      expect((err as Error).message).to.contain('not a valid DNS-1123 label');
    }
  });
});
