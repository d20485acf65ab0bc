import { ExchangeProperty, type Exchange } from '../../exchange/exchange.ts';
import { describeExpression, toEvaluator, type Expression } from '../expression.ts';
import type { StepDefinition } from '../step.ts';

/** Combines the sub-exchanges into a result, like Camel's AggregationStrategy. */
export type AggregationStrategy = (aggregated: Exchange | undefined, next: Exchange) => Exchange;

export interface SplitOptions {
  /** Separator for string bodies; Camel's default is a comma. */
  delimiter?: string;
  /** Stop at the first failed item instead of finishing the others first. */
  stopOnException?: boolean;
  /** When given, the parent exchange takes the aggregated message after the split. */
  aggregationStrategy?: AggregationStrategy;
}

export interface SplitStep extends StepDefinition {
  readonly children: StepDefinition[];
}

/**
 * The Splitter: one sub-exchange per item, each a copy of the parent with the item as body and
 * CamelSplitIndex/Size/Complete set. As in Camel, a failed item by default does not stop the
 * others; the first failure is put on the parent once all items are done.
 */
export function splitStep(expression: Expression, options: SplitOptions = {}): SplitStep {
  const evaluate = toEvaluator(expression);
  const delimiter = options.delimiter ?? ',';
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
        let firstFailure: Error | undefined;
        for (let index = 0; index < items.length; index += 1) {
          const sub = parent.copy();
          sub.message.body = items[index];
          sub.message.messageId = undefined;
          sub.properties.set(ExchangeProperty.SplitIndex, index);
          sub.properties.set(ExchangeProperty.SplitSize, items.length);
          sub.properties.set(ExchangeProperty.SplitComplete, index === items.length - 1);
          await body(sub);
          if (sub.exception) {
            firstFailure ??= sub.exception;
            if (options.stopOnException) break;
            continue;
          }
          if (options.aggregationStrategy) aggregated = options.aggregationStrategy(aggregated, sub);
        }
        if (aggregated) adoptAggregated(parent, aggregated, 'CamelSplit');
        if (firstFailure) parent.exception = firstFailure;
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
