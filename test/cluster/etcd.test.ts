import { expect } from 'chai';
import { ConfigurationError } from '../../lib/errors.ts';
import { createClusterService, resolveClusterConfig } from '../../lib/cluster/config.ts';
import type { ClusterService, LeadershipEvent } from '../../lib/cluster/cluster-service.ts';
import { parseEtcdEndpoints } from '../../lib/cluster/etcd/index.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { EtcdServer } from '../support/etcd-server.ts';
import { waitFor } from '../support/wait.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { LeadershipLostError } from '../../lib/errors.ts';
import { checkLeaderStateHandover } from '../support/leader-state-checks.ts';

const TIMINGS = { DROMEDARY_LEASE_DURATION: '2s', DROMEDARY_RENEW_DEADLINE: '1300ms', DROMEDARY_RETRY_PERIOD: '150ms' };
/** Allowance for a watch notification and a few requests to the local etcd, on a busy machine. */
const MARGIN = 1000;

describe('etcd cluster configuration', () => {
  it('needs its servers, and names the variable and flag when they are missing', () => {
    const config = resolveClusterConfig({ env: { DROMEDARY_CLUSTER: 'etcd' } });
    expect(config.kind).to.equal('etcd');
    expect(() => parseEtcdEndpoints(config.env.DROMEDARY_ETCD_ENDPOINTS)).to.throw(ConfigurationError, /DROMEDARY_ETCD_ENDPOINTS \(or --etcd-endpoints\)/);
  });

  it('takes --etcd-endpoints over the environment, and a URL\'s credentials as etcd authentication without printing them', () => {
    const config = resolveClusterConfig({
      flags: { cluster: 'etcd', etcdEndpoints: 'http://user:s3cret@127.0.0.1:2379, http://127.0.0.1:2479' },
      env: { DROMEDARY_ETCD_ENDPOINTS: 'http://elsewhere:2379' },
    });
    expect(parseEtcdEndpoints(config.env.DROMEDARY_ETCD_ENDPOINTS)).to.deep.equal({
      hosts: ['http://127.0.0.1:2379', 'http://127.0.0.1:2479'],
      auth: { username: 'user', password: 's3cret' },
    });
    expect(() => parseEtcdEndpoints('https://user:s3cret@host:2379')).to.throw(ConfigurationError, /https:/).that.satisfies((e: Error) => !e.message.includes('s3cret'));
    expect(() => parseEtcdEndpoints('127.0.0.1:2379')).to.throw(ConfigurationError, /use http:\/\/host:2379/);
  });
});

describe('etcd cluster service on a real etcd', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  const services: ClusterService[] = [];
  const proxies: TcpProxy[] = [];
  let run = 0;

  before(async function () {
    this.timeout(120_000);
    etcd = await EtcdServer.start();
  });
  after(async () => {
    await etcd?.stop();
  });
  afterEach(async () => {
    for (const p of proxies) p.release();
    for (const s of services.splice(0)) await s.stop();
    for (const p of proxies.splice(0)) await p.close();
  });

  async function member(id: string, prefix: string, options: { endpoint?: string; timings?: Record<string, string> } = {}): Promise<{ service: ClusterService; lines: () => string[] }> {
    const { logger, messages } = captureLogger();
    const config = resolveClusterConfig({
      env: { DROMEDARY_CLUSTER: 'etcd', DROMEDARY_MEMBER_ID: id, DROMEDARY_ETCD_ENDPOINTS: options.endpoint ?? etcd.endpoint, DROMEDARY_ETCD_PREFIX: prefix, ...(options.timings ?? TIMINGS) },
    });
    const service = await createClusterService(config, logger);
    services.push(service);
    await service.start();
    return { service, lines: messages };
  }

  /** Member a leading orders, then member b following it, seeing a lead. */
  async function leaderAndFollower(prefix: string) {
    const a = await member('a', prefix);
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    const b = await member('b', prefix);
    const vb = b.service.view('orders');
    await waitFor(() => vb.leader === 'a', { timeout: 5000 });
    return { a, va, b, vb };
  }

  it('elects one leader per lock, reports leader, members and a term whose token is the key revision', async () => {
    const prefix = `/t${(run += 1)}/`;
    const a = await member('a', prefix);
    const b = await member('b', prefix);
    const va = a.service.view('orders');
    const vb = b.service.view('orders');
    await waitFor(() => va.isLeader || vb.isLeader, { timeout: 5000 });
    const [leader, follower] = va.isLeader ? [va, vb] : [vb, va];
    // Each member learns the other from its own watch: wait for both views, not only the follower's.
    await waitFor(() => follower.leader === leader.localMember.id && follower.members.length === 2 && leader.members.length === 2, { timeout: 5000 });
    expect(follower.isLeader).to.equal(false);
    expect(follower.term).to.equal(undefined);
    expect(leader.members.map((m) => `${m.id}${m.isLeader ? '*' : ''}`)).to.have.members([`${leader.localMember.id}*`, follower.localMember.id]);
    const term = leader.term!;
    expect(term.isCurrent).to.equal(true);
    const keys = await etcd.ctl('get', '--prefix', `${prefix}orders/`, '-w', 'json');
    const kvs = (JSON.parse(keys) as { kvs: { create_revision: number }[] }).kvs;
    expect(term.token).to.equal(Math.min(...kvs.map((kv) => kv.create_revision)));
    expect(a.service.kind).to.equal('etcd');
    // For metrics: the leader began one term and renews; the follower saw no change between other leaders.
    expect(leader.stats.transitions).to.equal(1);
    expect(leader.stats.lastRenewAgeMs).to.be.a('number').and.to.be.within(0, 10_000);
    expect(follower.stats).to.deep.equal({ transitions: 0, lastRenewAgeMs: undefined });
  });

  it('hands over at once when the leader closes its view, ending its term and giving a higher token', async () => {
    const prefix = `/t${(run += 1)}/`;
    const a = await member('a', prefix);
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    const first = va.term!;
    const b = await member('b', prefix);
    const vb = b.service.view('orders');
    const events: LeadershipEvent[] = [];
    vb.on('leadership', (e) => events.push(e));
    await waitFor(() => vb.leader === 'a', { timeout: 5000 });
    const closedAt = performance.now();
    await va.close();
    expect(first.signal.aborted).to.equal(true);
    expect(first.isCurrent).to.equal(false);
    await waitFor(() => vb.isLeader, { timeout: MARGIN });
    expect(performance.now() - closedAt).to.be.below(MARGIN);
    expect(vb.term!.token).to.be.greaterThan(first.token);
    expect(events.at(-1)).to.include({ leader: 'b', isLocal: true });
  });

  it('close({ release: false }) leaves the lock to expire: the follower waits leaseDuration', async () => {
    const prefix = `/t${(run += 1)}/`;
    const { a, va, b, vb } = await leaderAndFollower(prefix);
    const closedAt = performance.now();
    await va.close({ release: false });
    expect(va.isLeader).to.equal(false);
    await waitFor(() => vb.isLeader, { timeout: 2000 + MARGIN + 2000 });
    expect(performance.now() - closedAt).to.be.at.least(2000);
    expect(a.lines().join('\n')).to.contain('did not release orders');
  });

  it('keeps leader state in the key <prefix><lock>: the leader writes, every member reads, and it survives a graceful handover', async () => {
    const prefix = `/t${(run += 1)}/`;
    const { a, va, b, vb } = await leaderAndFollower(prefix);
    const stored = async () => JSON.parse(await etcd.ctl('get', '--print-value-only', `${prefix}orders`)) as unknown;
    await checkLeaderStateHandover(va, vb, stored, MARGIN);
    // The state key is no candidate: b leads alone.
    expect(vb.members.map((m) => m.id)).to.deep.equal(['b']);
  });

  it('refuses, in etcd, a state write that reaches it only after the writer lost the lock', async () => {
    const prefix = `/t${(run += 1)}/`;
    // Calls may take up to renewDeadline/3 = 3 s here: the delayed write is answered, not timed out.
    const timings = { DROMEDARY_LEASE_DURATION: '12s', DROMEDARY_RENEW_DEADLINE: '9s', DROMEDARY_RETRY_PERIOD: '3s' };
    const proxy = await TcpProxy.start(etcd.port);
    proxies.push(proxy);
    const a = await member('a', prefix, { endpoint: `http://127.0.0.1:${proxy.port}`, timings });
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    await va.state.set('cursor', 1);
    const b = await member('b', prefix, { timings });
    const vb = b.service.view('orders');
    await waitFor(() => vb.leader === 'a', { timeout: 5000 });
    const listed = JSON.parse(await etcd.ctl('get', '--prefix', `${prefix}orders/`, '-w', 'json')) as { kvs: { key: string; value: string }[] };
    const keyOfA = Buffer.from(listed.kvs.find((kv) => Buffer.from(kv.value, 'base64').toString() === 'a')!.key, 'base64').toString();
    const stored = async () => JSON.parse(await etcd.ctl('get', '--print-value-only', `${prefix}orders`)) as unknown;
    // a's write leaves while it still leads, and the network holds it; meanwhile a's key is deleted
    // and b leads (and has read the state, not yet written it). Then the write arrives: only the
    // compare on a's key can refuse it now.
    proxy.hold();
    const late = va.state.set('cursor', 'stale').catch((e: unknown) => e);
    await etcd.ctl('del', keyOfA);
    await waitFor(() => vb.isLeader, { timeout: MARGIN });
    expect(await vb.state.get('cursor')).to.equal(1);
    proxy.release();
    const err = await late;
    expect(err).to.be.instanceOf(LeadershipLostError);
    expect((err as Error).message).to.contain('etcd refused its leader state write');
    expect(await stored()).to.deep.equal({ cursor: 1 });
    await vb.state.set('cursor', 'new');
    expect(await stored()).to.deep.equal({ cursor: 'new' });
  });
});
