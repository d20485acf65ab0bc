import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { type KubeApiServer, ROLEBINDINGS, ROLES, SERVICEACCOUNTS, startKubeApiServer } from '../../lib/testing/index.ts';
import { apiError, clients } from './kube-client.ts';

const run = promisify(execFile);
const kubectl = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'kubectl')).find((p) => existsSync(p));

// kubectl is an optional system tool: without it this suite is not defined at all (nothing is skipped).
if (kubectl) {
  describe('kube-api test server with kubectl', () => {
    let server: KubeApiServer;
    let dir: string;
    let kubeconfig: string;

    // kubectl (client-go) sends a bearer token only over TLS: the server speaks HTTPS, its certificate
    // is the kubeconfig's CA, and every request must carry the token (as `dromedary kube-api` runs it).
    before(async () => {
      server = await startKubeApiServer({
        namespace: 'kc',
        tls: true,
        tokens: { 'kubectl-token': {}, 'hello-token': { user: 'dromedary-hello', rules: 'roles' } },
      });
      dir = mkdtempSync(join(tmpdir(), 'dromedary-kubectl-'));
      kubeconfig = await server.writeKubeconfig(join(dir, 'kubeconfig'), { token: 'kubectl-token' });
    });
    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const k = async (...args: string[]) =>
      (await run(kubectl, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], { timeout: 20_000 })).stdout;

    it('reports the server version through discovery, verifying the certificate and sending the token', async () => {
      const out = JSON.parse(await k('version', '-o', 'json'));
      expect(out.serverVersion.gitVersion).to.equal('v1.34.0-dromedary');
      expect(server.requests().every((r) => r.token === 'kubectl-token')).to.equal(true);
    });

    it('applies the example Role manifest, and the server then authorizes its service account by it', async () => {
      const hello = clients(server, 'hello-token');
      const body = { metadata: { name: 'dromedary-l1' }, spec: { holderIdentity: 'm1', leaseDurationSeconds: 15 } };
      expect((await apiError(hello.coord.createNamespacedLease({ namespace: 'kc', body }))).code).to.equal(403);
      const rbac = fileURLToPath(new URL('../../examples/kubernetes/rbac.yaml', import.meta.url));
      const out = await k('apply', '-f', rbac);
      expect(out).to.contain('serviceaccount/dromedary-hello created');
      expect(out).to.contain('role.rbac.authorization.k8s.io/dromedary-leader-election created');
      expect(out).to.contain('rolebinding.rbac.authorization.k8s.io/dromedary-leader-election created');
      const created = await hello.coord.createNamespacedLease({ namespace: 'kc', body });
      await hello.coord.replaceNamespacedLease({ name: 'dromedary-l1', namespace: 'kc', body: { ...created, spec: { ...created.spec, holderIdentity: 'm2' } } });
      expect((await hello.coord.listNamespacedLease({ namespace: 'kc' })).items).to.have.length(1);
      const denied = await apiError(hello.coord.deleteNamespacedLease({ name: 'dromedary-l1', namespace: 'kc' }));
      expect(denied.code).to.equal(403);
      expect(denied.body.message).to.equal(
        'leases.coordination.k8s.io "dromedary-l1" is forbidden: User "system:serviceaccount:kc:dromedary-hello" cannot delete resource "leases" in API group "coordination.k8s.io" in the namespace "kc"',
      );
      expect((await apiError(hello.core.listNamespacedConfigMap({ namespace: 'kc' }))).code).to.equal(403);
      await k('delete', '-f', rbac);
      expect((await apiError(hello.coord.readNamespacedLease({ name: 'dromedary-l1', namespace: 'kc' }))).code).to.equal(403);
      await k('delete', 'lease', 'dromedary-l1');
    });

    it('is refused without the token', async () => {
      const anonymous = join(dir, 'anonymous');
      await server.writeKubeconfig(anonymous);
      const call = run(kubectl!, ['--kubeconfig', anonymous, '--cache-dir', join(dir, 'cache-anon'), 'get', 'leases'], { timeout: 20_000 });
      // On a 401 without credentials kubectl asks for a user name on stdin: give it none.
      call.child.stdin?.end();
      const stderr = await call.then(
        () => '',
        (err: { stderr?: string }) => String(err.stderr),
      );
      // kubectl reports the prompt's end of input ("error: EOF") or the refusal itself.
      expect(stderr).to.match(/EOF|provide credentials/);
      const anonymousRequests = server.requests().filter((r) => r.token === undefined);
      expect(anonymousRequests).not.to.have.length(0);
      expect(anonymousRequests.every((r) => r.status === 401)).to.equal(true);
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

    // Issue 12.7: kubectl's ordinary commands, with validation on (kubectl reads the OpenAPI v3 documents).
    const yaml = (name: string, text: string): string => {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    };
    const configMap = (name: string, data: Record<string, string>, extra = '') =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${Object.entries(data).map(([k, v]) => `  ${k}: "${v}"`).join('\n')}\n${extra}`;
    const failure = async (...args: string[]): Promise<string> => {
      try {
        await k(...args);
      } catch (err) {
        return String((err as { stderr?: string }).stderr);
      }
      throw new Error(`kubectl ${args.join(' ')} succeeded`);
    };

    it('create -f and apply -f with validation, of a Lease and a ConfigMap', async () => {
      const lease = yaml(
        'lease.yaml',
        'apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: route-lock\n  labels: {app: demo}\nspec:\n  holderIdentity: pod-a\n  leaseDurationSeconds: 15\n',
      );
      expect(await k('create', '-f', lease)).to.contain('lease.coordination.k8s.io/route-lock created');
      expect(await k('apply', '-f', yaml('cm.yaml', configMap('settings', { a: '1', b: '2' })))).to.contain('configmap/settings created');
      expect(server.getConfigMap('settings', 'kc')?.data).to.deep.equal({ a: '1', b: '2' });
      // A second apply computes a three-way patch: a changed key, a removed key.
      expect(await k('apply', '-f', yaml('cm.yaml', configMap('settings', { a: '9' })))).to.contain('configmap/settings configured');
      expect(server.getConfigMap('settings', 'kc')?.data).to.deep.equal({ a: '9' });
      expect(await k('apply', '-f', yaml('cm.yaml', configMap('settings', { a: '9' })))).to.contain('configmap/settings unchanged');
      expect(await k('get', 'lease', 'route-lock', '-o', 'jsonpath={.spec.holderIdentity}')).to.equal('pod-a');
      expect(await k('delete', '-f', lease)).to.contain('"route-lock" deleted');
      expect(server.getLease('route-lock', 'kc')).to.equal(undefined);
    });

    it('refuses a manifest with an unknown field, as the server validates strictly for kubectl', async () => {
      const stderr = await failure('create', '-f', yaml('bad.yaml', configMap('bad', { a: '1' }, 'colour: red\n')));
      expect(stderr).to.contain('strict decoding error: unknown field "colour"');
      expect(server.getConfigMap('bad', 'kc')).to.equal(undefined);
    });

    it('create configmap (a protobuf body), label, annotate, and the three kinds of patch', async () => {
      expect(await k('create', 'configmap', 'literal', '--from-literal=k=v', '--from-literal=z=w')).to.contain('configmap/literal created');
      expect(server.getConfigMap('literal', 'kc')?.data).to.deep.equal({ k: 'v', z: 'w' });
      await k('label', 'configmap', 'literal', 'tier=web');
      await k('annotate', 'configmap', 'literal', 'note=hi');
      expect((await k('get', 'cm', '-l', 'tier=web', '-o', 'name')).trim()).to.equal('configmap/literal');
      await k('patch', 'configmap', 'literal', '-p', '{"data":{"k":"v2"}}');
      await k('patch', 'configmap', 'literal', '--type', 'merge', '-p', '{"data":{"z":null}}');
      await k('patch', 'configmap', 'literal', '--type', 'json', '-p', '[{"op":"add","path":"/data/j","value":"1"}]');
      const stored = server.getConfigMap('literal', 'kc')!;
      expect(stored.data).to.deep.equal({ k: 'v2', j: '1' });
      expect(stored.metadata.annotations).to.deep.equal({ note: 'hi' });
      await k('delete', 'configmap', 'literal');
    });

    it('server-side apply, replace, diff and server dry runs', async () => {
      const file = yaml('ssa.yaml', configMap('ssa', { a: '1' }));
      expect(await k('apply', '--server-side', '-f', file)).to.contain('configmap/ssa serverside-applied');
      expect(await k('apply', '--server-side', '-f', yaml('ssa.yaml', configMap('ssa', { a: '2' })))).to.contain('serverside-applied');
      expect(server.getConfigMap('ssa', 'kc')?.data).to.deep.equal({ a: '2' });
      expect(await k('replace', '-f', yaml('ssa.yaml', configMap('ssa', { a: '3' })))).to.contain('configmap/ssa replaced');
      const changed = yaml('ssa.yaml', configMap('ssa', { a: '4' }));
      // kubectl diff exits 1 when there are differences.
      const out = await run(kubectl!, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), 'diff', '-f', changed], { timeout: 20_000 }).then(
        (r) => r.stdout,
        (err: { stdout?: string; code?: number }) => (err.code === 1 ? String(err.stdout) : Promise.reject(err as Error)),
      );
      expect(out).to.contain('-  a: "3"').and.to.contain('+  a: "4"');
      expect(await k('apply', '-f', changed, '--dry-run=server')).to.contain('(server dry run)');
      expect(await k('delete', 'configmap', 'ssa', '--dry-run=server')).to.contain('(server dry run)');
      expect(server.getConfigMap('ssa', 'kc')?.data).to.deep.equal({ a: '3' });
    });

    it('create serviceaccount, role and rolebinding (protobuf bodies), and a Role refused by validation', async () => {
      await k('create', 'serviceaccount', 'worker');
      await k('create', 'role', 'reader', '--verb=get,list', '--resource=leases', '--resource-name=one');
      await k('create', 'rolebinding', 'reader', '--role=reader', '--serviceaccount=kc:worker', '--user=bob');
      expect(server.getObject(ROLES, 'kc', 'reader')?.rules).to.deep.equal([
        { verbs: ['get', 'list'], apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['one'] },
      ]);
      expect(server.getObject(ROLEBINDINGS, 'kc', 'reader')?.roleRef).to.deep.equal({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' });
      expect(server.getObject(ROLEBINDINGS, 'kc', 'reader')?.subjects).to.deep.include({ kind: 'ServiceAccount', name: 'worker', namespace: 'kc' });
      expect(server.getObject(SERVICEACCOUNTS, 'kc', 'worker')).not.to.equal(undefined);
      const noVerbs = yaml('role.yaml', 'apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: empty\nrules:\n- apiGroups: [""]\n  resources: [pods]\n');
      expect(await failure('apply', '-f', noVerbs)).to.contain('rules[0].verbs: Required value: verbs must contain at least one value');
      await k('delete', 'rolebinding,role,serviceaccount', '--all');
      expect(server.listObjects(ROLES, 'kc')).to.deep.equal([]);
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
