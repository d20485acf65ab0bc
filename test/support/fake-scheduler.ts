import type { Scheduler } from '../../lib/engine/scheduler.ts';

/**
 * A virtual clock for the engine's Scheduler: timers fire only when the test says so, and the
 * clock jumps to each timer's due time. `requested` records every wait asked for, in order.
 */
export class FakeScheduler implements Scheduler {
  #now = 0;
  #sequence = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  readonly requested: number[] = [];

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.#sequence += 1;
    this.#timers.set(this.#sequence, { at: this.#now + ms, fn });
    this.requested.push(ms);
    return this.#sequence;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves the clock to the earliest timer and fires it. */
  fireNext(): void {
    let first: [number, { at: number; fn: () => void }] | undefined;
    for (const entry of this.#timers) if (!first || entry[1].at < first[1].at) first = entry;
    if (!first) throw new Error('FakeScheduler.fireNext(): no timer is pending');
    this.#timers.delete(first[0]);
    this.#now = first[1].at;
    first[1].fn();
  }
}
