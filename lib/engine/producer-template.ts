import { Exchange } from '../exchange/exchange.ts';
import type { Producer } from '../spi/component.ts';
import type { Context } from './context.ts';
import { toError } from './pipeline.ts';

/**
 * Sends to endpoints from plain code, like Camel's ProducerTemplate: `send` returns the exchange
 * (failed or not); `sendBody` and `requestBody` throw the exchange's error.
 */
export class ProducerTemplate {
  readonly #context: Context;
  readonly #producers = new Map<string, Promise<Producer>>();

  constructor(context: Context) {
    this.#context = context;
  }

  async send(uri: string, exchangeOrBody?: Exchange | unknown, headers?: Record<string, unknown>): Promise<Exchange> {
    const exchange =
      exchangeOrBody instanceof Exchange ? exchangeOrBody : new Exchange({ body: exchangeOrBody, headers, pattern: 'InOut' });
    if (exchangeOrBody instanceof Exchange && headers) for (const [k, v] of Object.entries(headers)) exchange.headers.set(k, v);
    try {
      const producer = await this.#producer(uri);
      await producer.process(exchange);
    } catch (err) {
      exchange.exception = toError(err);
    }
    return exchange;
  }

  async sendBody(uri: string, body: unknown, headers?: Record<string, unknown>): Promise<void> {
    const exchange = await this.send(uri, new Exchange({ body, headers, pattern: 'InOnly' }));
    if (exchange.exception) throw exchange.exception;
  }

  async requestBody<T = unknown>(uri: string, body: unknown, headers?: Record<string, unknown>): Promise<T> {
    const exchange = await this.send(uri, new Exchange({ body, headers, pattern: 'InOut' }));
    if (exchange.exception) throw exchange.exception;
    return exchange.message.body as T;
  }

  #producer(uri: string): Promise<Producer> {
    let pending = this.#producers.get(uri);
    if (!pending) {
      pending = this.#context.createProducer(uri);
      this.#producers.set(uri, pending);
      pending.catch(() => this.#producers.delete(uri));
    }
    return pending;
  }

  async stop(): Promise<void> {
    const producers = [...this.#producers.values()];
    this.#producers.clear();
    for (const p of producers) await (await p.catch(() => undefined))?.stop();
  }
}
