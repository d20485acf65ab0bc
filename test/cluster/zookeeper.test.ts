import { expect } from 'chai';
import { ConfigurationError } from '../../lib/errors.ts';
import { createClusterService, resolveClusterConfig } from '../../lib/cluster/config.ts';
import type { ClusterService } from '../../lib/cluster/cluster-service.ts';
import { parseZooKeeperNodes } from '../../lib/cluster/zookeeper/index.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';
import { checkLeaderStateHandover } from '../support/leader-state-checks.ts';
import { LeadershipLostError } from '../../lib/errors.ts';
import { ZooKeeperServer } from '../support/zookeeper-server.ts';

const LEASE = 2000;
const RENEW = 1300;
const TIMINGS = { DROMEDARY_LEASE_DURATION: `${LEASE}ms`, DROMEDARY_RENEW_DEADLINE: `${RENEW}ms`, DROMEDARY_RETRY_PERIOD: '150ms' };
/** Allowance for a watch notification, ZooKeeper's tickTime-bucketed expiry and a few requests, on a busy machine. */
const MARGIN = 1000;

describe('zookeeper cluster configuration', () => {
  it('needs its servers, takes the flag over the environment, and an optional chroot', () => {
    const config = resolveClusterConfig({ env: { DROMEDARY_CLUSTER: 'zookeeper' } });
    expect(config.kind).to.equal('zookeeper');
    expect(() => parseZooKeeperNodes(config.env.DROMEDARY_ZOOKEEPER_NODES)).to.throw(ConfigurationError, /DROMEDARY_ZOOKEEPER_NODES \(or --zookeeper-nodes\)/);
    const flagged = resolveClusterConfig({ flags: { cluster: 'zookeeper', zookeeperNodes: 'a:2181,b:2182/apps/orders' }, env: { DROMEDARY_ZOOKEEPER_NODES: 'c:2181' } });
    expect(parseZooKeeperNodes(flagged.env.DROMEDARY_ZOOKEEPER_NODES)).to.deep.equal({ servers: 'a:2181,b:2182', chroot: '/apps/orders' });
    expect(() => parseZooKeeperNodes('zk.example.com')).to.throw(ConfigurationError, /"zk.example.com" is not host:port/);
    expect(() => parseZooKeeperNodes('a:2181/bad path')).to.throw(ConfigurationError, /chroot "\/bad path" is not a path/);
  });
});

describe('zookeeper cluster service on a real ZooKeeper', function () {
  this.timeout(60_000);
  let zk: ZooKeeperServer;
  const services: ClusterService[] = [];
  const proxies: TcpProxy[] = [];
  let run = 0;

  before(async function () {
    this.timeout(120_000);
    zk = await ZooKeeperServer.start();
  });
  after(async () => {
    await zk?.stop();
  });
  afterEach(async () => {
    for (const p of proxies) {
      p.heal();
      p.release();
    }
    for (const s of services.splice(0)) await s.stop();
    for (const p of proxies.splice(0)) await p.close();
  });

  async function member(id: string, chroot: string, timings: Record<string, string> = TIMINGS): Promise<{ service: ClusterService; proxy: TcpProxy; lines: () => string[] }> {
    const { logger, messages } = captureLogger();
    const proxy = await TcpProxy.start(zk.port);
    proxies.push(proxy);
    const config = resolveClusterConfig({ env: { DROMEDARY_CLUSTER: 'zookeeper', DROMEDARY_MEMBER_ID: id, DROMEDARY_ZOOKEEPER_NODES: `127.0.0.1:${proxy.port}${chroot}`, ...timings } });
    const service = await createClusterService(config, logger);
    services.push(service);
    await service.start();
    return { service, proxy, lines: messages };
  }

  /** Member a leading orders, then member b following it, seeing a lead. */
  async function leaderAndFollower(chroot: string) {
    const a = await member('a', chroot);
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    const b = await member('b', chroot);
    const vb = b.service.view('orders');
    await waitFor(() => vb.leader === 'a', { timeout: 5000 });
    return { a, va, b, vb };
  }

  it('elects one leader, lists the members, hands over at once on close, and every term has a higher token', async () => {
    const chroot = `/t${(run += 1)}`;
    const { a, va, b, vb } = await leaderAndFollower(chroot);
    const first = va.term!;
    expect(vb.isLeader).to.equal(false);
    expect(vb.members.map((m) => `${m.id}${m.isLeader ? '*' : ''}`)).to.deep.equal(['a*', 'b']);
    const closedAt = performance.now();
    await va.close();
    expect(first.signal.aborted).to.equal(true);
    await waitFor(() => vb.isLeader, { timeout: MARGIN });
    expect(performance.now() - closedAt).to.be.below(MARGIN);
    expect(vb.term!.token).to.be.greaterThan(first.token);
    expect(a.service.kind).to.equal('zookeeper');
  });

  it('a leader whose session is suspended (connection cut) steps down within renewDeadline, before the follower takes over', async () => {
    const chroot = `/t${(run += 1)}`;
    const { a, va, b, vb } = await leaderAndFollower(chroot);
    const term = va.term!;
    let endedAt = 0;
    term.signal.addEventListener('abort', () => (endedAt = performance.now()));
    const cutAt = performance.now();
    a.proxy.cut();
    await waitFor(() => vb.isLeader, { timeout: LEASE + MARGIN + 2000 });
    const takeoverAt = performance.now();
    expect(endedAt, 'the suspended leader ended its term').to.be.greaterThan(0);
    expect(endedAt).to.be.below(takeoverAt);
    expect(endedAt - cutAt).to.be.below(RENEW + MARGIN);
    expect(vb.term!.token).to.be.greaterThan(term.token);
    expect(a.lines().join('\n')).to.contain('the session was suspended too long');
  });

  it('a leader whose node is deleted by someone ends its term at once, and leads again with a higher token', async () => {
    const chroot = `/t${(run += 1)}`;
    const a = await member('a', chroot);
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    const term = va.term!;
    const specifier = 'node-zookeeper-client';
    const zkLib = (await import(specifier)).default as {
      createClient(s: string): { connect(): void; close(): void; once(e: string, f: () => void): void; getChildren(p: string, cb: (e: Error | null, c: string[]) => void): void; remove(p: string, cb: (e: Error | null) => void): void };
    };
    const raw = zkLib.createClient(zk.connectString);
    await new Promise<void>((resolve) => {
      raw.once('connected', () => resolve());
      raw.connect();
    });
    try {
      const base = `${chroot}/dromedary/orders`;
      const [node] = await new Promise<string[]>((resolve, reject) => raw.getChildren(base, (e, c) => (e ? reject(e) : resolve(c))));
      await new Promise<void>((resolve, reject) => raw.remove(`${base}/${node}`, (e) => (e ? reject(e) : resolve())));
    } finally {
      raw.close();
    }
    await waitFor(() => term.signal.aborted, { timeout: MARGIN });
    await waitFor(() => va.isLeader, { timeout: 2000 + MARGIN });
    expect(va.term!.token).to.be.greaterThan(term.token);
    expect(a.lines().join('\n')).to.contain('its ZooKeeper node was deleted');
  });

  it('close({ release: false }) leaves the node for leaseDuration: the follower waits for it', async () => {
    const chroot = `/t${(run += 1)}`;
    const { a, va, b, vb } = await leaderAndFollower(chroot);
    const closedAt = performance.now();
    await va.close({ release: false });
    expect(va.isLeader).to.equal(false);
    await waitFor(() => vb.isLeader, { timeout: LEASE + MARGIN + 2000 });
    expect(performance.now() - closedAt).to.be.at.least(LEASE);
    expect(a.lines().join('\n')).to.contain('did not release orders');
  });

  it('keeps leader state as the data of the lock node: the leader writes, every member reads, and it survives a graceful handover', async () => {
    const chroot = `/t${(run += 1)}`;
    const { a, va, b, vb } = await leaderAndFollower(chroot);
    const stored = () => readNode(zk.connectString, `${chroot}/dromedary/orders`);
    await checkLeaderStateHandover(va, vb, stored, MARGIN);
  });

  it('refuses, in ZooKeeper, a state write that reaches it only after the writer lost the lock', async () => {
    const chroot = `/t${(run += 1)}`;
    // Calls may take up to renewDeadline/3 = 1.2 s here (the server's session limit is 4 s): the delayed write is answered, not timed out.
    const timings = { DROMEDARY_LEASE_DURATION: '4000ms', DROMEDARY_RENEW_DEADLINE: '3600ms', DROMEDARY_RETRY_PERIOD: '1200ms' };
    const a = await member('a', chroot, timings);
    const va = a.service.view('orders');
    await waitFor(() => va.isLeader, { timeout: 5000 });
    await va.state.set('cursor', 1);
    const b = await member('b', chroot, timings);
    const vb = b.service.view('orders');
    await waitFor(() => vb.leader === 'a', { timeout: 5000 });
    const base = `${chroot}/dromedary/orders`;
    const raw = await connectRaw(zk.connectString);
    try {
      const children = await new Promise<string[]>((resolve, reject) => raw.getChildren(base, (e, c) => (e ? reject(e) : resolve(c))));
      const nodeOfA = children.find((c) => c.startsWith('latch-a-'))!;
      // a's write leaves while it still leads, and the network holds it; meanwhile a's node is
      // deleted and b leads (and has read the state, not yet written it). Then the write arrives:
      // only the multi()'s check of a's node can refuse it now.
      a.proxy.hold();
      const late = va.state.set('cursor', 'stale').catch((e: unknown) => e);
      await new Promise<void>((resolve, reject) => raw.remove(`${base}/${nodeOfA}`, (e) => (e ? reject(e) : resolve())));
      await waitFor(() => vb.isLeader, { timeout: MARGIN });
      expect(await vb.state.get('cursor')).to.equal(1);
      a.proxy.release();
      const err = await late;
      expect(err).to.be.instanceOf(LeadershipLostError);
      expect((err as Error).message).to.contain('ZooKeeper refused its leader state write');
      expect(await dataOf(raw, base)).to.deep.equal({ cursor: 1 });
      await vb.state.set('cursor', 'new');
      expect(await dataOf(raw, base)).to.deep.equal({ cursor: 'new' });
    } finally {
      raw.close();
    }
  });
});

interface RawZk {
  connect(): void;
  close(): void;
  once(e: string, f: () => void): void;
  getData(p: string, cb: (e: Error | null, data: Buffer) => void): void;
  getChildren(p: string, cb: (e: Error | null, c: string[]) => void): void;
  remove(p: string, cb: (e: Error | null) => void): void;
}

/** A ZooKeeper client of the test's own, connected. */
async function connectRaw(connectString: string): Promise<RawZk> {
  const specifier = 'node-zookeeper-client';
  const zkLib = (await import(specifier)).default as { createClient(s: string): RawZk };
  const raw = zkLib.createClient(connectString);
  await new Promise<void>((resolve) => {
    raw.once('connected', () => resolve());
    raw.connect();
  });
  return raw;
}

async function dataOf(raw: RawZk, path: string): Promise<unknown> {
  const data = await new Promise<Buffer>((resolve, reject) => raw.getData(path, (e, d) => (e ? reject(e) : resolve(d))));
  return JSON.parse(data.toString('utf8'));
}

/** A node's data as JSON, read by a client of the test's own. */
async function readNode(connectString: string, path: string): Promise<unknown> {
  const raw = await connectRaw(connectString);
  try {
    return await dataOf(raw, path);
  } finally {
    raw.close();
  }
}
