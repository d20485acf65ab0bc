import type { Exchange } from '../exchange/exchange.ts';

/**
 * The unit of work of a route: a function of the exchange. It may be synchronous; the engine only
 * awaits what returns a promise, so synchronous steps cost no microtask.
 */
export type Processor = (exchange: Exchange) => void | Promise<void>;

/** Awaits a processor's result only when it is a promise. */
export function isPromise(value: unknown): value is Promise<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
