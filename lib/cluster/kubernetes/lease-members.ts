import { LockConflictError, microTime, type LockRecord, type LockStore, type VersionedRecord } from '../election/lock-store.ts';
import type { Logger } from '../../logging/logger.ts';
import { withSignal, type K8s } from './client.ts';
import { LOCK_ANNOTATION } from './lease-store.ts';
import { ResourceWatch } from './resource-watch.ts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;

export interface LeaseMembersOptions {
  memberId: string;
  instanceId: string;
  namespace: string;
  /** The labels the Lease store puts on every Lease: the member Leases are listed by them. */
  labels: Record<string, string>;
  /** How often this member renews its member Lease and lists the others'. */
  intervalMs: number;
  /** A member Lease unchanged for this long, by this member's clock, is a member no longer seen alive. */
  leaseDurationMs: number;
  logger: Logger;
}

/** The lock name of a member's Lease: '~' never starts a lock name, so it cannot meet a lock's Lease. */
export const MEMBER_LOCK_PREFIX = '~member.';

/**
 * Lease mode's live members, for rebalancing: a lock's Lease names only its holder, so a member that
 * leads nothing would be invisible. With this decorator each member also keeps a Lease of its own
 * (lock `~member.<id>`, written through the Lease store, so it carries the same labels), renewed
 * every intervalMs, and lists the others' every intervalMs. A member counts as alive while its Lease
 * changed within leaseDurationMs as seen on this member's monotonic clock, never by the times in it.
 * members() answers from the last listing, so the elector's per-attempt call costs no request.
 */
export class LeaseMembersStore implements LockStore {
  readonly #inner: LockStore;
  readonly #api: InstanceType<K8s['CoordinationV1Api']>;
  readonly #options: LeaseMembersOptions;
  readonly #selector: string;
  readonly #seen = new Map<string, { version: string; seenAt: number; holder: string }>();
  #own: VersionedRecord | undefined;
  #live: string[];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #closed = false;

  constructor(k8s: K8s, kc: KubeConfig, inner: LockStore, options: LeaseMembersOptions) {
    this.#inner = inner;
    this.#api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.#options = options;
    this.#selector = ResourceWatch.selector(options.labels);
    this.#live = [options.memberId];
  }

  get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    return this.#inner.get(lock, signal);
  }

  create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    return this.#inner.create(lock, record, signal);
  }

  update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord> {
    return this.#inner.update(lock, record, expectedVersion, signal);
  }

  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    return this.#inner.watch?.(lock, onChange) ?? (() => undefined);
  }

  watching(lock: string): boolean {
    return this.#inner.watching?.(lock) ?? true;
  }

  /** The members seen alive (this one always); starts the member Lease on first use. */
  async members(): Promise<string[]> {
    if (!this.#timer && !this.#closed) {
      this.#timer = setInterval(() => void this.#beat(), this.#options.intervalMs);
      this.#timer.unref();
      void this.#beat();
    }
    return this.#live;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inner.close?.();
  }

  async #beat(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    const signal = AbortSignal.timeout(Math.max(this.#options.intervalMs, 1000));
    try {
      await this.#renew(signal);
      await this.#list(signal);
    } catch (err) {
      this.#options.logger.debug(`Member Lease of ${this.#options.memberId}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.#busy = false;
    }
  }

  async #renew(signal: AbortSignal): Promise<void> {
    const lock = `${MEMBER_LOCK_PREFIX}${this.#options.memberId}`;
    const now = microTime();
    const record: LockRecord = {
      holderIdentity: this.#options.memberId,
      holderInstance: this.#options.instanceId,
      leaseDurationMs: this.#options.leaseDurationMs,
      acquireTime: this.#own?.record.acquireTime ?? now,
      renewTime: now,
      leaseTransitions: 0,
    };
    try {
      this.#own = this.#own ? await this.#inner.update(lock, record, this.#own.version, signal) : await this.#createOrTake(lock, record, signal);
    } catch (err) {
      // Deleted or rewritten meanwhile (a restart of this member id): read it again next time.
      this.#own = undefined;
      if (!(err instanceof LockConflictError)) throw err;
    }
  }

  async #createOrTake(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    const current = await this.#inner.get(lock, signal);
    return current ? this.#inner.update(lock, record, current.version, signal) : this.#inner.create(lock, record, signal);
  }

  async #list(signal: AbortSignal): Promise<void> {
    const list = await this.#api.listNamespacedLease({ namespace: this.#options.namespace, ...(this.#selector ? { labelSelector: this.#selector } : {}) }, withSignal(signal));
    const now = performance.now();
    const names = new Set<string>();
    for (const lease of list.items) {
      const lock = lease.metadata?.annotations?.[LOCK_ANNOTATION];
      const name = lease.metadata?.name;
      const holder = lease.spec?.holderIdentity;
      if (!name || !holder || !lock?.startsWith(MEMBER_LOCK_PREFIX)) continue;
      names.add(name);
      const version = String(lease.metadata?.resourceVersion ?? '');
      const previous = this.#seen.get(name);
      // A Lease seen for the first time may be a dead member's: it counts once it changes.
      if (!previous) this.#seen.set(name, { version, seenAt: -Infinity, holder });
      else if (previous.version !== version) this.#seen.set(name, { version, seenAt: now, holder });
    }
    for (const name of this.#seen.keys()) if (!names.has(name)) this.#seen.delete(name);
    const live = new Set([this.#options.memberId]);
    for (const { seenAt, holder } of this.#seen.values()) if (now - seenAt < this.#options.leaseDurationMs) live.add(holder);
    this.#live = [...live].sort();
  }
}
