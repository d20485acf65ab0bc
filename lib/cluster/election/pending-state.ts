import type { JsonValue } from '../../spi/leader-state.ts';
import { withChanges, type StateRecord } from '../state-value.ts';

/** One set() call's value; compared by identity, so a key set again meanwhile is told apart. */
interface Change {
  readonly value: JsonValue | undefined;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** What one write of the lock record carries: the changes pending when it was made, and their callers. */
export interface StateBatch {
  readonly changes: ReadonlyMap<string, Change>;
  readonly waiters: readonly Waiter[];
}

/**
 * Leader-state changes waiting for the elector's next write of the lock record. Calls made while a
 * write is in flight accumulate here and go out together with the next one (the last value of a
 * key wins); a caller is answered once a write carrying its change (or a later one) succeeded.
 */
export class PendingState {
  #changes = new Map<string, Change>();
  #waiters: Waiter[] = [];

  get empty(): boolean {
    return this.#changes.size === 0 && this.#waiters.length === 0;
  }

  /** `base` with every pending change and then `key` set to `value`: what the state would become. */
  preview(base: StateRecord | undefined, key: string, value: JsonValue | undefined): StateRecord | undefined {
    return withChanges(base, [...[...this.#changes].map(([k, c]) => [k, c.value] as const), [key, value] as const]);
  }

  add(key: string, value: JsonValue | undefined): Promise<void> {
    // Re-inserted, so the key's place in the written state follows the last set, as a Map's would.
    this.#changes.delete(key);
    this.#changes.set(key, { value });
    return new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** What a write made now carries; the batch stays pending until settle(). */
  snapshot(): StateBatch {
    return { changes: new Map(this.#changes), waiters: [...this.#waiters] };
  }

  /** Removes everything pending and returns it (a last write that takes it along). */
  detach(): StateBatch {
    const batch = { changes: this.#changes, waiters: this.#waiters };
    this.#changes = new Map();
    this.#waiters = [];
    return batch;
  }

  /** A write carrying `batch` succeeded: its callers are answered, and its changes no longer pending unless set again since. */
  settle(batch: StateBatch): void {
    for (const [key, change] of batch.changes) if (this.#changes.get(key) === change) this.#changes.delete(key);
    const done = new Set(batch.waiters);
    this.#waiters = this.#waiters.filter((w) => !done.has(w));
    for (const w of batch.waiters) w.resolve();
  }

  /** The term ended: nothing pending will be written; every caller is told why. */
  rejectAll(err: unknown): void {
    const { waiters } = this.detach();
    for (const w of waiters) w.reject(err);
  }
}

/** `base` with a batch's changes applied. */
export function applyBatch(base: StateRecord | undefined, batch: StateBatch): StateRecord | undefined {
  return withChanges(base, [...batch.changes].map(([k, c]) => [k, c.value] as const));
}
