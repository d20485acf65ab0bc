import type { ClusterConfig } from '../cluster/config.ts';
import { parseEtcdEndpoints } from '../cluster/etcd/index.ts';
import { withTimeout } from '../cluster/campaign/campaign.ts';
import { ConfigurationError } from '../errors.ts';
import { maskSecrets } from '../uri/mask.ts';
import type { LockStatus, StoreStatus } from './lock-records.ts';

/** A candidate's key is `<prefix><encoded lock>/<session lease id>` (see lib/cluster/etcd/etcd-campaign.ts). */
const CANDIDATE = /^([^/]+)\/(\d+)$/;

/**
 * The etcd backend's locks, read from outside: each lock's candidates are its keys, the oldest
 * (lowest create revision) leads, and that revision is its fencing token. A key lives while its
 * member's session lease does; the lease's remaining TTL is when the server deletes it if not
 * kept alive. etcd records no acquire or renew times.
 */
export async function readEtcdLocks(config: ClusterConfig, timeout: number): Promise<StoreStatus> {
  const endpoints = parseEtcdEndpoints(config.env.DROMEDARY_ETCD_ENDPOINTS);
  const prefix = config.env.DROMEDARY_ETCD_PREFIX || '/dromedary/leader/';
  const { Etcd3 } = await import('etcd3');
  // One try per call, bounded by the timeout: the client must not retry behind it.
  const direct = { execute: async <T>(fn: (context: { signal: AbortSignal; attempt: number }) => T) => fn({ signal: new AbortController().signal, attempt: 1 }) };
  const client = new Etcd3({
    hosts: endpoints.hosts,
    ...(endpoints.auth ? { auth: endpoints.auth } : {}),
    dialTimeout: timeout,
    faultHandling: { host: () => direct as never, global: direct as never },
  });
  const where = `${endpoints.hosts.join(',')} keys ${prefix}`;
  try {
    const listed = await withTimeout(client.getAll().prefix(prefix).exec(), timeout, 'etcd range');
    const byLock = new Map<string, Array<{ lease: string; member: string; revision: number }>>();
    for (const kv of listed.kvs) {
      const match = CANDIDATE.exec(kv.key.toString().slice(prefix.length));
      if (!match) continue;
      const lock = decodeURIComponent(match[1]!);
      const candidates = byLock.get(lock) ?? [];
      candidates.push({ lease: match[2]!, member: kv.value.toString(), revision: Number(kv.create_revision) });
      byLock.set(lock, candidates);
    }
    const locks: LockStatus[] = [];
    for (const [lock, candidates] of [...byLock].sort(([a], [b]) => a.localeCompare(b))) {
      const holder = candidates.reduce((first, c) => (c.revision < first.revision ? c : first));
      const ttl = await withTimeout(client.leaseClient.leaseTimeToLive({ ID: holder.lease }), timeout, 'etcd lease time-to-live');
      // TTL is whole seconds left (-1: the lease is gone, and its keys with it in a moment).
      const left = Number(ttl.TTL);
      const granted = Number(ttl.grantedTTL);
      locks.push({
        lock,
        holder: holder.member,
        term: holder.revision,
        transitions: undefined,
        acquireTime: undefined,
        renewTime: undefined,
        leaseDurationMs: granted > 0 ? granted * 1000 : config.timings.leaseDuration,
        valid: left > 0,
        expiresInMs: left > 0 ? left * 1000 : 0,
        members: [...new Set(candidates.map((c) => c.member))].sort(),
      });
    }
    return { backend: 'etcd', where, locks };
  } catch (err) {
    throw new ConfigurationError(
      maskSecrets(`cannot read the locks from etcd at ${endpoints.hosts.join(', ')}: ${(err as Error).message}. Set DROMEDARY_ETCD_ENDPOINTS (or --etcd-endpoints) as the members have it`),
    );
  } finally {
    client.close();
  }
}
