import { readdir } from 'node:fs/promises';
import { ConfigurationError } from '../errors.ts';
import type { ClusterConfig } from '../cluster/config.ts';
import type { LockRecord } from '../cluster/election/lock-store.ts';

/** One lock as its store records it, read from outside the cluster (`dromedary status`). */
export interface LockStatus {
  lock: string;
  /** The holder's member id; undefined when released or never held. */
  holder: string | undefined;
  /** The fencing token of the holder's term (leaseTransitions for a record written before tokens). */
  term: number | undefined;
  /** How many times the lock changed hands; undefined in ConfigMap mode. */
  transitions: number | undefined;
  acquireTime: string | undefined;
  renewTime: string | undefined;
  leaseDurationMs: number;
  /**
   * Whether the holder's lease is still valid: by the record's renew time plus its lease on this
   * machine's clock (file, Lease), by the server's clock (postgres, and etcd's lease TTL), or the
   * holder's pod being Running and Ready (ConfigMap mode) or its session being live (zookeeper).
   */
  valid: boolean;
  /** When the lease runs out unless renewed, in ms from now (negative: ran out); undefined in ConfigMap mode and on zookeeper. */
  expiresInMs: number | undefined;
  /** Members seen taking part, where the store knows them (file, ConfigMap mode, etcd, zookeeper). */
  members?: string[];
}

export interface StoreStatus {
  backend: string;
  /** The folder, namespace/resource, or servers and keys read. */
  where: string;
  /**
   * For a lock without an expiry (`expiresInMs` undefined), what its validity follows: the holder's
   * pod being live (ConfigMap mode) or its session on the server (zookeeper).
   */
  liveBy?: 'pod' | 'session';
  locks: LockStatus[];
}

const READ_TIMEOUT_MS = 10_000;

/** Reads every lock the configured backend holds, the way `dromedary run` with the same settings would find them. */
export async function readLockStatuses(config: ClusterConfig, now = Date.now()): Promise<StoreStatus> {
  switch (config.kind) {
    case 'file':
      return readFileLocks(config, now);
    case 'kubernetes':
      return readKubernetesLocks(config, now);
    case 'etcd':
      return (await import('./etcd-locks.ts')).readEtcdLocks(config, READ_TIMEOUT_MS);
    case 'postgres':
      return (await import('./postgres-locks.ts')).readPostgresLocks(config, READ_TIMEOUT_MS);
    case 'zookeeper':
      return (await import('./zookeeper-locks.ts')).readZooKeeperLocks(config, READ_TIMEOUT_MS);
    case 'none':
      throw new ConfigurationError('--cluster none keeps no shared locks to show: use --cluster file, kubernetes, etcd, postgres or zookeeper (or auto), as the members run');
  }
}

function fromRecord(lock: string, record: LockRecord, now: number): LockStatus {
  const holder = record.holderIdentity === '' ? undefined : record.holderIdentity;
  const renewed = Date.parse(record.renewTime);
  // `now` is taken before the reads: a record renewed since then was renewed now, not in the future.
  const expiresInMs = holder === undefined || Number.isNaN(renewed) ? undefined : Math.min(renewed, now) + record.leaseDurationMs - now;
  // A record that carries a fencingToken is read by it; one without uses leaseTransitions, the token before it.
  const token = record.fencingToken ?? record.leaseTransitions;
  return {
    lock,
    holder,
    term: token,
    transitions: record.leaseTransitions,
    acquireTime: record.acquireTime || undefined,
    renewTime: record.renewTime || undefined,
    leaseDurationMs: record.leaseDurationMs,
    valid: expiresInMs !== undefined && expiresInMs > 0,
    expiresInMs,
  };
}

async function readFileLocks(config: ClusterConfig, now: number): Promise<StoreStatus> {
  const { FileLockStore } = await import('../cluster/file/file-lock-store.ts');
  const store = new FileLockStore(config.root);
  let names: string[];
  try {
    names = (await readdir(config.root, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigurationError(`cannot read the file cluster folder ${config.root} (${(err as Error).message}): set DROMEDARY_CLUSTER_ROOT as the members have it`);
    }
    names = [];
  }
  const locks: LockStatus[] = [];
  const signal = AbortSignal.timeout(READ_TIMEOUT_MS);
  // Heartbeat mode's member list: the heartbeat files (per-lock renewals keep member files under each lock).
  const { FileHeartbeatBackend } = await import('../cluster/file/file-heartbeats.ts');
  const memberBeats = names.length === 0 ? new Map() : await new FileHeartbeatBackend(store).listHeartbeats().catch(() => new Map());
  for (const name of names.sort()) {
    const lock = decodeURIComponent(name);
    let current = await store.get(lock, signal);
    if (!current) continue;
    if (current.record.heartbeat) {
      // Heartbeat mode: the holder renews its heartbeat file, not the record.
      const { renewedRecord } = await import('../cluster/election/heartbeat-store.ts');
      const beat = await new FileHeartbeatBackend(store).readHeartbeat(current.record.heartbeat).catch(() => undefined);
      current = { ...current, record: renewedRecord(lock, current.record, beat) };
    }
    // A one-shot reader sees each heartbeat once, so it judges the files' times against this machine's
    // clock, a hint like the lease's validity here.
    const beats = await store.heartbeats(lock);
    const members = beats.filter((b) => now - b.mtimeMs < current.record.leaseDurationMs).map((b) => b.member);
    for (const beat of memberBeats.values()) if (now - Date.parse(beat.record.renewTime) < current.record.leaseDurationMs) members.push(beat.record.member);
    locks.push({ ...fromRecord(lock, current.record, now), members: [...new Set(members)].sort() });
  }
  return { backend: 'file', where: config.root, locks };
}

async function readKubernetesLocks(config: ClusterConfig, now: number): Promise<StoreStatus> {
  const { apiTarget, describeApiFailure, loadKubeClient, loadKubeConfig, resolveNamespace, statusOf, withSignal } = await import('../cluster/kubernetes/client.ts');
  const { parseClusterLabels } = await import('../cluster/kubernetes/index.ts');
  const env = config.env;
  const k8s = await loadKubeClient();
  const kc = loadKubeConfig(k8s, env);
  const namespace = resolveNamespace(kc, env);
  const clusterLabels = parseClusterLabels(env.DROMEDARY_CLUSTER_LABELS);
  const selector = (labels: Record<string, string>) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
  const mode = (env.DROMEDARY_K8S_LOCK ?? 'lease').toLowerCase();
  const options = () => withSignal(AbortSignal.timeout(READ_TIMEOUT_MS));
  try {
    if (mode === 'configmap') {
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const name = env.DROMEDARY_K8S_CONFIGMAP || 'leaders';
      let data: Record<string, string> = {};
      try {
        data = (await core.readNamespacedConfigMap({ name, namespace }, options())).data ?? {};
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      const pods = await core.listNamespacedPod({ namespace, labelSelector: selector(clusterLabels) || undefined }, options());
      const live = new Set(
        pods.items
          .filter((p) => p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          .map((p) => p.metadata?.name),
      );
      const locks = Object.keys(data)
        .filter((k) => k.startsWith('leader.pod.'))
        .map((k) => k.slice('leader.pod.'.length))
        .sort()
        .map((lock): LockStatus => {
          const holder = data[`leader.pod.${lock}`] || undefined;
          const time = data[`leader.local.timestamp.${lock}`] || undefined;
          const token = Number(data[`leader.token.${lock}`]);
          return {
            lock,
            holder,
            term: Number.isSafeInteger(token) && data[`leader.token.${lock}`] ? token : undefined,
            transitions: undefined,
            acquireTime: time,
            renewTime: undefined,
            leaseDurationMs: config.timings.leaseDuration,
            valid: holder !== undefined && live.has(holder),
            expiresInMs: undefined,
            members: [...live].filter((n): n is string => n !== undefined).sort(),
          };
        });
      return { backend: 'kubernetes (ConfigMap mode)', where: `${namespace}/configmaps/${name}`, liveBy: 'pod', locks };
    }
    const prefix = (env.DROMEDARY_K8S_LEASE_PREFIX || 'dromedary').toLowerCase();
    const api = kc.makeApiClient(k8s.CoordinationV1Api);
    const leases = await api.listNamespacedLease({ namespace, labelSelector: selector({ provider: 'dromedary', ...clusterLabels }) }, options());
    const { leaseRecord, LOCK_ANNOTATION } = await import('../cluster/kubernetes/lease-store.ts');
    const { ROLE_LABEL, toHeartbeat } = await import('../cluster/kubernetes/lease-heartbeats.ts');
    const { renewedRecord } = await import('../cluster/election/heartbeat-store.ts');
    // Heartbeat mode's member Leases are not locks; a lock Lease naming one is renewed by it.
    const isHeartbeat = (lease: (typeof leases.items)[number]) => lease.metadata?.labels?.[ROLE_LABEL] === 'heartbeat';
    const beats = new Map(leases.items.filter(isHeartbeat).map((lease) => [lease.metadata?.name ?? '', toHeartbeat(lease)]));
    const locks = leases.items
      .filter((lease) => !isHeartbeat(lease))
      .map((lease) => {
        const name = lease.metadata?.name ?? '';
        // The lock's name as written on the Lease; else (a Lease from an older version) its name without the prefix.
        const lock = lease.metadata?.annotations?.[LOCK_ANNOTATION] ?? (name.startsWith(`${prefix}-`) ? name.slice(prefix.length + 1) : name);
        const record = leaseRecord(lease);
        return fromRecord(lock, renewedRecord(lock, record, record.heartbeat ? beats.get(record.heartbeat) : undefined), now);
      })
      .sort((a, b) => a.lock.localeCompare(b.lock));
    return { backend: 'kubernetes (Lease mode)', where: `${namespace}/leases`, locks };
  } catch (err) {
    if (err instanceof ConfigurationError) throw err;
    const failure = describeApiFailure(err, apiTarget(kc));
    if (failure) throw new ConfigurationError(`cannot read the locks in namespace ${namespace}: ${failure}`);
    const status = statusOf(err);
    throw new ConfigurationError(
      `cannot read the locks from the Kubernetes API in namespace ${namespace}${status ? ` (HTTP ${status})` : ''}: ${(err as Error).message}` +
        (status === 403 ? ': the account needs get/list on leases (or configmaps and pods in ConfigMap mode)' : ''),
    );
  }
}
