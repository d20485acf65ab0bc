import { DromedaryError } from '../../errors.ts';
import { formatDuration } from '../../uri/duration.ts';
import type { StepDefinition } from '../step.ts';
import { checkBooleanOptions, checkPositiveDuration, checkPositiveInteger, checkStepOptions } from './step-options.ts';

export interface ThrottleOptions {
  /** The window the limit applies to: milliseconds or a duration such as `1s`, `1m`. Default 1s, as in Camel. */
  period?: number | string;
  /** Fail an exchange over the limit with ThrottlerRejectedError instead of making it wait. */
  rejectExecution?: boolean;
}

/** An exchange the throttle would not let through: over the limit with rejectExecution, or the route stopped while it waited. */
export class ThrottlerRejectedError extends DromedaryError {
  constructor(message: string) {
    super('THROTTLER_REJECTED', message);
  }
}

const OPTION_NAMES = ['period', 'rejectExecution'];
const DEFAULT_PERIOD_MS = 1000;

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * The Throttler, in Camel 4's default total-requests mode: at most `maximum` exchanges pass in any
 * window of `period` (a sliding window: each passage holds its slot for one period). Exchanges over
 * the limit wait their turn in arrival order, or fail at once with rejectExecution. When the route
 * stops, the waiting ones fail with ThrottlerRejectedError rather than all being let through at
 * once, which would break the limit the throttle exists to keep; a consumer that redelivers (amqp)
 * gets them back later.
 */
export function throttleStep(maximum: number, options: ThrottleOptions = {}): StepDefinition {
  checkPositiveInteger('the maximum number of exchanges per period', maximum);
  checkStepOptions(options, OPTION_NAMES);
  checkBooleanOptions(options, ['rejectExecution']);
  const period = options.period === undefined ? DEFAULT_PERIOD_MS : checkPositiveDuration('period', options.period);
  const limit = `${maximum} per ${formatDuration(period)}`;
  return {
    kind: 'throttle',
    label: `throttle(${limit})`,
    compile({ signal }) {
      // When each passage of the last period happened, oldest at `first`; older ones are dropped as
      // time moves on, so memory follows the traffic, not the limit (which may be huge).
      const passed: number[] = [];
      let first = 0;
      const waiters: Waiter[] = [];
      let timer: NodeJS.Timeout | undefined;

      const tryPass = (now: number): boolean => {
        while (first < passed.length && now - passed[first]! >= period) first += 1;
        if (first > 1024 && first * 2 > passed.length) {
          passed.splice(0, first);
          first = 0;
        }
        if (passed.length - first >= maximum) return false;
        passed.push(now);
        return true;
      };
      const release = () => {
        timer = undefined;
        while (waiters.length > 0 && tryPass(performance.now())) waiters.shift()!.resolve();
        schedule();
      };
      const schedule = () => {
        if (timer !== undefined || waiters.length === 0) return;
        // Re-checked when it fires, since a timer may fire a fraction of a millisecond early.
        timer = setTimeout(release, Math.max(1, Math.ceil(passed[first]! + period - performance.now())));
      };
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          timer = undefined;
          const stopped = new ThrottlerRejectedError(`throttle(${limit}): the route stopped while the exchange waited for its turn`);
          for (const waiter of waiters.splice(0)) waiter.reject(stopped);
        },
        { once: true },
      );

      return () => {
        if (waiters.length === 0 && tryPass(performance.now())) return;
        if (options.rejectExecution) {
          throw new ThrottlerRejectedError(`throttle(${limit}): exceeded the maximum; rejected because rejectExecution is set`);
        }
        if (signal.aborted) throw new ThrottlerRejectedError(`throttle(${limit}): the route is stopping`);
        return new Promise<void>((resolve, reject) => {
          waiters.push({ resolve, reject });
          schedule();
        });
      };
    },
  };
}
