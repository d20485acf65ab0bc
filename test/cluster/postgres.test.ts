import { expect } from 'chai';
import { ConfigurationError } from '../../lib/errors.ts';
import { createClusterService, resolveClusterConfig } from '../../lib/cluster/config.ts';
import type { ClusterService } from '../../lib/cluster/cluster-service.ts';
import { parsePostgresUrl } from '../../lib/cluster/postgres/index.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { PostgresServer } from '../support/postgres-server.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';
import { checkLeaderStateHandover } from '../support/leader-state-checks.ts';
import { LeadershipLostError } from '../../lib/errors.ts';

const LEASE = 1200;
const RENEW = 800;
const TIMINGS = { DROMEDARY_LEASE_DURATION: `${LEASE}ms`, DROMEDARY_RENEW_DEADLINE: `${RENEW}ms`, DROMEDARY_RETRY_PERIOD: '150ms' };
/** Allowance for a NOTIFY and a few statements on the local server, on a busy machine. */
const MARGIN = 1000;

describe('postgres cluster configuration', () => {
  it('needs its database, and names the variable and flag when it is missing', async () => {
    const config = resolveClusterConfig({ env: { DROMEDARY_CLUSTER: 'postgres' } });
    expect(config.kind).to.equal('postgres');
    expect(() => parsePostgresUrl(config.env.DROMEDARY_POSTGRES_URL)).to.throw(ConfigurationError, /DROMEDARY_POSTGRES_URL \(or --postgres-url\)/);
    const flagged = resolveClusterConfig({ flags: { cluster: 'postgres', postgresUrl: 'postgres://u:p@h/db' }, env: { DROMEDARY_POSTGRES_URL: 'postgres://other/db' } });
    expect(flagged.env.DROMEDARY_POSTGRES_URL).to.equal('postgres://u:p@h/db');
  });

  it('refuses a URL that is not postgres:// without printing its password, and a table name that is not a name', async () => {
    expect(() => parsePostgresUrl('mysql://user:s3cret@host/db'))
      .to.throw(ConfigurationError, /use postgres:\/\/user:password@host:5432\/database/)
      .that.satisfies((e: Error) => !e.message.includes('s3cret'));
    const { logger } = captureLogger();
    const config = resolveClusterConfig({ env: { DROMEDARY_CLUSTER: 'postgres', DROMEDARY_POSTGRES_URL: 'postgres://h/db', DROMEDARY_POSTGRES_TABLE: 'leases; drop table x' } });
    let error: unknown;
    await createClusterService(config, logger).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(ConfigurationError);
    expect((error as Error).message).to.match(/DROMEDARY_POSTGRES_TABLE "leases; drop table x" is not a table name/);
  });
});

describe('postgres cluster service on a real PostgreSQL', function () {
  this.timeout(60_000);
  let pg: PostgresServer;
  const services: ClusterService[] = [];
  const proxies: TcpProxy[] = [];
  let run = 0;

  before(async function () {
    this.timeout(120_000);
    pg = await PostgresServer.start();
  });
  after(async () => {
    await pg?.stop();
  });
  afterEach(async () => {
    for (const p of proxies) p.heal();
    for (const s of services.splice(0)) await s.stop();
    for (const p of proxies.splice(0)) await p.close();
  });

  async function member(id: string, table: string): Promise<{ service: ClusterService; proxy: TcpProxy; lines: () => string[] }> {
    const { logger, messages } = captureLogger();
    const proxy = await TcpProxy.start(pg.port);
    proxies.push(proxy);
    const url = `postgres://postgres:pw-not-needed@127.0.0.1:${proxy.port}/postgres`;
    const config = resolveClusterConfig({ env: { DROMEDARY_CLUSTER: 'postgres', DROMEDARY_MEMBER_ID: id, DROMEDARY_POSTGRES_URL: url, DROMEDARY_POSTGRES_TABLE: table, ...TIMINGS } });
    const service = await createClusterService(config, logger);
    services.push(service);
    await service.start();
    return { service, proxy, lines: messages };
  }

  /** Member a leading orders, then member b following it, seeing a lead. */
  async function leaderAndFollower(table: string) {
    const a = await member('a', table);
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    const b = await member('b', table);
    const vb = b.service.view('orders');
    await waitFor(() => vb.leader === 'a', { timeout: 5000 });
    return { a, va, b, vb };
  }

  it('elects one leader, hands over at once on close, and every term has a higher token', async () => {
    const table = `t${(run += 1)}_${process.pid}`;
    const { a, va, b, vb } = await leaderAndFollower(table);
    const first = va.term!;
    expect(vb.isLeader).to.equal(false);
    expect(vb.members.map((m) => `${m.id}${m.isLeader ? '*' : ''}`)).to.deep.equal(['a*', 'b']);
    const closedAt = performance.now();
    await va.close();
    expect(first.signal.aborted).to.equal(true);
    await waitFor(() => vb.isLeader, { timeout: MARGIN });
    expect(performance.now() - closedAt).to.be.below(MARGIN);
    expect(vb.term!.token).to.be.greaterThan(first.token);
    expect(a.service.kind).to.equal('postgres');
    // The password of the URL is never logged.
    expect(a.lines().join('\n')).not.to.contain('pw-not-needed');
  });

  it('a leader cut off from the server ends its term within renewDeadline, before the follower takes over', async () => {
    const table = `t${(run += 1)}_${process.pid}`;
    const { a, va, b, vb } = await leaderAndFollower(table);
    const term = va.term!;
    const cutAt = performance.now();
    let endedAt = 0;
    term.signal.addEventListener('abort', () => (endedAt = performance.now()));
    a.proxy.cut();
    await waitFor(() => vb.isLeader, { timeout: LEASE + MARGIN + 2000 });
    const takeoverAt = performance.now();
    expect(endedAt, 'the cut-off leader ended its term').to.be.greaterThan(0);
    expect(endedAt).to.be.below(takeoverAt);
    expect(endedAt - cutAt).to.be.below(RENEW + MARGIN);
    expect(vb.term!.token).to.be.greaterThan(term.token);
    expect(a.lines().join('\n')).to.contain('could not renew orders within renewDeadline');
  });

  it('close({ release: false }) leaves the lease to expire: the follower waits for it', async () => {
    const table = `t${(run += 1)}_${process.pid}`;
    const { a, va, b, vb } = await leaderAndFollower(table);
    const closedAt = performance.now();
    await va.close({ release: false });
    expect(va.isLeader).to.equal(false);
    await waitFor(() => vb.isLeader, { timeout: LEASE + MARGIN + 2000 });
    // The lease was last renewed at most renewDeadline/3 before the close.
    expect(performance.now() - closedAt).to.be.at.least(LEASE - RENEW / 3 - 50);
    expect(a.lines().join('\n')).to.contain('did not release orders');
  });

  it('keeps leader state in the lease row\'s state column: the leader writes, every member reads, and it survives a graceful handover', async () => {
    const table = `t${(run += 1)}_${process.pid}`;
    const { a, va, b, vb } = await leaderAndFollower(table);
    const stored = async () => (await pg.sql(`SELECT state FROM ${table} WHERE lock = 'orders'`))[0]!.state;
    await checkLeaderStateHandover(va, vb, stored, MARGIN);
  });

  it('refuses, in the server, the state write of a leader whose row changed hands, and that ends its term', async () => {
    const table = `t${(run += 1)}_${process.pid}`;
    const a = await member('a', table);
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    const term = va.term!;
    await va.state.set('cursor', 1);
    // Another process took the row (as after an expiry this leader has not yet noticed): the leader's
    // own clock still says it leads, so only the server can refuse its write.
    await pg.sql(`UPDATE ${table} SET holder = 'z', instance = 'other', token = token + 1000 WHERE lock = 'orders'`);
    expect(term.isCurrent).to.equal(true);
    const err = await va.state.set('cursor', 2).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(LeadershipLostError);
    expect((err as Error).message).to.contain("no longer carries its term");
    expect(term.signal.aborted).to.equal(true);
    expect((await pg.sql(`SELECT state FROM ${table} WHERE lock = 'orders'`))[0]!.state).to.deep.equal({ cursor: 1 });
    expect(a.lines().join('\n')).to.contain('lost orders: PostgreSQL refused its leader state write');
  });
});
