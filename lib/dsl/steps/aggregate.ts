import { DromedaryError } from '../../errors.ts';
import { ExchangeProperty, type Exchange } from '../../exchange/exchange.ts';
import { logFailure } from '../../engine/error-handler.ts';
import { formatDuration } from '../../uri/duration.ts';
import { describeExpression, toEvaluator, toTest, type Expression, type Predicate } from '../expression.ts';
import type { StepDefinition } from '../step.ts';
import { PendingWork } from './pending-work.ts';
import type { AggregationStrategy } from './split.ts';
import { checkBooleanOptions, checkPositiveDuration, checkPositiveInteger, checkStepOptions } from './step-options.ts';

export interface AggregateOptions {
  /** Complete a group once it holds this many exchanges. */
  completionSize?: number;
  /** Complete a group once no exchange has joined it for this long (per correlation key): ms or `5s`. */
  completionTimeout?: number | string;
  /** Complete a group when this holds for the aggregated exchange, checked after each exchange joins. */
  completionPredicate?: Predicate;
  /**
   * On route stop, send the incomplete groups on through the block (default true). When false they are
   * dropped, each with an error-level log line naming its key and size.
   */
  forceCompletionOnStop?: boolean;
}

/** How a group came to complete: the value of CamelAggregatedCompletedBy, as Camel names them. */
export type CompletedBy = 'size' | 'timeout' | 'predicate' | 'force';

export interface AggregateStep extends StepDefinition {
  readonly children: StepDefinition[];
}

/** The correlation expression gave no key for an exchange. */
export class InvalidCorrelationKeyError extends DromedaryError {
  constructor(expression: string, exchangeId: string) {
    super('INVALID_CORRELATION_KEY', `Invalid correlation key: ${expression} evaluated to nothing for exchange ${exchangeId}; every exchange must have one`);
  }
}

interface Group {
  readonly key: string;
  aggregated: Exchange;
  size: number;
  timer: NodeJS.Timeout | undefined;
}

const OPTION_NAMES = ['completionSize', 'completionTimeout', 'completionPredicate', 'forceCompletionOnStop'];

/**
 * The Aggregator: exchanges with the same correlation key are combined by the strategy into one
 * exchange, which runs the steps until end() once its group completes (on size, on inactivity timeout,
 * on a predicate, whichever comes first), carrying CamelAggregatedSize, CamelAggregatedCompletedBy and
 * CamelAggregatedCorrelationKey. The incoming exchanges skip the block and go on after end().
 *
 * A group completed by an incoming exchange runs the block on that exchange's turn, so the incoming
 * exchange waits for it; a group completed by its timeout runs on its own, counted as the route's
 * work in flight. On a graceful stop the incomplete groups are completed ('force') once the route's
 * exchanges in flight have joined them and while the routes the block calls still serve, and the
 * stop waits for them. A failure of the aggregated exchange is logged, as it has no caller to return to.
 */
export function aggregateStep(correlation: Expression, strategy: AggregationStrategy, options: AggregateOptions = {}): AggregateStep {
  const evaluate = toEvaluator(correlation);
  const described = describeExpression(correlation);
  if (typeof strategy !== 'function') throw new TypeError('aggregate() needs an aggregation strategy: (aggregated, next) => exchange');
  checkStepOptions(options, OPTION_NAMES);
  checkBooleanOptions(options, ['forceCompletionOnStop']);
  const size = options.completionSize === undefined ? undefined : checkPositiveInteger('completionSize', options.completionSize);
  const timeout = options.completionTimeout === undefined ? undefined : checkPositiveDuration('completionTimeout', options.completionTimeout);
  const predicate = options.completionPredicate === undefined ? undefined : toTest(options.completionPredicate);
  if (size === undefined && timeout === undefined && predicate === undefined) {
    throw new TypeError('aggregate() needs a completion condition: completionSize, completionTimeout and/or completionPredicate');
  }
  const forceOnStop = options.forceCompletionOnStop ?? true;
  const conditions = [size && `size ${size}`, timeout && `timeout ${formatDuration(timeout)}`, predicate && 'predicate'].filter(Boolean);
  const children: StepDefinition[] = [];
  return {
    kind: 'aggregate',
    label: `aggregate(${described}, ${conditions.join(', ')})`,
    children,
    async compile(compiler) {
      const { logger, routeId, context } = compiler;
      const groups = new Map<string, Group>();
      const running = new PendingWork();
      let stopping = false;
      // At the start of a graceful stop, once the exchanges in flight have joined their groups and
      // while the routes the block calls (direct:) still serve: the completions it starts are tracked,
      // so the route's drain waits for them and stops nothing under them.
      compiler.onPrepareShutdown(() => {
        stopping = true;
        const incomplete = [...groups.values()];
        if (!forceOnStop) incomplete.forEach(discard);
        else {
          // One after the other, in the order the groups started, as they would have run had they completed normally.
          track(
            (async () => {
              for (const group of incomplete) await complete(group, 'force');
            })(),
          );
        }
      });
      // Exchanges held up past the shutdown timeout go on when the stop aborts their waits, and may still
      // complete a group ('force'): registered before the block compiles, so this hook runs before the
      // block's own (a wireTap's wait, a toD's cache close) and those steps still work for them.
      compiler.onStop(async () => {
        const left = await running.settle(context.shutdownTimeout);
        if (left > 0) {
          logger.warn(`aggregate(${described}) still had ${left} aggregated exchange(s) running after the ${context.shutdownTimeout}ms shutdown timeout`, {
            route: routeId,
          });
        }
      });
      const body = await compiler.compile(children);

      // Completions off an incoming exchange's turn have no caller to fail: a bug there must still be seen.
      const track = (work: Promise<void>) => {
        const reported = work.catch((err: unknown) =>
          logger.error(`aggregate(${described}) failed to complete a group: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, { route: routeId }),
        );
        running.add(reported);
        compiler.track(reported);
      };
      // A group completes or is discarded once: its size, predicate, timer and the stop may race,
      // one another across an await. False when the group is no longer the current one of its key.
      const take = (group: Group): boolean => {
        if (groups.get(group.key) !== group) return false;
        clearTimeout(group.timer);
        groups.delete(group.key);
        return true;
      };
      const discard = (group: Group) => {
        if (!take(group)) return;
        logger.error(
          `aggregate(${described}) discarded the incomplete group with correlation key ${group.key} (${group.size} exchange(s)) ` +
            'because the route stopped and forceCompletionOnStop is false',
          { route: routeId, correlationKey: group.key, size: group.size },
        );
      };
      async function complete(group: Group, by: CompletedBy): Promise<void> {
        if (!take(group)) return;
        const aggregated = group.aggregated;
        aggregated.properties.set(ExchangeProperty.AggregatedSize, group.size);
        aggregated.properties.set(ExchangeProperty.AggregatedCompletedBy, by);
        aggregated.properties.set(ExchangeProperty.AggregatedCorrelationKey, group.key);
        await body(aggregated);
        if (aggregated.exception !== undefined) logFailure(logger, routeId, aggregated);
      }

      return async (incoming) => {
        const value = await evaluate(incoming);
        if (value === undefined || value === null || value === '') throw new InvalidCorrelationKeyError(described, incoming.id);
        const key = String(value);
        let group = groups.get(key);
        // A strategy that throws leaves no trace: the group is made only once it has an aggregated exchange.
        const aggregated = strategy(group?.aggregated, incoming.copy());
        if (!aggregated) throw new TypeError(`aggregate(${described}): the aggregation strategy returned nothing; it must return the aggregated exchange`);
        if (!group) {
          group = { key, aggregated, size: 0, timer: undefined };
          groups.set(key, group);
        }
        group.aggregated = aggregated;
        group.size += 1;
        let by: CompletedBy | undefined;
        if (size !== undefined && group.size >= size) by = 'size';
        else if (predicate !== undefined && (await predicate(aggregated))) by = 'predicate';
        else if (stopping) {
          // Joined after the forced completions began (a call into a direct: route that was still serving):
          // nothing would complete this group later.
          if (!forceOnStop) return discard(group);
          by = 'force';
        }
        if (by !== undefined) {
          await complete(group, by);
          return;
        }
        // Not for a group another exchange completed while this one awaited the predicate: nothing would clear it.
        if (timeout !== undefined && !stopping && groups.get(key) === group) {
          clearTimeout(group.timer);
          const waiting = group;
          waiting.timer = setTimeout(() => {
            track(complete(waiting, 'timeout'));
          }, timeout);
        }
      };
    },
  };
}
