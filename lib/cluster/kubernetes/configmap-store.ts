import { createHash, randomBytes } from 'node:crypto';
import { LockConflictError, type LockRecord, type LockStore, type VersionedRecord } from '../election/lock-store.ts';
import type { Logger } from '../../logging/logger.ts';
import { apiTarget, describeApiFailure, forbiddenDetail, KubernetesForbiddenError, statusOf, withSignal, type ApiTarget, type K8s } from './client.ts';
import { ResourceWatch } from './resource-watch.ts';
import type { PodMembers } from './pod-members.ts';
import { parseState } from '../state-value.ts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;
type ConfigMap = import('@kubernetes/client-node').V1ConfigMap;

export interface ConfigMapStoreOptions {
  namespace: string;
  /** The one ConfigMap holding every lock (Camel's default: `leaders`). */
  name: string;
  labels: Record<string, string>;
  /** Reported as the record's lease; the ConfigMap itself stores none. */
  leaseDurationMs: number;
  members: PodMembers;
  /** How long the ConfigMap watch may stay silent before it counts as dead (see ResourceWatchOptions.idleMs). */
  watchIdleMs: number;
  logger: Logger;
}

const holderKey = (lock: string) => `leader.pod.${lock}`;
const timestampKey = (lock: string) => `leader.local.timestamp.${lock}`;
// Keys of dromedary's own, next to Camel's two (which Camel members go on reading as before).
const instanceKey = (lock: string) => `leader.instance.${lock}`;
const releasedKey = (lock: string) => `leader.released.${lock}`;
const tokenKey = (lock: string) => `leader.token.${lock}`;
/** The lock's leader state (ClusterView.state), as JSON. */
const stateKey = (lock: string) => `leader.state.${lock}`;
/** A fresh random value each time a dromedary write changes the lock's other keys: see lockVersion. */
const versionKey = (lock: string) => `leader.version.${lock}`;

/** Every key that belongs to one lock, in a fixed order. */
const lockKeys = (lock: string) => [holderKey, timestampKey, instanceKey, releasedKey, tokenKey, stateKey, versionKey].map((key) => key(lock));

/** One lock's write waiting for the next replace of the ConfigMap. */
interface PendingWrite {
  lock: string;
  record: LockRecord;
  expectedVersion: string;
  signal: AbortSignal;
  resolve: (written: VersionedRecord) => void;
  reject: (err: unknown) => void;
}

/** A signal aborted once all of `signals` are: a write stops when nobody waits for it any more. */
function untilAllAborted(signals: AbortSignal[]): AbortSignal {
  if (signals.length === 1) return signals[0]!;
  const controller = new AbortController();
  const check = () => {
    if (signals.every((s) => s.aborted)) controller.abort(signals[0]!.reason);
  };
  for (const s of signals) s.addEventListener('abort', check, { once: true });
  check();
  return controller.signal;
}

/** How many replaces one batch of writes makes at most: after a 409 caused by other locks' writes it reads and writes again, while its own locks' keys are unchanged. */
const WRITE_ATTEMPTS = 10;

/**
 * The lock's own version: a digest of its keys (absent ones included as absent), so that writes to
 * other locks in the same ConfigMap leave it unchanged, while any change to this lock's keys, by
 * dromedary, Camel or a hand edit, changes it.
 */
export function lockVersion(data: Record<string, string> | undefined, lock: string): string {
  const hash = createHash('sha256');
  for (const key of lockKeys(lock)) {
    const value = data?.[key];
    hash.update(value === undefined ? '-' : `+${value.length}:${value}`);
  }
  return hash.digest('base64url').slice(0, 22);
}

/**
 * The seed article's (and Camel's legacy) protocol: one ConfigMap holds `leader.pod.<lock>` for
 * every lock. A holder stays valid while its pod is a live member, not by a lease time, so this
 * store comes with holderValid and acquireDelay settings for the elector (see index.ts).
 *
 * Each lock has its own version, not the ConfigMap's resourceVersion: with that one, every write for
 * one lock (a renewal, a state write, a release) made every other lock's next compare-and-swap fail,
 * and its leader stepped down and began a new term. A lock's version (lockVersion) is a digest of the
 * lock's own keys, among them `leader.version.<lock>`, which each dromedary write that changes the
 * lock's other keys sets to a fresh random value (a write that changes none leaves it as it was, so
 * the write is byte-identical and the API server does not count it as a change at all). update reads
 * the ConfigMap (or takes the copy it last read or wrote), checks the lock's version against the
 * expected one, and replaces the ConfigMap at the resourceVersion it read; a 409 means some key
 * changed meanwhile, so it reads again and writes again while the lock's own keys are still as
 * expected (WRITE_ATTEMPTS times at most, within the callers' signals). This member's writes for
 * several locks that queue up while a replace is in flight go out together in the next one, each
 * checked against its own lock's version (a second write of the same lock waits for the round after).
 * A watch notice carries the lock's version too, and only when it changed, so another lock's write is
 * no news to this lock's elector.
 *
 * Exactly one of several writers of the same lock version wins: the API server applies replaces of
 * the ConfigMap one at a time, each only at the resourceVersion current when it applies, so every
 * successful write was checked against the lock's keys as they were just before it. The first write
 * that changes the lock's keys gives them a fresh random `leader.version.<lock>`, so from then on the
 * lock's version differs from every version it had before (only a hand edit restoring the very same
 * keys could bring one back), and every other writer of the old version finds it changed and gets a
 * LockConflictError. A write that changes none of the lock's keys changes nothing, so a write after it
 * is checked against exactly the keys it saw. A Camel member, which writes `leader.pod.<lock>` and
 * `leader.local.timestamp.<lock>` at the ConfigMap's resourceVersion, changes the digest like any other
 * writer, and ignores the keys dromedary adds.
 */
export class ConfigMapLockStore implements LockStore {
  readonly #api: InstanceType<K8s['CoreV1Api']>;
  readonly #options: ConfigMapStoreOptions;
  readonly #watch: ResourceWatch;
  /** The server and the credentials' source, named when a request cannot reach it or is refused. */
  readonly #target: ApiTarget;
  /** The ConfigMap as last read or written, to write back every other lock's keys unchanged. */
  #last: ConfigMap | undefined;
  /**
   * This member's lock writes waiting for the replace in flight to end: they go out together in the
   * next one. Its locks renew on the same schedule, so writing them concurrently would base them all
   * on the same copy, and all but one would meet a 409 and read again (n² requests a round); one
   * after another, each would wait for all before it.
   */
  #pending: PendingWrite[] = [];
  #writing = false;

  constructor(k8s: K8s, kc: KubeConfig, options: ConfigMapStoreOptions) {
    this.#target = apiTarget(kc);
    this.#api = kc.makeApiClient(k8s.CoreV1Api);
    this.#options = options;
    this.#watch = new ResourceWatch(k8s, kc, {
      path: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/configmaps`,
      query: { fieldSelector: `metadata.name=${options.name}` },
      keysOf: () => ['configmap'],
      idleMs: options.watchIdleMs,
      logger: options.logger,
    });
  }

  async #read(signal: AbortSignal): Promise<ConfigMap | undefined> {
    try {
      this.#last = await this.#api.readNamespacedConfigMap({ name: this.#options.name, namespace: this.#options.namespace }, withSignal(signal));
      return this.#last;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#explain(err, 'get');
    }
  }

  #record(map: ConfigMap, lock: string): VersionedRecord {
    const data = map.data ?? {};
    const token = Number(data[tokenKey(lock)]);
    const state = parseState(data[stateKey(lock)]);
    return {
      version: lockVersion(map.data, lock),
      record: {
        holderIdentity: data[holderKey(lock)] ?? '',
        leaseDurationMs: this.#options.leaseDurationMs,
        acquireTime: data[timestampKey(lock)] ?? '',
        renewTime: data[timestampKey(lock)] ?? '',
        leaseTransitions: 0,
        ...(data[instanceKey(lock)] ? { holderInstance: data[instanceKey(lock)] } : {}),
        ...(data[releasedKey(lock)] ? { releasedBy: data[releasedKey(lock)] } : {}),
        ...(data[tokenKey(lock)] && Number.isSafeInteger(token) ? { fencingToken: token } : {}),
        ...(state ? { state } : {}),
      },
    };
  }

  async get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    const map = await this.#read(signal);
    return map ? this.#record(map, lock) : undefined;
  }

  async create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    const body: ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: this.#options.name, namespace: this.#options.namespace, labels: { ...this.#options.labels, kind: 'locks' } },
      data: this.#data({}, lock, record),
    };
    try {
      this.#last = await this.#api.createNamespacedConfigMap({ namespace: this.#options.namespace, body }, withSignal(signal));
      return this.#record(this.#last, lock);
    } catch (err) {
      if (statusOf(err) === 409) throw new LockConflictError(lock, `the ConfigMap ${this.#options.name} already exists`);
      throw this.#explain(err, 'create');
    }
  }

  update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = () => signal.removeEventListener('abort', onAbort);
      this.#pending.push({ lock, record, expectedVersion, signal, resolve: (w) => (settle(), resolve(w)), reject: (e) => (settle(), reject(e)) });
      void this.#writeAll();
    });
  }

  /** Writes the pending writes, all that queued up meanwhile in one replace, until none is left. */
  async #writeAll(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      for (let batch = this.#take(); batch.length > 0; batch = this.#take()) await this.#write(batch);
    } finally {
      this.#writing = false;
    }
  }

  /** The pending writes whose callers still wait (one per lock: a later write of a lock waits for the next round). */
  #take(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    const rest: PendingWrite[] = [];
    for (const w of this.#pending) {
      if (w.signal.aborted) w.reject(w.signal.reason);
      else if (batch.some((b) => b.lock === w.lock)) rest.push(w);
      else batch.push(w);
    }
    this.#pending = rest;
    return batch;
  }

  /**
   * One replace of the ConfigMap carrying every write of the batch whose lock is still at its
   * expected version; the others get a LockConflictError. A 409 (some key changed meanwhile, most
   * likely another member's lock) reads again and checks each lock again, WRITE_ATTEMPTS times at most.
   */
  async #write(batch: PendingWrite[]): Promise<void> {
    const signal = untilAllAborted(batch.map((w) => w.signal));
    let writes = batch;
    try {
      let base = this.#last && writes.every((w) => lockVersion(this.#last!.data, w.lock) === w.expectedVersion) ? this.#last : await this.#read(signal);
      for (let attempt = 1; ; attempt += 1) {
        if (!base) {
          for (const w of writes) w.reject(new LockConflictError(w.lock, `the locks ConfigMap ${this.#options.name} was deleted since it was read`));
          return;
        }
        const current = base;
        for (const w of writes) {
          if (lockVersion(current.data, w.lock) !== w.expectedVersion) w.reject(new LockConflictError(w.lock, `its keys in the ConfigMap ${this.#options.name} changed since they were read`));
        }
        writes = writes.filter((w) => lockVersion(current.data, w.lock) === w.expectedVersion && !w.signal.aborted);
        if (writes.length === 0) return;
        let data = current.data ?? {};
        for (const w of writes) data = this.#data(data, w.lock, w.record);
        const body: ConfigMap = { ...current, metadata: { ...current.metadata }, data };
        try {
          this.#last = await this.#api.replaceNamespacedConfigMap({ name: this.#options.name, namespace: this.#options.namespace, body }, withSignal(signal));
          for (const w of writes) w.resolve(this.#record(this.#last, w.lock));
          return;
        } catch (err) {
          // Deleted since it was read: a lost race, so the elector reads again and finds no record.
          if (statusOf(err) === 404) {
            for (const w of writes) w.reject(new LockConflictError(w.lock, `the locks ConfigMap ${this.#options.name} was deleted since it was read (404 Not Found)`));
            return;
          }
          if (statusOf(err) !== 409) throw this.#explain(err, 'update');
          if (attempt >= WRITE_ATTEMPTS) {
            for (const w of writes) w.reject(new LockConflictError(w.lock, `the locks ConfigMap ${this.#options.name} changed under each of ${attempt} writes in a row (409 Conflict)`));
            return;
          }
          base = await this.#read(signal);
        }
      }
    } catch (err) {
      for (const w of writes) w.reject(err);
    }
  }

  /**
   * This lock's keys set to the record (Camel's two removed when released, the release marker kept);
   * every other key as it was.
   */
  #data(previous: Record<string, string>, lock: string, record: LockRecord): Record<string, string> {
    const data = { ...previous };
    const set = (key: string, value: string | undefined) => {
      if (value === undefined || value === '') delete data[key];
      else data[key] = value;
    };
    if (record.holderIdentity === '') {
      delete data[holderKey(lock)];
      delete data[timestampKey(lock)];
    } else {
      data[holderKey(lock)] = record.holderIdentity;
      data[timestampKey(lock)] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    }
    set(instanceKey(lock), record.holderInstance);
    set(releasedKey(lock), record.releasedBy);
    set(tokenKey(lock), record.fencingToken === undefined ? undefined : String(record.fencingToken));
    set(stateKey(lock), record.state ? JSON.stringify(record.state) : undefined);
    if (lockKeys(lock).some((key) => data[key] !== previous[key])) data[versionKey(lock)] = randomBytes(9).toString('base64url');
    return data;
  }

  /**
   * Changes to this lock's keys (not to other locks' keys in the same ConfigMap: those would make a
   * leader renew at each of them, a hot loop of writes), and to the member pods (a holder's pod going
   * away frees its locks).
   */
  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    let reported: string | undefined;
    const offMap = this.#watch.subscribe('configmap', (version, object, type) => {
      if (type === 'DISCONNECTED' || type === 'DELETED' || !object) {
        reported = undefined;
        // A deletion is named by the deletion's resourceVersion, never equal to a lock version, so a
        // member whose observation is the last state still sees the record gone.
        if (type === 'DELETED') onChange(`deleted@${version}`, null);
        else onChange(version);
        return;
      }
      const current = this.#record(object as ConfigMap, lock);
      if (current.version === reported) return;
      reported = current.version;
      onChange(current.version, current.record);
    });
    // A pod change carries no lock version; naming it by the pod's resourceVersion (never equal to
    // a ConfigMap version) makes an elector that is busy with an attempt check again afterwards
    // instead of dropping the notice, so a holder's pod going away is never noticed one lease late.
    const offPods = this.#options.members.watch.subscribe('pods', (version) => onChange(version === undefined ? undefined : `pod@${version}`));
    return () => {
      offMap();
      offPods();
    };
  }

  watching(_lock: string): boolean {
    return this.#watch.live;
  }

  async members(_lock: string, signal: AbortSignal): Promise<string[]> {
    return this.#options.members.live(signal);
  }

  async close(): Promise<void> {
    this.#watch.close();
    this.#options.members.watch.close();
  }

  #explain(err: unknown, verb: string): Error {
    if (statusOf(err) === 403) {
      const error = new KubernetesForbiddenError(verb, 'configmaps', this.#options.namespace, forbiddenDetail(err));
      this.#options.logger.error(error.message);
      return error;
    }
    const failure = describeApiFailure(err, this.#target);
    if (failure) return new Error(`${verb} ConfigMap ${this.#options.name} failed: ${failure}`, { cause: err });
    const status = statusOf(err);
    return new Error(`${verb} ConfigMap ${this.#options.name} failed${status ? ` with HTTP ${status}` : ''}: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`);
  }
}
