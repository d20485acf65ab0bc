import type { Exchange } from '../exchange/exchange.ts';
import { isPromise, type Processor } from '../spi/processor.ts';

/** Normalises anything thrown into an Error, so `exchange.exception` is always an Error. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : `non-Error thrown: ${safeString(thrown)}`);
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const noop: Processor = () => undefined;

/**
 * Runs processors in order until one fails or stops the exchange. Synchronous steps run in one
 * loop without allocating promises; only a step that returns a promise makes the rest wait for it.
 * A throw or rejection is recorded on the exchange, never propagated: routes resolve, consumers decide.
 */
export function pipeline(steps: readonly Processor[]): Processor {
  if (steps.length === 0) return noop;
  if (steps.length === 1) return guard(steps[0]!);
  const list = steps.slice();
  return (exchange) => runFrom(list, 0, exchange);
}

function runFrom(steps: readonly Processor[], start: number, exchange: Exchange): void | Promise<void> {
  for (let i = start; i < steps.length; i += 1) {
    if (exchange.exception !== undefined || exchange.stopped) return;
    let result: void | Promise<void>;
    try {
      result = steps[i]!(exchange);
    } catch (err) {
      exchange.exception = toError(err);
      return;
    }
    if (isPromise(result)) {
      const next = i + 1;
      return result.then(
        () => runFrom(steps, next, exchange),
        (err: unknown) => {
          exchange.exception = toError(err);
        },
      );
    }
  }
}

/** One processor with the same never-throw contract as a pipeline. */
export function guard(step: Processor): Processor {
  return (exchange) => {
    let result: void | Promise<void>;
    try {
      result = step(exchange);
    } catch (err) {
      exchange.exception = toError(err);
      return;
    }
    if (isPromise(result)) {
      return result.then(undefined, (err: unknown) => {
        exchange.exception = toError(err);
      });
    }
  };
}
