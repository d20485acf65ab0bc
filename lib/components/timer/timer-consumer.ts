import { Exchange, ExchangeProperty } from '../../exchange/exchange.ts';
import { ConsumerSupport } from '../../spi/endpoint-support.ts';
import type { TimerEndpoint } from './timer-component.ts';

/**
 * Fires one exchange at a time: the next fire never starts before the previous exchange is done.
 * Fixed-delay (the default) schedules each fire a period after the previous one began; fixedRate
 * keeps to start + n × period and fires late ones back to back, as java.util.Timer does.
 */
export class TimerConsumer extends ConsumerSupport<TimerEndpoint> {
  #timer: NodeJS.Timeout | undefined;
  #counter = 0;
  #firstDue = 0;
  #running = false;

  /** How many times it fired since start. */
  get fired(): number {
    return this.#counter;
  }

  /** Whether another fire is scheduled; false once repeatCount is reached or after stop. */
  get scheduled(): boolean {
    return this.#timer !== undefined;
  }

  protected doStart(): void {
    const { delay } = this.endpoint.options;
    this.#counter = 0;
    this.#running = true;
    this.#firstDue = performance.now() + Math.max(0, delay);
    this.#schedule(this.#firstDue);
  }

  protected doStop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
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
    await this.processor(exchange);
    if (repeatCount > 0 && this.#counter >= repeatCount) {
      this.endpoint.context.logger.debug(`Timer ${this.endpoint.maskedUri} reached repeatCount ${repeatCount}`);
      return;
    }
    const next = fixedRate ? this.#firstDue + this.#counter * period : Math.max(started, due) + period;
    this.#schedule(next);
  }
}
