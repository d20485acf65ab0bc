import { createHash } from 'node:crypto';
import type { HeartbeatBackend, HeartbeatRecord, VersionedHeartbeat } from '../election/heartbeat-store.ts';
import type { LockRecord, VersionedRecord } from '../election/lock-store.ts';
import { apiTarget, describeApiFailure, forbiddenDetail, KubernetesForbiddenError, statusOf, withSignal, type ApiTarget, type K8s } from './client.ts';
import { ANY_LEASE, HEARTBEAT_LABEL, heartbeatLabel, INSTANCE_ANNOTATION, LOCK_ANNOTATION, leaseRecord, type LeaseLockStore, type LeaseStoreOptions } from './lease-store.ts';
import { ResourceWatch } from './resource-watch.ts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;
type Lease = import('@kubernetes/client-node').V1Lease;

/** The locks a heartbeat Lease vouches for, comma-separated (lock names never contain a comma). */
export const LOCKS_ANNOTATION = 'dromedary.io/locks';
/** Marks heartbeat Leases, so `kubectl get lease -l dromedary.io/role=heartbeat` lists the members. */
export const ROLE_LABEL = 'dromedary.io/role';

/**
 * Heartbeat mode's records as Leases (see election/heartbeat-store.ts): one Lease per member process,
 * `<prefix>.member-<hash of its instance>` (a lock's Lease is `<prefix>-<lock>`, so the two never meet),
 * holderIdentity the member id and renewTime advancing at each heartbeat, the instance and the locks
 * it keeps alive in annotations. Each lock's own Lease keeps holderIdentity (what `kubectl get lease`
 * shows), names the heartbeat Lease in an annotation and carries a label selecting it by holder, so a
 * heartbeat round reads every lock it holds with one LIST. Lock records go through the Lease store as
 * before; heartbeat Leases use its shared watch, since they carry the same labels.
 */
export class LeaseHeartbeatBackend implements HeartbeatBackend {
  readonly #leases: LeaseLockStore;
  readonly #k8s: K8s;
  readonly #api: InstanceType<K8s['CoordinationV1Api']>;
  readonly #options: LeaseStoreOptions;
  readonly #leaseDurationMs: number;
  readonly #target: ApiTarget;
  readonly #acquired = new Map<string, string>();
  readonly #versions = new Map<string, string>();
  readonly get: HeartbeatBackend['get'];
  readonly create: HeartbeatBackend['create'];
  readonly update: HeartbeatBackend['update'];
  readonly watch: NonNullable<HeartbeatBackend['watch']>;
  readonly watching: NonNullable<HeartbeatBackend['watching']>;

  constructor(k8s: K8s, kc: KubeConfig, leases: LeaseLockStore, options: LeaseStoreOptions & { leaseDurationMs: number }) {
    this.#leases = leases;
    this.#k8s = k8s;
    this.#api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.#options = options;
    this.#leaseDurationMs = options.leaseDurationMs;
    this.#target = apiTarget(kc);
    this.get = (lock, signal) => leases.get(lock, signal);
    this.create = (lock, record, signal) => leases.create(lock, record, signal);
    this.update = (lock, record, version, signal) => leases.update(lock, record, version, signal);
    this.watch = (lock, onChange) => leases.watch(lock, onChange);
    this.watching = (lock) => leases.watching(lock);
  }

  heartbeatKey(_memberId: string, instanceId: string): string {
    const head =
      this.#options.prefix
        .toLowerCase()
        .replace(/[^a-z0-9.-]+/g, '-')
        .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'dromedary';
    return `${head.slice(0, 200)}.member-${createHash('sha256').update(instanceId).digest('hex').slice(0, 16)}`;
  }

  async readHeartbeat(key: string, signal: AbortSignal): Promise<VersionedHeartbeat | undefined> {
    try {
      return toHeartbeat(await this.#api.readNamespacedLease({ name: key, namespace: this.#options.namespace }, withSignal(signal)));
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#explain(err, 'get', key);
    }
  }

  async writeHeartbeat(key: string, record: HeartbeatRecord, signal: AbortSignal): Promise<VersionedHeartbeat> {
    const micro = (iso: string) => new this.#k8s.V1MicroTime(iso);
    const acquired = this.#acquired.get(key) ?? record.renewTime;
    this.#acquired.set(key, acquired);
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: key,
        namespace: this.#options.namespace,
        labels: { ...this.#options.labels, [ROLE_LABEL]: 'heartbeat' },
        annotations: { [INSTANCE_ANNOTATION]: record.instance, [LOCKS_ANNOTATION]: record.locks.join(',') },
      },
      spec: {
        holderIdentity: record.member,
        leaseDurationSeconds: Math.max(1, Math.ceil(this.#leaseDurationMs / 1000)),
        acquireTime: micro(acquired),
        renewTime: micro(record.renewTime),
      },
    };
    // Only this process writes its heartbeat; the resourceVersion it last wrote is only there because
    // the API wants one on a replace: someone else's edit (a 409) is overwritten after one read.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const resourceVersion = this.#versions.get(key);
      try {
        const written = resourceVersion
          ? await this.#api.replaceNamespacedLease({ name: key, namespace: this.#options.namespace, body: { ...body, metadata: { ...body.metadata, resourceVersion } } }, withSignal(signal))
          : await this.#api.createNamespacedLease({ namespace: this.#options.namespace, body }, withSignal(signal));
        this.#versions.set(key, String(written.metadata?.resourceVersion ?? ''));
        return toHeartbeat(written);
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) this.#versions.delete(key);
        else if (status === 409) {
          const current = await this.readHeartbeat(key, signal);
          if (current) this.#versions.set(key, current.version);
          else this.#versions.delete(key);
        } else throw this.#explain(err, resourceVersion ? 'update' : 'create', key);
      }
    }
    throw new Error(`heartbeat Lease ${key} kept changing while being written`);
  }

  watchHeartbeat(key: string, onChange: (heartbeat: VersionedHeartbeat | null) => void): () => void {
    return this.#leases.watchLease(key, (_version, lease, type) => {
      if (type === 'DELETED') onChange(null);
      else if (lease && type !== 'DISCONNECTED') onChange(toHeartbeat(lease));
    });
  }

  watchHeartbeats(onChange: (key: string, heartbeat: VersionedHeartbeat | null) => void): () => void {
    return this.#leases.watchLease(ANY_LEASE, (_version, lease, type) => {
      const name = lease?.metadata?.name;
      if (!name || lease.metadata?.labels?.[ROLE_LABEL] !== 'heartbeat') return;
      if (type === 'DELETED') onChange(name, null);
      else if (type !== 'DISCONNECTED') onChange(name, toHeartbeat(lease));
    });
  }

  async listHeartbeats(signal: AbortSignal): Promise<Map<string, VersionedHeartbeat>> {
    const selector = [ResourceWatch.selector(this.#options.labels), `${ROLE_LABEL}=heartbeat`].filter(Boolean).join(',');
    let list;
    try {
      list = await this.#api.listNamespacedLease({ namespace: this.#options.namespace, labelSelector: selector }, withSignal(signal));
    } catch (err) {
      throw this.#explain(err, 'list', 'heartbeat Leases');
    }
    return new Map(list.items.filter((lease) => lease.metadata?.name).map((lease) => [lease.metadata!.name!, toHeartbeat(lease)]));
  }

  async readHeld(key: string, _locks: readonly string[], signal: AbortSignal): Promise<Map<string, VersionedRecord>> {
    const selector = [ResourceWatch.selector(this.#options.labels), `${HEARTBEAT_LABEL}=${heartbeatLabel(key)}`].filter(Boolean).join(',');
    let list;
    try {
      list = await this.#api.listNamespacedLease({ namespace: this.#options.namespace, labelSelector: selector }, withSignal(signal));
    } catch (err) {
      throw this.#explain(err, 'list', key);
    }
    const held = new Map<string, VersionedRecord>();
    for (const lease of list.items) {
      const lock = lease.metadata?.annotations?.[LOCK_ANNOTATION];
      const record: LockRecord = leaseRecord(lease);
      if (lock && record.heartbeat === key) held.set(lock, { record, version: String(lease.metadata?.resourceVersion ?? '') });
    }
    return held;
  }

  async removeHeartbeat(key: string, signal: AbortSignal): Promise<void> {
    this.#versions.delete(key);
    try {
      await this.#api.deleteNamespacedLease({ name: key, namespace: this.#options.namespace }, withSignal(signal));
    } catch (err) {
      if (statusOf(err) === 404) return;
      // The least-privilege Role (examples/kubernetes/rbac.yaml) has no delete: the Lease stays, harmless.
      if (statusOf(err) === 403) {
        this.#options.logger.info(`Heartbeat Lease ${key} left in place: the service account may not delete leases (grant "delete" to have members remove theirs on stop)`);
        return;
      }
      throw this.#explain(err, 'delete', key);
    }
  }

  async close(): Promise<void> {
    await this.#leases.close();
  }

  #explain(err: unknown, verb: string, name: string): Error {
    if (statusOf(err) === 403) {
      const error = new KubernetesForbiddenError(verb, 'leases.coordination.k8s.io', this.#options.namespace, forbiddenDetail(err));
      this.#options.logger.error(error.message);
      return error;
    }
    const failure = describeApiFailure(err, this.#target);
    if (failure) return new Error(`${verb} heartbeat Lease ${name} failed: ${failure}`, { cause: err });
    const status = statusOf(err);
    return new Error(`${verb} heartbeat Lease ${name} failed${status ? ` with HTTP ${status}` : ''}: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`);
  }
}

export function toHeartbeat(lease: Lease): VersionedHeartbeat {
  const annotations = lease.metadata?.annotations ?? {};
  const renew = lease.spec?.renewTime as unknown;
  const locks = annotations[LOCKS_ANNOTATION] ?? '';
  return {
    version: String(lease.metadata?.resourceVersion ?? ''),
    record: {
      member: lease.spec?.holderIdentity ?? '',
      instance: annotations[INSTANCE_ANNOTATION] ?? '',
      renewTime: renew instanceof Date ? renew.toISOString() : renew ? new Date(String(renew)).toISOString() : '',
      locks: locks === '' ? [] : locks.split(','),
    },
  };
}
