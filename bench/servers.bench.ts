/**
 * Failover on the backends that run on a real server (part of `npm run bench -- failover`): 3
 * members × 10 locks, each member with its own connection through a TCP proxy, so a crash is the
 * proxy cutting it off (the server sees the member vanish, nothing is released). Measured: graceful
 * handover (the leader of most locks stops), crash failover (the next leader of most locks is cut
 * off), and the server's requests per second at steady state, for etcd, PostgreSQL and ZooKeeper.
 * etcd's reference is etcd3's own Election recipe on the same etcd, with the same TTL.
 */
import winston from 'winston';
import type { Etcd3 } from 'etcd3';
import { createClusterService, resolveClusterConfig } from '../lib/cluster/config.ts';
import type { ClusterService, ClusterView } from '../lib/cluster/cluster-service.ts';
import { EtcdServer } from '../test/support/etcd-server.ts';
import { PostgresServer } from '../test/support/postgres-server.ts';
import { TcpProxy } from '../test/support/tcp-proxy.ts';
import { ZooKeeperServer } from '../test/support/zookeeper-server.ts';
import { connect } from 'node:net';
import { fmt, median, printTable } from './measure.ts';

const MEMBERS = ['m1', 'm2', 'm3'];
const LOCKS = Array.from({ length: 10 }, (_, i) => `lock${i}`);
// client-go's defaults scaled down five times: whole-second leases, as etcd's TTLs are.
const TIMINGS = { leaseDuration: 3000, renewDeadline: 2000, retryPeriod: 400 };
const WINDOW = 10_000;
const logger = winston.createLogger({ silent: true });

interface Member {
  leads(lock: string): boolean;
  /** Graceful: stop and release. Crash: cut off at once (cleanup happens later, in close()). */
  stop(graceful: boolean): Promise<void>;
  close(): Promise<void>;
}

interface Figures {
  requestsPerSecond: number;
  handover: number[];
  crash: number[];
}

function until(check: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve(performance.now()) : setTimeout(poll, 2));
    poll();
  });
}

async function dromedaryMember(kind: 'etcd' | 'postgres' | 'zookeeper', id: string, proxy: TcpProxy, prefix: string): Promise<Member> {
  const base = { DROMEDARY_CLUSTER: kind, DROMEDARY_MEMBER_ID: id };
  const env =
    kind === 'etcd'
      ? { ...base, DROMEDARY_ETCD_ENDPOINTS: `http://127.0.0.1:${proxy.port}`, DROMEDARY_ETCD_PREFIX: prefix }
      : kind === 'postgres'
        ? { ...base, DROMEDARY_POSTGRES_URL: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, DROMEDARY_POSTGRES_TABLE: prefix.replace(/\W/g, '_').replace(/^_+|_+$/g, '') }
        : { ...base, DROMEDARY_ZOOKEEPER_NODES: `127.0.0.1:${proxy.port}${prefix.replace(/\/$/, '')}` };
  const service: ClusterService = await createClusterService(resolveClusterConfig({ env, flags: { timings: TIMINGS } }), logger);
  await service.start();
  const views = new Map<string, ClusterView>(LOCKS.map((lock) => [lock, service.view(lock)]));
  return {
    leads: (lock) => views.get(lock)!.isLeader,
    async stop(graceful) {
      if (graceful) await service.stop();
      else proxy.cut();
    },
    close: () => service.stop(),
  };
}

async function etcd3ElectionMember(id: string, proxy: TcpProxy, prefix: string): Promise<Member> {
  const { Etcd3 } = await import('etcd3');
  // Without etcd3's default circuit breaker, as dromedary's client: with it, a handover of several
  // locks at once trips the breaker and fails the other members' campaigns.
  const direct = { execute: async <T>(fn: (c: { signal: AbortSignal; attempt: number }) => T) => fn({ signal: new AbortController().signal, attempt: 1 }) };
  const client: Etcd3 = new Etcd3({ hosts: `http://127.0.0.1:${proxy.port}`, faultHandling: { host: () => direct as never, global: direct as never } });
  const ttl = Math.ceil(TIMINGS.leaseDuration / 1000);
  const elected = new Set<string>();
  const campaigns = LOCKS.map((lock) => {
    const campaign = client.election(`${prefix}${lock}`, ttl).campaign(id);
    campaign.on('elected', () => elected.add(lock));
    campaign.on('error', () => elected.delete(lock));
    return campaign;
  });
  return {
    leads: (lock) => elected.has(lock),
    async stop(graceful) {
      if (graceful) await Promise.all(campaigns.map((c) => c.resign().catch(() => undefined)));
      else proxy.cut();
      elected.clear();
    },
    async close() {
      client.close();
    },
  };
}

async function serverRequests(etcd: EtcdServer): Promise<number> {
  const text = await (await fetch(`${etcd.endpoint}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('grpc_server_msg_received_total'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Statements PostgreSQL has run (commits and rollbacks of the database's transactions). */
async function postgresStatements(server: PostgresServer): Promise<number> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(`SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = 'postgres'`);
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** Packets ZooKeeper has received (its `srvr` four-letter command). */
function zookeeperPackets(server: ZooKeeperServer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    let reply = '';
    socket.on('connect', () => socket.write('srvr'));
    socket.on('data', (d) => (reply += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/Received: (\d+)/.exec(reply)?.[1] ?? NaN)));
  });
}

async function measure(
  server: { port: number },
  count: () => Promise<number>,
  name: string,
  make: (id: string, proxy: TcpProxy, prefix: string) => Promise<Member>,
): Promise<Figures> {
  const progress = (text: string) => process.stderr.write(`[servers bench, ${name}] ${text}\n`);
  const prefix = `/bench-${name}-${Date.now()}/`;
  const proxies = await Promise.all(MEMBERS.map(() => TcpProxy.start(server.port)));
  const all = await Promise.all(MEMBERS.map((id, i) => make(id, proxies[i]!, prefix)));
  const figures: Figures = { requestsPerSecond: 0, handover: [], crash: [] };
  try {
    await until(() => LOCKS.every((l) => all.some((m) => m.leads(l))));
    await new Promise((r) => setTimeout(r, 2 * TIMINGS.retryPeriod));
    const before = await count();
    await new Promise((r) => setTimeout(r, WINDOW));
    // The counting request itself is one of them.
    figures.requestsPerSecond = ((await count()) - before - 1) / (WINDOW / 1000);
    progress(`steady state: ${figures.requestsPerSecond.toFixed(2)} requests/s`);
    let members = all;
    for (const graceful of [true, false]) {
      const count = (m: Member) => LOCKS.filter((l) => m.leads(l)).length;
      const leader = members.reduce((best, m) => (count(m) > count(best) ? m : best));
      const held = LOCKS.filter((l) => leader.leads(l));
      const others = members.filter((m) => m !== leader);
      const t0 = performance.now();
      await leader.stop(graceful);
      await Promise.all(
        held.map(async (lock) => {
          const t = await until(() => others.some((m) => m.leads(lock)));
          (graceful ? figures.handover : figures.crash).push(t - t0);
        }),
      );
      members = others;
      progress(`${graceful ? 'graceful handover' : 'crash failover'} of ${held.length} locks done`);
    }
  } finally {
    for (const p of proxies) p.heal();
    await Promise.all(all.map((m) => m.close().catch(() => undefined)));
    for (const p of proxies) await p.close();
  }
  return figures;
}

export async function run(): Promise<void> {
  const etcd = await EtcdServer.start();
  try {
    const ours = await measure(etcd, () => serverRequests(etcd), 'etcd', (id, proxy, prefix) => dromedaryMember('etcd', id, proxy, prefix));
    const reference = await measure(etcd, () => serverRequests(etcd), 'etcd3-election', etcd3ElectionMember);
    const ms = (v: number) => `${fmt(v, 0)} ms`;
    const t = `lease ${TIMINGS.leaseDuration / 1000} s, renew ${TIMINGS.renewDeadline / 1000} s, retry ${TIMINGS.retryPeriod / 1000} s`;
    printTable(`etcd backend on a real etcd 3.4 (3 members, 10 locks, ${t}; medians over the locks moved)`, [
      {
        name: `graceful handover (${ours.handover.length} locks)`,
        value: ms(median(ours.handover)),
        baseline: `${ms(median(reference.handover))} (etcd3 Election: resign, ${reference.handover.length} locks)`,
        ratio: (median(ours.handover) / median(reference.handover)).toFixed(3),
      },
      {
        name: `crash failover (${ours.crash.length} locks)`,
        value: ms(median(ours.crash)),
        baseline: `${ms(median(reference.crash))} (etcd3 Election, TTL ${TIMINGS.leaseDuration / 1000} s, ${reference.crash.length} locks)`,
        ratio: (median(ours.crash) / median(reference.crash)).toFixed(3),
        note: `bound: TTL + etcd's 0.5 s expiry check + a notification = ${TIMINGS.leaseDuration + 500} ms + ε`,
      },
      {
        name: 'etcd requests/s at steady state (gRPC messages received)',
        value: fmt(ours.requestsPerSecond, 2),
        baseline: `${fmt(reference.requestsPerSecond, 2)} (etcd3 Election: a lease per lock, kept alive every TTL/3)`,
        ratio: (ours.requestsPerSecond / reference.requestsPerSecond).toFixed(3),
        note: 'one session lease per member, kept alive every renewDeadline / 3',
      },
    ]);
  } finally {
    await etcd.stop();
  }
  const postgres = await PostgresServer.start();
  try {
    const ours = await measure(postgres, () => postgresStatements(postgres), 'postgres', (id, proxy, prefix) => dromedaryMember('postgres', id, proxy, prefix));
    const ms = (v: number) => `${fmt(v, 0)} ms`;
    const t = `lease ${TIMINGS.leaseDuration / 1000} s, renew ${TIMINGS.renewDeadline / 1000} s, retry ${TIMINGS.retryPeriod / 1000} s`;
    printTable(`postgres backend on a real PostgreSQL (3 members, 10 locks, ${t}; medians over the locks moved)`, [
      { name: `graceful handover (${ours.handover.length} locks)`, value: ms(median(ours.handover)), baseline: `${TIMINGS.leaseDuration} ms (leaseDuration, a lease left to expire)`, ratio: (median(ours.handover) / TIMINGS.leaseDuration).toFixed(3), note: 'release + NOTIFY' },
      { name: `crash failover (${ours.crash.length} locks)`, value: ms(median(ours.crash)), baseline: `${TIMINGS.leaseDuration} ms (leaseDuration)`, ratio: (median(ours.crash) / TIMINGS.leaseDuration).toFixed(3), note: 'bound: leaseDuration + a statement' },
      { name: 'statements/s at steady state (pg_stat_database)', value: fmt(ours.requestsPerSecond, 2), baseline: `${fmt((MEMBERS.length * LOCKS.length) / (TIMINGS.retryPeriod / 1000), 2)} (client-go's loop: every member tries or renews every lock each retryPeriod)`, ratio: (ours.requestsPerSecond / ((MEMBERS.length * LOCKS.length) / (TIMINGS.retryPeriod / 1000))).toFixed(3), note: 'leader renews every renewDeadline / 3; followers wake at the expiry the server reports' },
    ]);
  } finally {
    await postgres.stop();
  }
  const zookeeper = await ZooKeeperServer.start();
  try {
    const ours = await measure(zookeeper, () => zookeeperPackets(zookeeper), 'zookeeper', (id, proxy, prefix) => dromedaryMember('zookeeper', id, proxy, prefix));
    const ms = (v: number) => `${fmt(v, 0)} ms`;
    const t = `lease ${TIMINGS.leaseDuration / 1000} s, renew ${TIMINGS.renewDeadline / 1000} s, retry ${TIMINGS.retryPeriod / 1000} s, tickTime 0.2 s`;
    const naive = (MEMBERS.length * LOCKS.length) / (TIMINGS.retryPeriod / 1000);
    printTable(`zookeeper backend on a real ZooKeeper 3.8 (3 members, 10 locks, ${t}; medians over the locks moved)`, [
      { name: `graceful handover (${ours.handover.length} locks)`, value: ms(median(ours.handover)), baseline: `${TIMINGS.leaseDuration} ms (leaseDuration: the session left to expire)`, ratio: (median(ours.handover) / TIMINGS.leaseDuration).toFixed(3), note: 'nodes deleted, the next member watching' },
      { name: `crash failover (${ours.crash.length} locks)`, value: ms(median(ours.crash)), baseline: `${TIMINGS.leaseDuration} ms (session timeout)`, ratio: (median(ours.crash) / TIMINGS.leaseDuration).toFixed(3), note: 'bound: session timeout + a tick' },
      { name: 'packets/s received at steady state (srvr)', value: fmt(ours.requestsPerSecond, 2), baseline: `${fmt(naive, 2)} (client-go's loop: every member tries or renews every lock each retryPeriod)`, ratio: (ours.requestsPerSecond / naive).toFixed(3), note: "one session per member: the client's pings and one check every renewDeadline / 3" },
    ]);
  } finally {
    await zookeeper.stop();
  }
}
