import type { LockRecord, LockStore } from '../../lib/cluster/election/lock-store.ts';

/**
 * One member's connection to a shared lock store, which a test (or bench) can cut, as a partition or a
 * crash looks to the others: calls then hang until their timeout aborts them, and watch events stop
 * reaching the member. Without `watch` the member polls, as client-go's loop does; without `members` it
 * keeps no membership heartbeats, as an elector alone does not.
 */
export class PartitionableStore implements LockStore {
  #cut = false;
  readonly #inner: LockStore;
  readonly watch?: LockStore['watch'];
  readonly heartbeat?: LockStore['heartbeat'];
  readonly members?: LockStore['members'];
  readonly close?: LockStore['close'];

  constructor(inner: LockStore, options: { watch?: boolean; members?: boolean } = {}) {
    this.#inner = inner;
    const { watch, heartbeat, members, close } = inner;
    if (close) this.close = () => close.call(inner);
    if (options.watch && watch) this.watch = (lock, onChange) => watch.call(inner, lock, (version, record) => void (this.#cut || onChange(version, record)));
    if (options.members && heartbeat && members) {
      this.heartbeat = (lock, member, signal) => this.#gate(signal, () => heartbeat.call(inner, lock, member, signal));
      this.members = (lock, signal) => this.#gate(signal, () => members.call(inner, lock, signal));
    }
  }

  cut(): void {
    this.#cut = true;
  }

  #gate<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    if (!this.#cut) return call();
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('partitioned')), { once: true }));
  }
  get(lock: string, signal: AbortSignal) {
    return this.#gate(signal, () => this.#inner.get(lock, signal));
  }
  create(lock: string, record: LockRecord, signal: AbortSignal) {
    return this.#gate(signal, () => this.#inner.create(lock, record, signal));
  }
  update(lock: string, record: LockRecord, version: string, signal: AbortSignal) {
    return this.#gate(signal, () => this.#inner.update(lock, record, version, signal));
  }
}
