import type { StoreRequestListener, StoreRequests } from '../cluster-service.ts';
import { isRelease, LockConflictError, LockStoreTimeoutError, type LockRecord, type LockStore, type VersionedRecord } from './lock-store.ts';

export type StoreVerb = 'get' | 'create' | 'update' | 'release' | 'members' | 'heartbeat';
export type StoreOutcome = 'ok' | 'conflict' | 'error' | 'timeout';

/**
 * A LockStore that counts the requests made through it, by verb and outcome, and tells listeners
 * each one's duration. Counting is a map increment per request (a few per retryPeriod), so it is
 * always on; metrics read the counts when scraped. A request is finished when its promise settles
 * or, if sooner, when its signal aborts (the elector abandoned it: its deadline passed, or the member
 * stopped): then it counts as a timeout, whatever the store does later.
 */
export class InstrumentedLockStore implements LockStore, StoreRequests {
  readonly #inner: LockStore;
  readonly #counts = new Map<string, { verb: StoreVerb; outcome: StoreOutcome; count: number }>();
  readonly #listeners = new Set<StoreRequestListener>();
  // Optional in the contract: present here only when the wrapped store has them, as callers test for them.
  readonly watch?: LockStore['watch'];
  readonly watching?: LockStore['watching'];
  readonly members?: LockStore['members'];
  readonly watchMembers?: LockStore['watchMembers'];
  readonly heartbeat?: LockStore['heartbeat'];
  readonly close?: LockStore['close'];

  constructor(inner: LockStore) {
    this.#inner = inner;
    if (inner.watch) this.watch = (lock, onChange) => inner.watch!(lock, onChange);
    if (inner.watching) this.watching = (lock) => inner.watching!(lock);
    if (inner.watchMembers) this.watchMembers = (onChange) => inner.watchMembers!(onChange);
    if (inner.members) this.members = (lock, signal) => this.#timed('members', signal, () => inner.members!(lock, signal));
    if (inner.heartbeat) this.heartbeat = (lock, memberId, signal) => this.#timed('heartbeat', signal, () => inner.heartbeat!(lock, memberId, signal));
    if (inner.close) this.close = () => inner.close!();
  }

  get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    return this.#timed('get', signal, () => this.#inner.get(lock, signal));
  }

  create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    return this.#timed('create', signal, () => this.#inner.create(lock, record, signal));
  }

  update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord> {
    return this.#timed(isRelease(record) ? 'release' : 'update', signal, () => this.#inner.update(lock, record, expectedVersion, signal));
  }

  counts(): Array<{ verb: StoreVerb; outcome: StoreOutcome; count: number }> {
    return [...this.#counts.values()].map((c) => ({ ...c }));
  }

  onRequest(listener: StoreRequestListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #timed<T>(verb: StoreVerb, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let finished = false;
    const finish = (outcome: StoreOutcome) => {
      if (finished) return;
      finished = true;
      signal.removeEventListener('abort', onAbort);
      const key = `${verb} ${outcome}`;
      const entry = this.#counts.get(key);
      if (entry) entry.count += 1;
      else this.#counts.set(key, { verb, outcome, count: 1 });
      const seconds = (performance.now() - started) / 1000;
      for (const listener of this.#listeners) listener(verb, outcome, seconds);
    };
    const onAbort = () => finish('timeout');
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await call();
      finish('ok');
      return result;
    } catch (err) {
      finish(err instanceof LockConflictError ? 'conflict' : err instanceof LockStoreTimeoutError || signal.aborted ? 'timeout' : 'error');
      throw err;
    }
  }
}
