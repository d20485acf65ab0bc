/**
 * Where the idempotent consumer remembers the keys it has seen, like Camel's IdempotentRepository.
 * Every method may return a promise, so a shared store (Redis, a database table) can back it and
 * several processes can share one set of keys.
 *
 * `add` must be atomic: it answers false when the key was already there, and of two concurrent adds
 * of one key exactly one answers true (Redis `SET key 1 NX`, an SQL insert on a unique key). The
 * idempotent consumer relies on that to let only one of two concurrent duplicates through.
 */
export interface IdempotentRepository {
  /** Adds the key; true when it was not there before. */
  add(key: string): boolean | Promise<boolean>;
  /** True when the key is there. */
  contains(key: string): boolean | Promise<boolean>;
  /** Forgets the key (its exchange failed, so a redelivery must not be taken for a duplicate). */
  remove(key: string): boolean | Promise<boolean>;
  /** The exchange that added the key completed; a store with a pending state may commit it here. */
  confirm(key: string): boolean | Promise<boolean>;
  /** Forgets every key. */
  clear?(): void | Promise<void>;
}

/** Camel's MemoryIdempotentRepository default size. */
export const DEFAULT_IDEMPOTENT_CACHE_SIZE = 1000;

/**
 * An in-process repository holding at most `maxSize` keys; past that, the least recently used key
 * (added or looked up longest ago) is forgotten. Its answers are synchronous, so adds are atomic.
 */
export class MemoryIdempotentRepository implements IdempotentRepository {
  readonly maxSize: number;
  readonly #keys = new Set<string>();

  constructor(maxSize: number = DEFAULT_IDEMPOTENT_CACHE_SIZE) {
    if (!Number.isInteger(maxSize) || maxSize < 1) {
      throw new TypeError(`the memory idempotent repository's maxSize must be a positive integer, got ${String(maxSize)}`);
    }
    this.maxSize = maxSize;
  }

  get size(): number {
    return this.#keys.size;
  }

  add(key: string): boolean {
    if (this.#touch(key)) return false;
    this.#keys.add(key);
    if (this.#keys.size > this.maxSize) this.#keys.delete(this.#keys.values().next().value!);
    return true;
  }

  contains(key: string): boolean {
    return this.#touch(key);
  }

  remove(key: string): boolean {
    return this.#keys.delete(key);
  }

  confirm(key: string): boolean {
    return this.#keys.has(key);
  }

  clear(): void {
    this.#keys.clear();
  }

  /** Moves a present key to the most recently used end; a Set keeps insertion order. */
  #touch(key: string): boolean {
    if (!this.#keys.delete(key)) return false;
    this.#keys.add(key);
    return true;
  }
}
