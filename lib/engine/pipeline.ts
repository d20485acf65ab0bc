import { LeadershipLostError } from '../errors.ts';
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
  if (steps.length === 1) {
    const only = guard(steps[0]!);
    return (exchange) => (exchange.term !== undefined && stopIfTermEnded(exchange) ? undefined : only(exchange));
  }
  const list = steps.slice();
  return (exchange) => runFrom(list, 0, exchange);
}

function runFrom(steps: readonly Processor[], start: number, exchange: Exchange): void | Promise<void> {
  for (let i = start; i < steps.length; i += 1) {
    if (exchange.exception !== undefined || exchange.stopped) return;
    // Outside master routes `term` is undefined: the check costs one comparison per step.
    if (exchange.term !== undefined && stopIfTermEnded(exchange)) return;
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

/**
 * Fencing between steps: an exchange of a master route whose leadership term has ended (this
 * member's lease lapsed during a pause or a partition, or another member took the lock) fails
 * before its next step, so no step starts on a member that no longer leads. `isCurrent` is judged on
 * the monotonic clock, so a member resumed after SIGSTOP sees the lapse before any timer has run.
 * Why that keeps two members from running at once: a term is current only until renewDeadline after
 * its last successful renewal began, and another member's term begins at the earliest leaseDuration
 * (> renewDeadline) after it saw that renewal. Every step of the exchange passes here, including
 * those of nested blocks, routes reached by direct: and the copies that share the term.
 */
function stopIfTermEnded(exchange: Exchange): boolean {
  const failure = termEnded(exchange);
  if (failure === undefined) return false;
  exchange.exception = failure;
  return true;
}

/**
 * The failure for an exchange whose leadership term has ended, or undefined while it may go on.
 * `what` says what the exchange did instead of going on; `cause` is a failure it replaces.
 */
export function termEnded(exchange: Exchange, what = 'stopped before its next step', cause?: Error): LeadershipLostError | undefined {
  const term = exchange.term;
  if (term === undefined || term.isCurrent) return undefined;
  const ended = term.signal.reason;
  const why = ended instanceof LeadershipLostError ? ended.reason : 'its leadership term ended';
  return new LeadershipLostError(term.lock, term.memberId, `${why}; exchange ${exchange.id} ${what}`, term.token, cause ? { cause } : undefined);
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
