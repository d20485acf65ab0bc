import { createHash } from 'node:crypto';
import { LockConflictError, type LockRecord, type LockStore, type VersionedRecord } from '../election/lock-store.ts';
import type { Logger } from '../../logging/logger.ts';
import { apiTarget, describeApiFailure, forbiddenDetail, KubernetesForbiddenError, statusOf, withSignal, type ApiTarget, type K8s } from './client.ts';
import { ResourceWatch } from './resource-watch.ts';
import { parseState } from '../state-value.ts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;
type CoordinationApi = InstanceType<K8s['CoordinationV1Api']>;
type Lease = import('@kubernetes/client-node').V1Lease;

export interface LeaseStoreOptions {
  namespace: string;
  /** Lease names are `<prefix>-<lock>`, made a valid DNS-1123 name. */
  prefix: string;
  /** Labels put on every Lease and used to select them in the shared watch. */
  labels: Record<string, string>;
  /** How long the shared watch may stay silent before it counts as dead (see ResourceWatchOptions.idleMs). */
  watchIdleMs: number;
  logger: Logger;
}

/**
 * The Lease of a lock: `<prefix>-<lock>`, made a valid DNS-1123 name (lower case, [a-z0-9.-], at most
 * 253 characters, alphanumeric at both ends). The mapping is injective: whenever the lock name had to
 * change to fit (`Orders_A`), a hash of the original is appended (`dromedary-orders-a-3f1c9a2b`), so
 * it cannot meet a lock whose name fitted as it was (`orders-a` → `dromedary-orders-a`).
 */
export function leaseName(prefix: string, lock: string): string {
  const dns = (text: string) =>
    text
      .toLowerCase()
      .replace(/[^a-z0-9.-]+/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  const head = dns(prefix) || 'dromedary';
  const part = dns(lock);
  const plain = `${head}-${part}`;
  if (part === lock && plain.length <= 253) return plain;
  const hash = createHash('sha256').update(lock).digest('hex').slice(0, 8);
  const room = 253 - hash.length - 1;
  return `${plain.slice(0, room).replace(/[^a-z0-9]+$/, '')}-${hash}`;
}

/** The lock's leader state (ClusterView.state), as JSON. */
export const STATE_ANNOTATION = 'dromedary.io/leader-state';

/** Where a Lease carries what its spec has no field for (see LockRecord). */
export const INSTANCE_ANNOTATION = 'dromedary.io/holder-instance';
export const RELEASED_BY_ANNOTATION = 'dromedary.io/released-by';
export const FENCING_TOKEN_ANNOTATION = 'dromedary.io/fencing-token';
/** The lock's own name: a Lease name is the lock name only when it fitted Kubernetes' rules unchanged. */
export const LOCK_ANNOTATION = 'dromedary.io/lock';
/** Heartbeat mode: the holder's heartbeat Lease, and a label selecting the locks it holds (lease-heartbeats.ts). */
export const HEARTBEAT_ANNOTATION = 'dromedary.io/heartbeat';
export const HEARTBEAT_LABEL = 'dromedary.io/heartbeat';

/** The label value naming a heartbeat Lease (label values are at most 63 characters). */
export function heartbeatLabel(heartbeat: string): string {
  return createHash('sha256').update(heartbeat).digest('hex').slice(0, 20);
}

/** watchLease's key for every Lease of the app: Lease names never contain '*'. */
export const ANY_LEASE = '*';

/**
 * Lock records as coordination.k8s.io/v1 Leases, one per lock, with client-go's field semantics:
 * MicroTime times with six fractional digits, leaseTransitions counting takeovers, and updates that
 * carry the resourceVersion read, so a lost race is a 409. One shared watch on the app's Leases
 * tells every lock's elector about changes at once.
 */
export class LeaseLockStore implements LockStore {
  readonly #k8s: K8s;
  readonly #api: CoordinationApi;
  readonly #options: LeaseStoreOptions;
  readonly #watch: ResourceWatch;
  /** The server and the credentials' source, named when a request cannot reach it or is refused. */
  readonly #target: ApiTarget;
  readonly #names = new Map<string, string>();
  /**
   * The uid of each Lease as last seen. A replace carries it as a precondition, so a Lease deleted
   * (and perhaps created again) since it was read is a conflict, not silently re-created: leases
   * allow create-on-update, and a resourceVersion alone does not stop that.
   */
  readonly #uids = new Map<string, string>();

  constructor(k8s: K8s, kc: KubeConfig, options: LeaseStoreOptions) {
    this.#target = apiTarget(kc);
    this.#k8s = k8s;
    this.#api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.#options = options;
    const selector = ResourceWatch.selector(options.labels);
    this.#watch = new ResourceWatch(k8s, kc, {
      path: `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/leases`,
      query: selector ? { labelSelector: selector } : {},
      keysOf: (object) => (object.metadata?.name ? [object.metadata.name, ANY_LEASE] : []),
      idleMs: options.watchIdleMs,
      logger: options.logger,
    });
  }

  #name(lock: string): string {
    let name = this.#names.get(lock);
    if (!name) {
      name = leaseName(this.#options.prefix, lock);
      this.#names.set(lock, name);
    }
    return name;
  }

  async get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    try {
      const lease = await this.#api.readNamespacedLease({ name: this.#name(lock), namespace: this.#options.namespace }, withSignal(signal));
      return this.#toVersioned(lease);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#explain(err, 'get', lock);
    }
  }

  async create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    try {
      const body = this.#toLease(lock, record);
      return this.#toVersioned(await this.#api.createNamespacedLease({ namespace: this.#options.namespace, body }, withSignal(signal)));
    } catch (err) {
      if (statusOf(err) === 409) throw new LockConflictError(lock, 'the Lease already exists');
      throw this.#explain(err, 'create', lock);
    }
  }

  async update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord> {
    try {
      const body = this.#toLease(lock, record, expectedVersion);
      const lease = await this.#api.replaceNamespacedLease({ name: this.#name(lock), namespace: this.#options.namespace, body }, withSignal(signal));
      return this.#toVersioned(lease);
    } catch (err) {
      if (statusOf(err) === 409) throw new LockConflictError(lock, 'the Lease changed since it was read (409 Conflict)');
      // Deleted since it was read (kubectl delete lease): a lost compare-and-swap, so the elector reads again.
      if (statusOf(err) === 404) throw new LockConflictError(lock, 'the Lease was deleted since it was read (404 Not Found)');
      throw this.#explain(err, 'update', lock);
    }
  }

  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    return this.#watch.subscribe(this.#name(lock), (version, object, type) =>
      onChange(version, type === 'DELETED' ? null : object && type !== 'DISCONNECTED' ? this.#toVersioned(object as Lease).record : undefined),
    );
  }

  /** The shared watch, for the heartbeat Leases of heartbeat mode (they carry the same labels). */
  watchLease(name: string, onChange: (version?: string, lease?: Lease, type?: string) => void): () => void {
    return this.#watch.subscribe(name, (version, object, type) => onChange(version, object as Lease | undefined, type));
  }

  watching(_lock: string): boolean {
    return this.#watch.live;
  }

  async close(): Promise<void> {
    this.#watch.close();
  }

  #toLease(lock: string, record: LockRecord, resourceVersion?: string): Lease {
    const micro = (iso: string) => {
      const time = new this.#k8s.V1MicroTime(iso);
      return time;
    };
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.#name(lock),
        namespace: this.#options.namespace,
        labels: { ...this.#options.labels, ...(record.heartbeat ? { [HEARTBEAT_LABEL]: heartbeatLabel(record.heartbeat) } : {}) },
        // holderIdentity stays the readable member id (what `kubectl get lease` shows, and what Camel
        // writes); the instance, the release marker and the fencing token go in annotations. A
        // replace writes all three, so a release marker never survives into a later holder's record.
        annotations: {
          ...(record.state ? { [STATE_ANNOTATION]: JSON.stringify(record.state) } : {}),
          [LOCK_ANNOTATION]: lock,
          ...(record.holderInstance ? { [INSTANCE_ANNOTATION]: record.holderInstance } : {}),
          ...(record.releasedBy ? { [RELEASED_BY_ANNOTATION]: record.releasedBy } : {}),
          ...(record.fencingToken !== undefined ? { [FENCING_TOKEN_ANNOTATION]: String(record.fencingToken) } : {}),
          ...(record.heartbeat ? { [HEARTBEAT_ANNOTATION]: record.heartbeat } : {}),
        },
        ...(resourceVersion ? { resourceVersion } : {}),
        ...(resourceVersion && this.#uids.has(this.#name(lock)) ? { uid: this.#uids.get(this.#name(lock)) } : {}),
      },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: Math.max(1, Math.ceil(record.leaseDurationMs / 1000)),
        acquireTime: micro(record.acquireTime),
        renewTime: micro(record.renewTime),
        leaseTransitions: record.leaseTransitions,
      },
    };
  }

  #toVersioned(lease: Lease): VersionedRecord {
    if (lease.metadata?.name && lease.metadata.uid) this.#uids.set(lease.metadata.name, lease.metadata.uid);
    return { version: String(lease.metadata?.resourceVersion ?? ''), record: leaseRecord(lease) };
  }

  #explain(err: unknown, verb: string, lock: string): Error {
    if (statusOf(err) === 403) {
      const error = new KubernetesForbiddenError(verb, 'leases.coordination.k8s.io', this.#options.namespace, forbiddenDetail(err));
      this.#options.logger.error(error.message, { lock });
      return error;
    }
    const failure = describeApiFailure(err, this.#target);
    if (failure) return new Error(`${verb} Lease ${this.#name(lock)} failed: ${failure}`, { cause: err });
    const status = statusOf(err);
    return new Error(`${verb} Lease ${this.#name(lock)} failed${status ? ` with HTTP ${status}` : ''}: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`);
  }
}

/** A Lease as a lock record; also read by `dromedary status`. */
export function leaseRecord(lease: Lease): LockRecord {
  const spec = lease.spec ?? {};
  const annotations = lease.metadata?.annotations ?? {};
  // A read gives Dates (client-node parses them), a watch gives the raw MicroTime strings: both
  // become the same millisecond ISO text, or one record read once each way would look changed,
  // and every such "change" restarts a follower's lease clock.
  const text = (t: unknown) => {
    if (t === undefined || t === null) return '';
    const date = t instanceof Date ? t : new Date(String(t));
    return Number.isNaN(date.getTime()) ? String(t) : date.toISOString();
  };
  const token = Number(annotations[FENCING_TOKEN_ANNOTATION]);
  return {
    ...stateOf(annotations[STATE_ANNOTATION]),
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationMs: (spec.leaseDurationSeconds ?? 0) * 1000,
    acquireTime: text(spec.acquireTime),
    renewTime: text(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
    ...(annotations[INSTANCE_ANNOTATION] ? { holderInstance: annotations[INSTANCE_ANNOTATION] } : {}),
    ...(annotations[RELEASED_BY_ANNOTATION] ? { releasedBy: annotations[RELEASED_BY_ANNOTATION] } : {}),
    ...(annotations[FENCING_TOKEN_ANNOTATION] && Number.isSafeInteger(token) ? { fencingToken: token } : {}),
    ...(annotations[HEARTBEAT_ANNOTATION] ? { heartbeat: annotations[HEARTBEAT_ANNOTATION] } : {}),
  };
}

function stateOf(text: string | undefined): Pick<LockRecord, 'state'> {
  const state = parseState(text);
  return state ? { state } : {};
}
