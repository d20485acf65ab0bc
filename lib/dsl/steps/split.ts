import { ExchangeProperty, type Exchange } from '../../exchange/exchange.ts';
import { describeExpression, toEvaluator, type Expression } from '../expression.ts';
import type { StepDefinition } from '../step.ts';

/**
 * Combines the sub-exchanges into a result, like Camel's AggregationStrategy. In a split it also
 * receives the failed items (`next.exception` set): returning an exchange without an exception
 * remedies the failure.
 */
export type AggregationStrategy = (aggregated: Exchange | undefined, next: Exchange) => Exchange;

export interface SplitOptions {
  /** Separator for string bodies; Camel's default is a comma. */
  delimiter?: string;
  /** Stop at the first failed item, or the first whose failure an onException clause handled. */
  stopOnException?: boolean;
  /** When given, the parent exchange takes the aggregated exchange (message, properties, exception) after the split. */
  aggregationStrategy?: AggregationStrategy;
}

export interface SplitStep extends StepDefinition {
  readonly children: StepDefinition[];
}

/**
 * Set by the error handler when an onException(handled) clause or a dead-letter channel dealt with
 * a failure (the engine's ErrorProperty.ErrorHandlerHandled; dsl code cannot import the engine).
 */
const ERROR_HANDLER_HANDLED = 'CamelErrorHandlerHandled';

/**
 * The Splitter: one sub-exchange per item, each a copy of the parent with the item as body and
 * CamelSplitIndex/Size/Complete set, run one after the other. Outcomes follow Camel's
 * MulticastProcessor:
 * - without a strategy (Camel's UseOriginalAggregationStrategy) the parent keeps its message; a
 *   failed item does not stop the others, and the last failure is put on the parent at the end,
 *   as is the CamelExceptionCaught of an item whose failure a clause handled;
 * - with a strategy, every item that ran, failed or not, goes to it, and the parent takes the
 *   aggregated exchange's message, properties and exception: a strategy that returns an exchange
 *   without the exception has remedied the failure;
 * - with stopOnException, the first item that failed, or whose failure the error handler handled,
 *   ends the split without reaching the strategy. A failure then fails the parent (its message
 *   unchanged); a handled failure gives the parent that item's result and, as a handled failure in
 *   the route itself would, ends its routing.
 */
export function splitStep(expression: Expression, options: SplitOptions = {}): SplitStep {
  const evaluate = toEvaluator(expression);
  const delimiter = options.delimiter ?? ',';
  const strategy = options.aggregationStrategy;
  const children: StepDefinition[] = [];
  return {
    kind: 'split',
    label: `split(${describeExpression(expression)})`,
    children,
    async compile(compiler) {
      const body = await compiler.compile(children);
      return async (parent) => {
        const items = toItems(await evaluate(parent), delimiter);
        let aggregated: Exchange | undefined;
        let lastFailure: Error | undefined;
        let caught: unknown;
        for (let index = 0; index < items.length; index += 1) {
          const sub = parent.copy();
          sub.message.body = items[index];
          sub.message.messageId = undefined;
          // The flag describes one exchange's own failure; an item starts without one.
          sub.properties.delete(ERROR_HANDLER_HANDLED);
          sub.properties.set(ExchangeProperty.SplitIndex, index);
          sub.properties.set(ExchangeProperty.SplitSize, items.length);
          sub.properties.set(ExchangeProperty.SplitComplete, index === items.length - 1);
          await body(sub);
          const handled = sub.exception === undefined && sub.properties.get(ERROR_HANDLER_HANDLED) === true;
          if (options.stopOnException && (sub.exception !== undefined || handled)) {
            if (sub.exception !== undefined) {
              parent.exception = sub.exception;
            } else {
              adoptAggregated(parent, sub, 'CamelSplit');
              parent.stopped = true;
            }
            return;
          }
          if (strategy) {
            aggregated = strategy(aggregated, sub);
          } else {
            if (sub.exception !== undefined) lastFailure = sub.exception;
            if (sub.properties.has(ExchangeProperty.ExceptionCaught)) caught = sub.properties.get(ExchangeProperty.ExceptionCaught);
          }
        }
        if (strategy) {
          if (aggregated) {
            adoptAggregated(parent, aggregated, 'CamelSplit');
            parent.exception = aggregated.exception;
          }
          return;
        }
        if (caught !== undefined) parent.properties.set(ExchangeProperty.ExceptionCaught, caught);
        if (lastFailure) parent.exception = lastFailure;
      };
    },
  };
}

/**
 * The parent takes the aggregated copy's message and properties, all but the per-copy ones
 * (CamelSplitIndex, CamelMulticastIndex, …) whose names start with `perCopyPrefix`.
 */
export function adoptAggregated(parent: Exchange, aggregated: Exchange, perCopyPrefix: string): void {
  parent.message = aggregated.message;
  for (const [k, v] of aggregated.properties) if (!k.startsWith(perCopyPrefix)) parent.properties.set(k, v);
}

function toItems(value: unknown, delimiter: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return value === '' ? [] : value.split(delimiter);
  if (Buffer.isBuffer(value)) return [value];
  if (typeof value === 'object' && Symbol.iterator in value) return [...(value as Iterable<unknown>)];
  return [value];
}
