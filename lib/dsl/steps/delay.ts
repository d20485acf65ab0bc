import { RouteBuildError } from '../../errors.ts';
import { parseDuration } from '../../uri/duration.ts';
import type { Exchange } from '../../exchange/exchange.ts';
import type { StepDefinition } from '../step.ts';

/** Waits before continuing. Ends early when the route stops, so shutdown is never held up by a delay. */
export function delayStep(duration: number | string | ((exchange: Exchange) => number)): StepDefinition {
  let compute: (exchange: Exchange) => number;
  if (typeof duration === 'function') compute = duration;
  else {
    const ms = parseDuration(duration);
    if (ms === undefined || ms < 0) {
      throw new RouteBuildError(`delay(${JSON.stringify(duration)}) is not a duration: use milliseconds or units such as 500ms, 5s, 1m`);
    }
    compute = () => ms;
  }
  return {
    kind: 'delay',
    label: `delay(${typeof duration === 'function' ? 'fn' : duration})`,
    compile: ({ signal }) => (exchange) => {
      const ms = compute(exchange);
      if (!(ms > 0) || signal.aborted) return;
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    },
  };
}

/** stop(): ends routing of this exchange successfully; later steps do not run. */
export function stopStep(): StepDefinition {
  return {
    kind: 'stop',
    label: 'stop()',
    compile: () => (exchange) => {
      exchange.stopped = true;
    },
  };
}
