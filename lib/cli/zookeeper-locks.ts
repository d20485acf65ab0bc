import type { ClusterConfig } from '../cluster/config.ts';
import { parseZooKeeperNodes } from '../cluster/zookeeper/index.ts';
import { ZkClient, type ZkModule } from '../cluster/zookeeper/zk-client.ts';
import { member, sequence } from '../cluster/zookeeper/zk-campaign.ts';
import { withTimeout } from '../cluster/campaign/campaign.ts';
import { ConfigurationError } from '../errors.ts';
import type { LockStatus, StoreStatus } from './lock-records.ts';

/**
 * The zookeeper backend's locks, read from outside: each lock's candidates are the ephemeral nodes
 * `latch-<member>-<sequence>` under `<chroot>/dromedary/<lock>` (see
 * lib/cluster/zookeeper/zk-campaign.ts); the lowest sequence leads, its creation zxid is the fencing
 * token, and it exists exactly while its member's session is live on the server. ZooKeeper records
 * no renew time, and a session's expiry is the server's to know.
 */
export async function readZooKeeperLocks(config: ClusterConfig, timeout: number): Promise<StoreStatus> {
  const { servers, chroot } = parseZooKeeperNodes(config.env.DROMEDARY_ZOOKEEPER_NODES);
  const specifier = 'node-zookeeper-client';
  const zk = ((await import(specifier)) as { default: ZkModule }).default;
  const root = `${chroot}/dromedary`;
  const fail = (err: unknown) =>
    new ConfigurationError(`cannot read the locks from ZooKeeper at ${servers}: ${(err as Error).message}. Set DROMEDARY_ZOOKEEPER_NODES (or --zookeeper-nodes) as the members have it`);
  const connecting = ZkClient.connect(zk, servers, config.timings.leaseDuration, timeout, Math.min(config.timings.retryPeriod, 1000));
  let client: ZkClient;
  try {
    client = await withTimeout(connecting, timeout, 'zookeeper connect');
  } catch (err) {
    // A client still connecting must not be closed (zk-client.ts): it is closed once it has connected.
    void connecting.then((late) => late.close(), () => undefined);
    throw fail(err);
  }
  const missing = (err: unknown) => (err as { code?: number }).code === zk.Exception.NO_NODE;
  try {
    const names = await client.children(root).catch((err: unknown) => (missing(err) ? [] : Promise.reject(err)));
    const locks: LockStatus[] = [];
    for (const name of names.sort()) {
      const lock = decodeURIComponent(name);
      const candidates = (await client.children(`${root}/${name}`).catch((err: unknown) => (missing(err) ? [] : Promise.reject(err))))
        .filter((c) => c.startsWith('latch-'))
        .sort((a, b) => sequence(a) - sequence(b));
      let holder: string | undefined;
      let term: number | undefined;
      // The first may go between the listing and this read: then the next one leads.
      for (const candidate of candidates) {
        term = await client.created(`${root}/${name}/${candidate}`);
        if (term !== undefined) {
          holder = member(candidate);
          break;
        }
      }
      locks.push({
        lock,
        holder,
        term,
        transitions: undefined,
        acquireTime: undefined,
        renewTime: undefined,
        leaseDurationMs: config.timings.leaseDuration,
        valid: holder !== undefined,
        expiresInMs: undefined,
        members: [...new Set(candidates.map(member))].sort(),
      });
    }
    return { backend: 'zookeeper', where: `${servers} nodes ${root}`, liveBy: 'session', locks };
  } catch (err) {
    throw fail(err);
  } finally {
    client.close();
  }
}
