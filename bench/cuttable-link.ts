import type { FileLockStore } from '../lib/cluster/file/file-lock-store.ts';
import type { LockRecord, LockStore } from '../lib/cluster/election/lock-store.ts';

/**
 * One member's link to the shared lock folder, which a crash cuts: every call then hangs until its
 * timeout, and watch events stop reaching it, as the other members see a crashed process. Without
 * `watch` the member polls, as client-go's loop does (the failover bench's reference); without `members`
 * it keeps no membership heartbeats, as an elector alone does not.
 */
export class CuttableLink implements LockStore {
  cut = false;
  readonly #inner: FileLockStore;
  readonly watch?: LockStore['watch'];
  readonly heartbeat?: LockStore['heartbeat'];
  readonly members?: LockStore['members'];

  constructor(inner: FileLockStore, options: { watch: boolean; members?: boolean }) {
    this.#inner = inner;
    if (options.watch) this.watch = (lock, onChange) => inner.watch(lock, (version) => void (this.cut || onChange(version)));
    if (options.members) {
      this.heartbeat = (lock, member, s) => this.#gate(s, () => inner.heartbeat(lock, member));
      this.members = (lock, s) => this.#gate(s, () => inner.members(lock));
    }
  }

  #gate<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    if (!this.cut) return call();
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('cut')), { once: true }));
  }
  get(lock: string, s: AbortSignal) {
    return this.#gate(s, () => this.#inner.get(lock));
  }
  create(lock: string, r: LockRecord, s: AbortSignal) {
    return this.#gate(s, () => this.#inner.create(lock, r));
  }
  update(lock: string, r: LockRecord, v: string, s: AbortSignal) {
    return this.#gate(s, () => this.#inner.update(lock, r, v));
  }
  close() {
    return this.#inner.close();
  }
}
