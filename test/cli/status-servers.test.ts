import { expect } from 'chai';
import { createClusterService, resolveClusterConfig } from '../../lib/cluster/config.ts';
import type { ClusterService, ClusterView } from '../../lib/cluster/cluster-service.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { EtcdServer } from '../support/etcd-server.ts';
import { PostgresServer } from '../support/postgres-server.ts';
import { ZooKeeperServer } from '../support/zookeeper-server.ts';
import { waitFor } from '../support/wait.ts';

const LEASE = 2000;
const TIMINGS = { DROMEDARY_LEASE_DURATION: `${LEASE}ms`, DROMEDARY_RENEW_DEADLINE: '1300ms', DROMEDARY_RETRY_PERIOD: '150ms' };
/** Allowance for a status process to start and read, and for the server's own expiry, on a busy machine. */
const MARGIN = 5000;

interface StatusJson {
  backend: string;
  where: string;
  locks: Array<{ lock: string; holder?: string; term?: number; valid: boolean; expiresInMs?: number; members?: string[] }>;
}

/**
 * `dromedary status` against the server backends, each on the real server the cluster tests use: the
 * members are cluster services in this process, the status a separate `dromedary status` process that
 * needs none of them.
 */
describe('dromedary status on the etcd, postgres and zookeeper backends (real servers)', function () {
  this.timeout(60_000);
  const services: ClusterService[] = [];
  const processes: ProcessHandle[] = [];
  let run = 0;

  afterEach(async () => {
    for (const p of processes.splice(0)) await p.stop();
    for (const s of services.splice(0)) await s.stop();
  });

  async function member(id: string, env: Record<string, string>): Promise<ClusterService> {
    const service = await createClusterService(resolveClusterConfig({ env: { ...env, DROMEDARY_MEMBER_ID: id, ...TIMINGS } }), captureLogger().logger);
    services.push(service);
    await service.start();
    return service;
  }

  async function status(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    const p = spawnCli(['status', ...args], { env: { ...TIMINGS, ...env } });
    processes.push(p);
    const { code } = await p.exited;
    return { code, output: p.output };
  }

  async function json(env: Record<string, string>, args: string[] = []): Promise<StatusJson> {
    const { code, output } = await status([...args, '--output', 'json'], env);
    expect(code, output).to.equal(0);
    return JSON.parse(output) as StatusJson;
  }

  /** Two members on lock `orders`, one leading: the status shows it as the members see it. */
  async function leaderAndFollower(env: Record<string, string>): Promise<{ leader: ClusterView; follower: ClusterView }> {
    const a = (await member('a', env)).view('orders');
    await waitFor(() => a.isLeader, { timeout: 5000, message: 'a to lead orders' });
    const b = (await member('b', env)).view('orders');
    await waitFor(() => b.leader === 'a', { timeout: 5000, message: 'b to see a lead' });
    return { leader: a, follower: b };
  }

  describe('etcd', () => {
    let etcd: EtcdServer;
    before(async function () {
      this.timeout(120_000);
      etcd = await EtcdServer.start();
    });
    after(async () => {
      await etcd?.stop();
    });

    it("shows the holder, its key's revision as the term, the lease's time left and the candidates; a released lock is gone", async () => {
      const env = { DROMEDARY_CLUSTER: 'etcd', DROMEDARY_ETCD_ENDPOINTS: etcd.endpoint, DROMEDARY_ETCD_PREFIX: `/status${(run += 1)}/` };
      const { leader } = await leaderAndFollower(env);
      const found = await json(env);
      expect(found).to.include({ backend: 'etcd', where: `${etcd.endpoint} keys ${env.DROMEDARY_ETCD_PREFIX}` });
      expect(found.locks).to.have.length(1);
      const lock = found.locks[0]!;
      expect(lock).to.include({ lock: 'orders', holder: 'a', term: leader.term!.token, valid: true });
      expect(lock.members).to.deep.equal(['a', 'b']);
      // The server's TTL of the holder's session lease: whole seconds, at most the lease duration.
      expect(lock.expiresInMs).to.be.greaterThan(0).and.at.most(LEASE);
      expect((await status([], env)).output).to.match(/^orders\s+a\s+\d+\s+-\s+-\s+valid, [\d.]+s left\s+a,b$/m);

      await leader.close();
      await waitFor(async () => (await json(env)).locks[0]?.holder === 'b', { timeout: MARGIN, message: 'b to hold orders after a released it' });
      for (const s of services.splice(0)) await s.stop();
      const empty = await status([], env);
      expect(empty.code).to.equal(0);
      expect(empty.output).to.contain('no locks yet');
    });

    it('takes the servers from --etcd-endpoints, as run does', async () => {
      const prefix = `/status${(run += 1)}/`;
      const env = { DROMEDARY_CLUSTER: 'etcd', DROMEDARY_ETCD_ENDPOINTS: etcd.endpoint, DROMEDARY_ETCD_PREFIX: prefix };
      await leaderAndFollower(env);
      const found = await json({ DROMEDARY_ETCD_PREFIX: prefix }, ['--cluster', 'etcd', '--etcd-endpoints', etcd.endpoint]);
      expect(found.locks.map((l) => l.holder)).to.deep.equal(['a']);
    });
  });

  describe('postgres', () => {
    let pg: PostgresServer;
    before(async function () {
      this.timeout(120_000);
      pg = await PostgresServer.start();
    });
    after(async () => {
      await pg?.stop();
    });

    it("shows the holder, its token as the term and the lease's expiry by the server's clock, and a released lock as released", async () => {
      const table = `status${(run += 1)}_${process.pid}`;
      const env = { DROMEDARY_CLUSTER: 'postgres', DROMEDARY_POSTGRES_TABLE: table };
      const url = pg.url.replace('postgres@', 'postgres:pw-not-needed@');
      const withUrl = { ...env, DROMEDARY_POSTGRES_URL: url };
      const { leader } = await leaderAndFollower(withUrl);
      const token = leader.term!.token;
      // The flag as run has it; the password never printed.
      const found = await json(env, ['--postgres-url', url]);
      expect(found.backend).to.equal('postgres');
      expect(found.where).to.equal(`postgres://postgres:xxxxxx@127.0.0.1:${pg.port}/postgres table ${table}`);
      const lock = found.locks[0]!;
      expect(lock).to.include({ lock: 'orders', holder: 'a', term: token, valid: true });
      expect(lock.expiresInMs).to.be.greaterThan(0).and.at.most(LEASE);
      const table1 = await status(['--postgres-url', url], env);
      expect(table1.output).to.match(/^orders\s+a\s+\d+\s+-\s+-\s+valid, [\d.]+s left/m);
      expect(table1.output).not.to.contain('pw-not-needed');

      // Both members stop, releasing: the row stays with no holder and its last token.
      for (const s of services.splice(0)) await s.stop();
      const stopped = (await json(withUrl)).locks.find((l) => l.lock === 'orders')!;
      expect(stopped.holder).to.equal(undefined);
      expect(stopped.valid).to.equal(false);
      // a's token, or b's if b took the lock over while a stopped first.
      expect(stopped.term).to.be.at.least(token);
      expect((await status([], withUrl)).output).to.match(/^orders\s+-\s+\d+\s+-\s+-\s+released/m);
    });

    it('an unreleased lease shows it running out, with the holder still named', async () => {
      const table = `status${(run += 1)}_${process.pid}`;
      const env = { DROMEDARY_CLUSTER: 'postgres', DROMEDARY_POSTGRES_TABLE: table, DROMEDARY_POSTGRES_URL: pg.url };
      const a = (await member('a', env)).view('orders');
      await waitFor(() => a.isLeader, { timeout: 5000, message: 'a to lead orders' });
      await a.close({ release: false });
      const expired = await waitFor(
        async () => {
          const l = (await json(env)).locks[0]!;
          return !l.valid && l;
        },
        { timeout: LEASE + MARGIN, message: "a's lease to run out (lease + margin)" },
      );
      expect(expired.holder).to.equal('a');
      expect(expired.expiresInMs).to.be.at.most(0);
      expect((await status([], env)).output).to.match(/^orders\s+a\s+.*expired [\d.]+m?s ago/m);
    });

    it('says there are no locks before any member ran, and names the variable when the server cannot be reached', async () => {
      const env = { DROMEDARY_CLUSTER: 'postgres', DROMEDARY_POSTGRES_TABLE: `status${(run += 1)}_${process.pid}`, DROMEDARY_POSTGRES_URL: pg.url };
      expect((await status([], env)).output).to.contain('no locks yet');
      // Port 1: nothing listens there.
      const unreachable = await status([], { ...env, DROMEDARY_POSTGRES_URL: 'postgres://postgres:s3cret@127.0.0.1:1/postgres' });
      expect(unreachable.code).to.equal(1);
      expect(unreachable.output).to.match(/^dromedary status: cannot read the locks from PostgreSQL at postgres:\/\/postgres:xxxxxx@127\.0\.0\.1:1\/postgres: .*Set DROMEDARY_POSTGRES_URL/m);
      expect(unreachable.output).not.to.contain('s3cret');
    });
  });

  describe('zookeeper', () => {
    let zk: ZooKeeperServer;
    before(async function () {
      this.timeout(120_000);
      zk = await ZooKeeperServer.start();
    });
    after(async () => {
      await zk?.stop();
    });

    it("shows the holder, its node's zxid as the term and the candidates; validity follows the holder's session; a released lock stays, released", async () => {
      const chroot = `/status${(run += 1)}`;
      const env = { DROMEDARY_CLUSTER: 'zookeeper', DROMEDARY_ZOOKEEPER_NODES: `${zk.connectString}${chroot}` };
      const { leader } = await leaderAndFollower(env);
      const found = await json(env);
      expect(found).to.include({ backend: 'zookeeper', where: `${zk.connectString} nodes ${chroot}/dromedary` });
      const lock = found.locks[0]!;
      expect(lock).to.include({ lock: 'orders', holder: 'a', term: leader.term!.token, valid: true });
      expect(lock.members).to.deep.equal(['a', 'b']);
      expect((await status([], env)).output).to.match(/^orders\s+a\s+\d+\s+-\s+-\s+valid \(holder's session is live\)\s+a,b$/m);

      for (const s of services.splice(0)) await s.stop();
      const released = (await json(env)).locks;
      expect(released).to.have.length(1);
      expect(released[0]).to.deep.equal({ lock: 'orders', leaseDurationMs: LEASE, valid: false, members: [] });
      expect((await status([], env)).output).to.match(/^orders\s+-\s+-\s+-\s+-\s+released\s+-$/m);
    });
  });
});
