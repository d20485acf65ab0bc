import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { type KubeApiServer, startKubeApiServer } from '../../lib/testing/index.ts';

const run = promisify(execFile);
const kubectl = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'kubectl')).find((p) => existsSync(p));

// kubectl is an optional system tool: without it this suite is not defined at all (nothing is skipped).
if (kubectl) {
  describe('kube-api test server with kubectl', () => {
    let server: KubeApiServer;
    let dir: string;
    let kubeconfig: string;

    // kubectl (client-go) never sends a bearer token over plain http, so this server runs without tokens.
    before(async () => {
      server = await startKubeApiServer({ namespace: 'kc' });
      dir = mkdtempSync(join(tmpdir(), 'dromedary-kubectl-'));
      kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'));
    });
    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const k = async (...args: string[]) =>
      (await run(kubectl, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], { timeout: 20_000 })).stdout;

    it('reports the server version through discovery', async () => {
      const out = JSON.parse(await k('version', '-o', 'json'));
      expect(out.serverVersion.gitVersion).to.equal('v1.34.0-dromedary');
    });

    it('creates, reads and deletes a lease, keeping six-digit MicroTime', async () => {
      const manifest = join(dir, 'lease.json');
      writeFileSync(
        manifest,
        JSON.stringify({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: 'from-kubectl' },
          spec: { holderIdentity: 'pod-k', leaseDurationSeconds: 15, renewTime: '2026-01-02T03:04:05.123456Z' },
        }),
      );
      await k('create', '-f', manifest, '--validate=false');
      expect(await k('get', 'lease', 'from-kubectl', '-o', 'jsonpath={.spec.renewTime}')).to.equal('2026-01-02T03:04:05.123456Z');
      expect(server.getLease('from-kubectl', 'kc')?.spec).to.include({ holderIdentity: 'pod-k' });
      await k('delete', 'lease', 'from-kubectl');
      expect(server.getLease('from-kubectl', 'kc')).to.equal(undefined);
    });

    it('lists pods by label selector', async () => {
      server.createPod({ name: 'web-1', namespace: 'kc', labels: { app: 'web' } });
      server.createPod({ name: 'db-1', namespace: 'kc', labels: { app: 'db' } });
      server.createPod({ name: 'bare', namespace: 'kc' });
      expect((await k('get', 'pods', '-l', 'app=web', '-o', 'name')).trim()).to.equal('pod/web-1');
      expect((await k('get', 'pods', '-l', 'app notin (web)', '-o', 'name')).trim().split('\n')).to.deep.equal(['pod/bare', 'pod/db-1']);
    });
  });
}
