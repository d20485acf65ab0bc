import type { JsonValue, LeaderStateSlot } from '../../lib/spi/leader-state.ts';

/**
 * A LeaderStateSlot over a plain object, for tests of a consumer's resume logic, where the cluster
 * store is not what is under test: it records every save, and can be told to refuse them.
 */
export class MemorySlot implements LeaderStateSlot {
  readonly key: string;
  readonly saved: JsonValue | undefined;
  readonly saves: JsonValue[] = [];
  /** When set, every save rejects with it. */
  failWith: Error | undefined;
  /** When set, each save waits for it before it is recorded (a slow store). */
  gate: Promise<void> | undefined;

  constructor(saved?: JsonValue, key = 'test-key') {
    this.saved = saved;
    this.key = key;
  }

  async save(value: JsonValue): Promise<void> {
    const copy = structuredClone(value);
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    this.saves.push(copy);
  }

  /** The last value saved, else what it started with: what the next term's slot would read. */
  get latest(): JsonValue | undefined {
    return this.saves.length > 0 ? this.saves[this.saves.length - 1] : this.saved;
  }
}
