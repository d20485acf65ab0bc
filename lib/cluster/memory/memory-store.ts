import { LockConflictError, type LockRecord, type LockStore, type VersionedRecord } from '../election/lock-store.ts';

/**
 * Lock records in memory, shared by every elector given the same store: for tests (yours too) and
 * for several members inside one process. `fail(n)`, `hang()` and `delay(ms)` make it misbehave on
 * purpose; `remove()` and `overwrite()` act as an operator deleting or editing the record would.
 */
export class MemoryLockStore implements LockStore {
  readonly #records = new Map<string, VersionedRecord>();
  readonly #watchers = new Map<string, Set<(version?: string, record?: LockRecord | null) => void>>();
  readonly #alive = new Map<string, Map<string, number>>();
  #version = 0;
  #failures = 0;
  #hanging = false;
  #hung: Array<() => void> = [];
  #delayMs = 0;
  /** Writes that succeeded, for tests that count traffic. */
  writes = 0;
  reads = 0;

  /** The next `count` calls fail with a network-like error. */
  fail(count: number): void {
    this.#failures = count;
  }

  /** Every call from now on hangs until heal(). */
  hang(): void {
    this.#hanging = true;
  }

  /** Every call from now on takes `ms` before it is answered (0 removes the delay). */
  delay(ms: number): void {
    this.#delayMs = ms;
  }

  heal(): void {
    this.#hanging = false;
    this.#failures = 0;
    this.#delayMs = 0;
    for (const resume of this.#hung.splice(0)) resume();
  }

  peek(lock: string): VersionedRecord | undefined {
    return this.#records.get(lock);
  }

  /** Deletes the record, as `kubectl delete lease` or removing the lock files would. */
  remove(lock: string): void {
    if (!this.#records.delete(lock)) return;
    this.#version += 1;
    const version = String(this.#version);
    for (const w of this.#watchers.get(lock) ?? []) setImmediate(w, version, null);
  }

  /** Replaces fields of the record without compare-and-swap, as `kubectl patch` would. */
  overwrite(lock: string, fields: Partial<LockRecord>): VersionedRecord {
    const current = this.#records.get(lock);
    if (!current) throw new Error(`memory store: no record of ${lock} to overwrite`);
    return this.#write(lock, { ...current.record, ...fields });
  }

  async #gate(signal: AbortSignal): Promise<void> {
    if (this.#delayMs > 0) {
      const ms = this.#delayMs;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason ?? new Error('aborted'))), { once: true });
      });
    }
    if (this.#hanging) {
      await new Promise<void>((resolve, reject) => {
        this.#hung.push(resolve);
        signal.addEventListener('abort', () => reject(signal.reason ?? new Error('aborted')), { once: true });
      });
    }
    if (this.#failures > 0) {
      this.#failures -= 1;
      throw new Error('memory store: injected failure');
    }
  }

  async get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    await this.#gate(signal);
    this.reads += 1;
    return this.#records.get(lock);
  }

  async create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    await this.#gate(signal);
    if (this.#records.has(lock)) throw new LockConflictError(lock, 'already exists');
    return this.#write(lock, record);
  }

  async update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord> {
    await this.#gate(signal);
    if (this.#records.get(lock)?.version !== expectedVersion) throw new LockConflictError(lock);
    return this.#write(lock, record);
  }

  #write(lock: string, record: LockRecord): VersionedRecord {
    this.#version += 1;
    this.writes += 1;
    const written = { record: { ...record }, version: String(this.#version) };
    this.#records.set(lock, written);
    // Asynchronously, as a real store's notifications arrive.
    for (const w of this.#watchers.get(lock) ?? []) setImmediate(w, written.version, written.record);
    return written;
  }

  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    const set = this.#watchers.get(lock) ?? new Set();
    this.#watchers.set(lock, set);
    set.add(onChange);
    return () => set.delete(onChange);
  }

  async heartbeat(lock: string, memberId: string): Promise<void> {
    const members = this.#alive.get(lock) ?? new Map<string, number>();
    this.#alive.set(lock, members);
    members.set(memberId, performance.now());
  }

  async members(lock: string): Promise<string[]> {
    const record = this.#records.get(lock)?.record;
    const horizon = performance.now() - (record?.leaseDurationMs ?? 15_000);
    return [...(this.#alive.get(lock) ?? new Map<string, number>()).entries()].filter(([, at]) => at >= horizon).map(([id]) => id);
  }
}
