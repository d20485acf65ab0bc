import { RouteBuildError } from '../../errors.ts';
import { ExchangeProperty, type Exchange } from '../../exchange/exchange.ts';
import type { Processor } from '../../spi/processor.ts';
import type { StepDefinition } from '../step.ts';
import { adoptAggregated, type AggregationStrategy } from './split.ts';
import { checkBooleanOptions, checkStepOptions } from './step-options.ts';

export interface MulticastOptions {
  /** Send to every destination at once instead of one after the other. */
  parallelProcessing?: boolean;
  /**
   * Combines the replies, in the order the destinations are written, failed ones included (`next.exception`
   * set), as in a split: the original takes the aggregated exchange's message and exception, so a strategy
   * that returns an exchange without the exception has remedied the failure. By default the last successful
   * reply wins and the first failure fails the original.
   */
  aggregationStrategy?: AggregationStrategy;
  /** Do not send to the remaining destinations once one fails (sequential mode). */
  stopOnException?: boolean;
}

export interface MulticastStep extends StepDefinition {
  /** Each step is one destination. */
  readonly children: StepDefinition[];
}

const OPTION_NAMES = ['parallelProcessing', 'aggregationStrategy', 'stopOnException'];

/**
 * The Multicast: each destination (each step of the block) gets its own copy of the exchange, with
 * CamelMulticastIndex and CamelMulticastComplete set. Afterwards the original takes the aggregated
 * reply, or by default the last successful one, as in Camel. A failed destination does not stop the
 * others unless stopOnException is set. A strategy sees the failed replies too and decides (Camel's
 * strategies do); without one, the first failure in written order fails the original.
 */
export function multicastStep(options: MulticastOptions = {}): MulticastStep {
  checkStepOptions(options, OPTION_NAMES);
  checkBooleanOptions(options, ['parallelProcessing', 'stopOnException']);
  if (options.aggregationStrategy !== undefined && typeof options.aggregationStrategy !== 'function') {
    throw new TypeError('aggregationStrategy must be a function (aggregated, next) => exchange');
  }
  const children: StepDefinition[] = [];
  const strategy = options.aggregationStrategy;
  return {
    kind: 'multicast',
    label: `multicast(${options.parallelProcessing ? 'parallel' : 'sequential'})`,
    children,
    async compile(compiler) {
      if (children.length === 0) {
        throw new RouteBuildError('multicast() has no destinations: add steps such as to(uri) before its end()');
      }
      const destinations: Processor[] = [];
      for (const child of children) destinations.push(await compiler.compile([child]));
      const copyFor = (original: Exchange, index: number): Exchange => {
        const copy = original.copy();
        copy.properties.set(ExchangeProperty.MulticastIndex, index);
        copy.properties.set(ExchangeProperty.MulticastComplete, index === destinations.length - 1);
        return copy;
      };
      const sequential = async (original: Exchange): Promise<Exchange[]> => {
        const done: Exchange[] = [];
        for (let index = 0; index < destinations.length; index += 1) {
          const copy = copyFor(original, index);
          await destinations[index]!(copy);
          done.push(copy);
          if (copy.exception !== undefined && options.stopOnException) break;
        }
        return done;
      };
      const parallel = async (original: Exchange): Promise<Exchange[]> => {
        const copies = destinations.map((_, index) => copyFor(original, index));
        await Promise.all(copies.map((copy, index) => destinations[index]!(copy)));
        return copies;
      };
      const send = options.parallelProcessing ? parallel : sequential;
      return async (original) => {
        const replies = await send(original);
        if (strategy) {
          let aggregated: Exchange | undefined;
          for (const reply of replies) aggregated = strategy(aggregated, reply);
          if (aggregated) {
            adoptAggregated(original, aggregated, 'CamelMulticast');
            original.exception = aggregated.exception;
          }
          return;
        }
        const lastSuccess = replies.findLast((reply) => reply.exception === undefined);
        if (lastSuccess) adoptAggregated(original, lastSuccess, 'CamelMulticast');
        const firstFailure = replies.find((reply) => reply.exception !== undefined);
        if (firstFailure) original.exception = firstFailure.exception;
      };
    },
  };
}
