import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '../../lib/testing/index.ts';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

interface StatusJson {
  backend: string;
  where: string;
  locks: Array<{ lock: string; holder?: string; term?: number; acquireTime?: string; renewTime?: string; valid: boolean; expiresInMs?: number; members?: string[] }>;
}

describe('dromedary status (end to end)', function () {
  this.timeout(60_000);
  let dir: string;
  const processes: ProcessHandle[] = [];
  let api: KubeApiServer | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-status-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    await writeFile(join(dir, 'routes', 'hello.ts'), "import { from } from 'dromedary';\nfrom('master:lock1:timer:clock?period=100&delay=0').log('Hello World!');\nfrom('master:Orders_A:timer:orders?period=100&delay=0').log('orders');\n");
  });

  afterEach(async () => {
    for (const p of processes.splice(0)) await p.stop();
    await api?.close();
    api = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (args: string[], env: Record<string, string | undefined>) => {
    const p = spawnCli(args, { cwd: dir, env });
    processes.push(p);
    return p;
  };
  /** Runs `dromedary status` to its end. */
  const status = async (args: string[], env: Record<string, string | undefined>) => {
    const p = cli(['status', ...args], env);
    const { code } = await p.exited;
    return { code, output: p.output };
  };
  const json = async (env: Record<string, string | undefined>) => {
    const { code, output } = await status(['--output', 'json'], env);
    expect(code, output).to.equal(0);
    return JSON.parse(output) as StatusJson;
  };

  const fileEnv = () => ({ DROMEDARY_CLUSTER_ROOT: join(dir, 'locks'), DROMEDARY_LEASE_DURATION: '2s', DROMEDARY_RENEW_DEADLINE: '1300ms', DROMEDARY_RETRY_PERIOD: '200ms' });

  it('file backend: shows the holder, term, times and a valid lease while a member runs, then the release, with no member running', async () => {
    const env = fileEnv();
    const member = cli(['run', 'routes', '--member-id', 'st-1'], env);
    await member.waitForLine(/Hello World!/, 20_000);

    const running = await json(env);
    expect(running.backend).to.equal('file');
    expect(running.where).to.equal(join(dir, 'locks'));
    const lock = running.locks.find((l) => l.lock === 'lock1')!;
    expect(lock.holder).to.equal('st-1');
    expect(lock.valid).to.equal(true);
    expect(lock.term).to.be.a('number');
    expect(lock.members).to.deep.equal(['st-1']);
    expect(Date.parse(lock.acquireTime!)).to.be.at.most(Date.parse(lock.renewTime!));
    expect(lock.expiresInMs).to.be.greaterThan(0).and.at.most(2000);

    const { code, output } = await status([], env);
    expect(code).to.equal(0);
    expect(output).to.contain(`Locks in file store ${join(dir, 'locks')}`);
    expect(output).to.match(/^LOCK\s+HOLDER\s+TERM\s+ACQUIRED\s+RENEWED\s+LEASE\s+MEMBERS$/m);
    expect(output).to.match(/^lock1\s+st-1\s+\d+\s+\S+Z\s+\S+Z\s+valid, [\d.]+m?s left\s+st-1$/m);

    member.signal('SIGTERM');
    await member.exited;
    const stopped = await json(env);
    const after = stopped.locks.find((l) => l.lock === 'lock1')!;
    expect(after.holder).to.equal(undefined);
    expect(after.valid).to.equal(false);
    expect((await status([], env)).output).to.match(/^lock1\s+-\s+\d+\s+.*released/m);
  });

  it('file backend: a member that died without releasing shows its lease running out', async () => {
    const env = fileEnv();
    const member = cli(['run', 'routes', '--member-id', 'st-2'], env);
    await member.waitForLine(/Hello World!/, 20_000);
    member.signal('SIGKILL');
    await member.exited;
    const lock = await waitFor(
      async () => {
        const l = (await json(env)).locks.find((x) => x.lock === 'lock1')!;
        return !l.valid && l;
      },
      { timeout: 2000 + 5000, message: "st-2's lease to run out (2 s lease + margin)" },
    );
    expect(lock.holder).to.equal('st-2');
    expect(lock.expiresInMs).to.be.at.most(0);
    expect((await status([], env)).output).to.match(/^lock1\s+st-2\s+.*expired [\d.]+m?s ago/m);
  });

  it('says when there are no locks yet, and refuses --cluster none and an unknown --output, naming the fix', async () => {
    const empty = await status([], fileEnv());
    expect(empty.code).to.equal(0);
    expect(empty.output).to.contain('no locks yet: no member has run a master: route with this configuration');
    const none = await status(['--cluster', 'none'], fileEnv());
    expect(none.code).to.equal(1);
    expect(none.output).to.contain('dromedary status: --cluster none keeps no shared locks to show: use --cluster file, kubernetes, etcd, postgres or zookeeper');
    const bad = await status(['--output', 'yaml'], fileEnv());
    expect(bad.code).to.equal(1);
    expect(bad.output).to.contain('--output "yaml" is not a format: use --output table or --output json');
  });

  for (const mode of ['lease', 'configmap'] as const) {
    it(`kubernetes backend, ${mode === 'lease' ? 'Lease' : 'ConfigMap'} mode: shows the holder as the members' API server records it`, async () => {
      api = await startKubeApiServer({ namespace: 'ops' });
      const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
      const env = {
        KUBECONFIG: kubeconfig,
        DROMEDARY_CLUSTER: 'kubernetes',
        DROMEDARY_K8S_LOCK: mode,
        DROMEDARY_CLUSTER_LABELS: 'app=ops',
        DROMEDARY_LEASE_DURATION: '2s',
        DROMEDARY_RENEW_DEADLINE: '1300ms',
        DROMEDARY_RETRY_PERIOD: '200ms',
      };
      // ConfigMap mode: members are live pods matching the labels.
      api.createPod({ name: 'pod-a', labels: { app: 'ops' } });
      const member = cli(['run', 'routes', '--member-id', 'pod-a'], env);
      await member.waitForLine(/Hello World!/, 30_000);
      const found = await json(env);
      const lock = found.locks.find((l) => l.lock === 'lock1')!;
      expect(lock, JSON.stringify(found)).to.not.equal(undefined);
      expect(lock.holder).to.equal('pod-a');
      expect(lock.valid).to.equal(true);
      // The fencing token: the previous one + 1 or the wall clock in ms, whichever is larger.
      expect(lock.term).to.be.at.least(Date.parse('2026-01-01'));
      if (mode === 'lease') {
        expect(found).to.include({ backend: 'kubernetes (Lease mode)', where: 'ops/leases' });
        // A name Kubernetes does not allow as it is gets another Lease name; status shows the lock's own.
        await waitFor(async () => (await json(env)).locks.some((l) => l.lock === 'Orders_A'), { timeout: 10_000, message: 'the Orders_A lock in the status' });
        expect(lock.expiresInMs).to.be.greaterThan(0);
      } else {
        expect(found).to.include({ backend: 'kubernetes (ConfigMap mode)', where: 'ops/configmaps/leaders' });
        expect(lock.members).to.deep.equal(['pod-a']);
        api.setPodStatus('pod-a', { ready: false });
        const notLive = (await json(env)).locks.find((l) => l.lock === 'lock1')!;
        expect(notLive.valid).to.equal(false);
      }
      expect((await status([], env)).output).to.match(/^lock1\s+pod-a\s+/m);
    });
  }

  for (const cluster of ['file', 'kubernetes'] as const) {
    it(`${cluster} backend, heartbeat renewals: a lock stays valid while its holder's heartbeat goes on, and heartbeats are not listed as locks`, async () => {
      const timings = { DROMEDARY_LEASE_DURATION: '2s', DROMEDARY_RENEW_DEADLINE: '1300ms', DROMEDARY_RETRY_PERIOD: '200ms' };
      if (cluster === 'kubernetes') api = await startKubeApiServer({ namespace: 'ops' });
      const env =
        cluster === 'file'
          ? { ...fileEnv(), DROMEDARY_RENEWALS: 'heartbeat' }
          : { KUBECONFIG: await api!.writeKubeconfig(join(dir, 'kubeconfig')), DROMEDARY_CLUSTER: 'kubernetes', DROMEDARY_CLUSTER_LABELS: 'app=ops', DROMEDARY_RENEWALS: 'heartbeat', ...timings };
      const member = cli(['run', 'routes', '--member-id', 'hb-1'], env);
      await member.waitForLine(/Hello World!/, 30_000);
      // Two leases on: the lock records were written once, only the heartbeat moved since.
      const end = Date.now() + 4000;
      await waitFor(() => Date.now() >= end, { timeout: 10_000 });
      const found = await json(env);
      expect(found.locks.map((l) => l.lock).sort()).to.deep.equal(['Orders_A', 'lock1']);
      const lock = found.locks.find((l) => l.lock === 'lock1')!;
      expect(lock.holder).to.equal('hb-1');
      expect(lock.valid, JSON.stringify(lock)).to.equal(true);
      expect(lock.expiresInMs).to.be.greaterThan(0);
    });
  }
});
