import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KubeApiServer, runKubeApiCommand, startKubeApiServer } from '../../lib/testing/index.ts';
import { ConfigurationError } from '../../lib/errors.ts';
import { k8s } from './kube-client.ts';

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
    expect(lines[1]).to.contain(path);
    expect(readFileSync(path, 'utf8')).to.contain('insecure-skip-tls-verify: true');

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(path);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).to.equal('demo');
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    await coord.createNamespacedLease({ namespace: 'demo', body: { metadata: { name: 'x' }, spec: { leaseDurationSeconds: 5 } } });
    expect(server.requests({ token: 'dev', verb: 'create' })).to.have.length(1);
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
