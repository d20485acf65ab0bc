import { LeadershipLostError } from '../../errors.ts';
import { Exchange, ExchangeProperty } from '../../exchange/exchange.ts';
import type { LeaderStateSlot } from '../../spi/leader-state.ts';
import { ConsumerSupport } from '../../spi/endpoint-support.ts';
import type { TimerEndpoint } from './timer-component.ts';

/**
 * Under master:, an unbounded timer saves its counter at most this often (and when it stops): every
 * save is a store write for the lock, and a counter is not worth more writes than the lease's own
 * renewals (a 1 s timer saving at each fire would triple a Kubernetes Lease's default write rate).
 */
export const TIMER_SAVE_INTERVAL = 5000;

/**
 * Fires one exchange at a time: the next fire never starts before the previous exchange is done.
 * Fixed-delay (the default) schedules each fire a period after the previous one began; fixedRate
 * keeps to start + n × period and fires late ones back to back, as java.util.Timer does.
 *
 * Under master: CamelTimerCounter continues from the lock's leader state, so a new leader goes on
 * counting, and repeatCount counts the fires of all leaders. With a repeatCount each fire is saved
 * before its exchange runs, so the leaders together never fire more than repeatCount times; without
 * one, the counter is saved at most every TIMER_SAVE_INTERVAL and when the timer stops (a graceful
 * handover continues exactly; after a crash a new leader may repeat up to that interval's numbers).
 */
export class TimerConsumer extends ConsumerSupport<TimerEndpoint> {
  #timer: NodeJS.Timeout | undefined;
  #counter = 0;
  /** Fires since start, for the fixed-rate schedule (the counter may have started above 0). */
  #firedHere = 0;
  #firstDue = 0;
  #running = false;
  #slot: LeaderStateSlot | undefined;
  #resumedCounter = 0;
  #savedCounter = 0;
  #lastSaveAt = -Infinity;
  #saveTimer: NodeJS.Timeout | undefined;
  #saveFailing = false;

  /** How many times it fired since start. */
  get fired(): number {
    return this.#firedHere;
  }

  /** Whether another fire is scheduled; false once repeatCount is reached or after stop. */
  get scheduled(): boolean {
    return this.#timer !== undefined;
  }

  resumeFrom(slot: LeaderStateSlot): void {
    this.#slot = slot;
    const saved = slot.saved as { counter?: unknown } | null | undefined;
    if (saved === undefined) return;
    const counter = saved?.counter;
    if (typeof counter !== 'number' || !Number.isInteger(counter) || counter < 0) {
      this.endpoint.context.logger.warn(`Timer ${this.endpoint.maskedUri} ignores the leader state saved for it (${JSON.stringify(saved)}): expected {"counter":<n>}; counting from 1`);
      return;
    }
    this.#resumedCounter = counter;
  }

  protected doStart(): void {
    const { delay, repeatCount } = this.endpoint.options;
    this.#counter = this.#resumedCounter;
    this.#savedCounter = this.#resumedCounter;
    this.#firedHere = 0;
    this.#running = true;
    if (repeatCount > 0 && this.#counter >= repeatCount) {
      this.endpoint.context.logger.debug(`Timer ${this.endpoint.maskedUri} reached repeatCount ${repeatCount} under earlier leaders`);
      return;
    }
    this.#firstDue = performance.now() + Math.max(0, delay);
    this.#schedule(this.#firstDue);
  }

  protected async doStop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    // A graceful handover: the next leader continues from the last fire, not from the last periodic save.
    if (this.#slot && this.#counter !== this.#savedCounter) await this.#save();
  }

  #schedule(due: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => void this.#fire(due), Math.max(0, due - performance.now()));
  }

  async #fire(due: number): Promise<void> {
    this.#timer = undefined;
    if (!this.#running) return;
    const { period, repeatCount, fixedRate, includeMetadata } = this.endpoint.options;
    const started = performance.now();
    this.#counter += 1;
    this.#firedHere += 1;
    if (this.#slot && repeatCount > 0 && !(await this.#save())) {
      // Not recorded, so not fired: the leaders together must not fire more than repeatCount times.
      this.#counter -= 1;
      this.#firedHere -= 1;
      this.#schedule(Math.max(started, due) + period);
      return;
    }
    const exchange = new Exchange({ fromEndpoint: this.endpoint.maskedUri });
    exchange.properties.set(ExchangeProperty.TimerCounter, this.#counter);
    if (includeMetadata) {
      const fired = new Date();
      exchange.properties.set(ExchangeProperty.TimerName, this.endpoint.timerName);
      exchange.properties.set(ExchangeProperty.TimerPeriod, period);
      exchange.properties.set(ExchangeProperty.TimerFiredTime, fired);
      exchange.headers.set(ExchangeProperty.TimerFiredTime, fired);
      exchange.headers.set(ExchangeProperty.TimerCounter, this.#counter);
    }
    if (this.#slot && repeatCount === 0) this.#saveSoon();
    await this.processor(exchange);
    if (repeatCount > 0 && this.#counter >= repeatCount) {
      this.endpoint.context.logger.debug(`Timer ${this.endpoint.maskedUri} reached repeatCount ${repeatCount}`);
      return;
    }
    const next = fixedRate ? this.#firstDue + this.#firedHere * period : Math.max(started, due) + period;
    this.#schedule(next);
  }

  /** Saves the counter now, or once TIMER_SAVE_INTERVAL has passed since the last save. */
  #saveSoon(): void {
    if (this.#saveTimer) return;
    const wait = this.#lastSaveAt + TIMER_SAVE_INTERVAL - performance.now();
    if (wait <= 0) {
      void this.#save();
      return;
    }
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void this.#save();
    }, wait);
  }

  /** Saves the current counter; whether the store holds it. */
  async #save(): Promise<boolean> {
    const counter = this.#counter;
    this.#lastSaveAt = performance.now();
    try {
      await this.#slot!.save({ counter });
      this.#savedCounter = Math.max(this.#savedCounter, counter);
      this.#saveFailing = false;
      return true;
    } catch (err) {
      const message = `Timer ${this.endpoint.maskedUri} could not save its counter ${counter} in the leader state: ${err instanceof Error ? err.message : String(err)}`;
      // A lost term is refused by design (the master: consumer is stopping the timer); a store outage is told once.
      if (err instanceof LeadershipLostError || this.#saveFailing) this.endpoint.context.logger.debug(message);
      else this.endpoint.context.logger.warn(message);
      if (!(err instanceof LeadershipLostError)) this.#saveFailing = true;
      return false;
    }
  }
}
