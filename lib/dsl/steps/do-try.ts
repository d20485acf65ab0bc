import { ExchangeProperty, type Exchange } from '../../exchange/exchange.ts';
import type { Processor } from '../../spi/processor.ts';
import { matchesAny } from '../../engine/error-handling.ts';
import { describeMatchers, toMatchers, type ErrorMatcher } from '../error-handling.ts';
import type { StepDefinition } from '../step.ts';

export interface DoCatchClause {
  readonly matchers: readonly ErrorMatcher[];
  readonly steps: StepDefinition[];
}

export interface DoTryStep extends StepDefinition {
  readonly tryBody: StepDefinition[];
  readonly catches: DoCatchClause[];
  readonly finallySteps: StepDefinition[] | undefined;
  addCatch(matchers: readonly ErrorMatcher[]): StepDefinition[];
  addFinally(): StepDefinition[];
}

/**
 * try/catch/finally for routes: the first doCatch, in order, whose error class (or condition) takes
 * the failure or one of its causes runs, and the failure is then dealt with; doFinally always runs.
 * As in Camel, the route's error handler does not act inside the block: no redelivery there.
 */
export function doTryStep(): DoTryStep {
  const tryBody: StepDefinition[] = [];
  const catches: DoCatchClause[] = [];
  let finallySteps: StepDefinition[] | undefined;
  const step: DoTryStep = {
    kind: 'doTry',
    get label() {
      return `doTry(${catches.map((c) => `doCatch(${describeMatchers(c.matchers)})`).join(', ')}${finallySteps ? ', doFinally' : ''})`;
    },
    tryBody,
    catches,
    get finallySteps() {
      return finallySteps;
    },
    addCatch(matchers) {
      const steps: StepDefinition[] = [];
      catches.push({ matchers: toMatchers('doCatch()', matchers), steps });
      return steps;
    },
    addFinally() {
      finallySteps = [];
      return finallySteps;
    },
    async compile(compiler) {
      const body = await compiler.compileWithoutErrorHandler(tryBody);
      const handlers: Array<{ matchers: readonly ErrorMatcher[]; body: Processor }> = [];
      for (const c of catches) handlers.push({ matchers: c.matchers, body: await compiler.compileWithoutErrorHandler(c.steps) });
      const last = finallySteps ? await compiler.compileWithoutErrorHandler(finallySteps) : undefined;
      return async (exchange: Exchange) => {
        await body(exchange);
        const error = exchange.exception;
        if (error !== undefined) {
          const handler = handlers.find((h) => matchesAny(h.matchers, error, exchange));
          if (handler) {
            exchange.properties.set(ExchangeProperty.ExceptionCaught, error);
            exchange.exception = undefined;
            await handler.body(exchange);
          }
        }
        if (last) {
          // doFinally runs whatever happened; a failure still pending is put back afterwards, unless doFinally fails itself.
          const pending = exchange.exception;
          const stopped = exchange.stopped;
          exchange.exception = undefined;
          exchange.stopped = false;
          await last(exchange);
          if (exchange.exception === undefined) exchange.exception = pending;
          exchange.stopped ||= stopped;
        }
      };
    },
  };
  return step;
}

