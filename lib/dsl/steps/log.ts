import { RouteBuildError } from '../../errors.ts';
import { isPromise } from '../../spi/processor.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { clip, LOG_MAX_CHARS } from '../../logging/clip.ts';
import { toEvaluator } from '../expression.ts';
import type { StepDefinition } from '../step.ts';

/** Camel's levels, mapped onto winston's npm levels. OFF disables the step. */
const LEVELS: Record<string, string | null> = {
  error: 'error',
  warn: 'warn',
  info: 'info',
  debug: 'debug',
  verbose: 'verbose',
  trace: 'silly',
  silly: 'silly',
  off: null,
};

export function logLevel(level: string): string | null {
  const mapped = LEVELS[level.toLowerCase()];
  if (mapped === undefined) {
    throw new RouteBuildError(`unknown log level "${level}": use one of ${Object.keys(LEVELS).join(', ')}`);
  }
  return mapped;
}

/** The Log EIP: a Simple message logged under the route's id (or the given log name), cut as the log: component cuts a body. */
export function logStep(level: string, message: string, logName?: string): StepDefinition {
  const winstonLevel = logLevel(level);
  const evaluate = toEvaluator(message);
  return {
    kind: 'log',
    label: `log(${JSON.stringify(message)})`,
    compile({ logger }) {
      if (winstonLevel === null) return () => undefined;
      const target = logName ? logger.child({ logger: logName }) : logger;
      const write = (value: unknown) => {
        // Cut before masking: masking scans the whole text.
        target.log(winstonLevel, maskSecrets(clip(typeof value === 'string' ? value : String(value), LOG_MAX_CHARS, 'Message')));
      };
      return (exchange) => {
        const value = evaluate(exchange);
        if (isPromise(value)) return value.then(write);
        write(value);
      };
    },
  };
}
