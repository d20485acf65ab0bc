/**
 * Message headers with case-insensitive names, as in Camel and HTTP.
 * The first spelling a name was set with is the one reported back.
 */
export class Headers implements Iterable<[string, unknown]> {
  readonly #entries = new Map<string, { name: string; value: unknown }>();

  constructor(init?: Iterable<[string, unknown]> | Record<string, unknown>) {
    if (!init) return;
    const pairs = Symbol.iterator in init ? (init as Iterable<[string, unknown]>) : Object.entries(init);
    for (const [name, value] of pairs) this.set(name, value);
  }

  get size(): number {
    return this.#entries.size;
  }

  get<T = unknown>(name: string): T | undefined {
    return this.#entries.get(name.toLowerCase())?.value as T | undefined;
  }

  has(name: string): boolean {
    return this.#entries.has(name.toLowerCase());
  }

  set(name: string, value: unknown): this {
    const key = name.toLowerCase();
    const existing = this.#entries.get(key);
    if (existing) existing.value = value;
    else this.#entries.set(key, { name, value });
    return this;
  }

  delete(name: string): boolean {
    return this.#entries.delete(name.toLowerCase());
  }

  clear(): void {
    this.#entries.clear();
  }

  *[Symbol.iterator](): IterableIterator<[string, unknown]> {
    for (const { name, value } of this.#entries.values()) yield [name, value];
  }

  entries(): IterableIterator<[string, unknown]> {
    return this[Symbol.iterator]();
  }

  toObject(): Record<string, unknown> {
    return Object.fromEntries(this);
  }

  copy(): Headers {
    return new Headers(this);
  }
}
