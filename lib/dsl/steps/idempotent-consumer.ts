import { DromedaryError } from '../../errors.ts';
import { ExchangeProperty, type Exchange } from '../../exchange/exchange.ts';
import { describeExpression, toEvaluator, type Expression } from '../expression.ts';
import type { StepDefinition } from '../step.ts';
import { checkBooleanOptions, checkStepOptions } from './step-options.ts';
import { MemoryIdempotentRepository, type IdempotentRepository } from './idempotent-repository.ts';

export interface IdempotentConsumerOptions {
  /** Where keys are kept; by default an in-memory LRU of 1000 keys, private to this step. */
  repository?: IdempotentRepository;
  /**
   * Add the key before the block runs (default true), so a concurrent duplicate is caught while
   * the first is still being processed. When false, the key is added only once the block succeeds.
   */
  eager?: boolean;
  /** Forget the key when the block fails, so a redelivery is processed (default true). */
  removeOnFailure?: boolean;
  /** Skip the block for duplicates (default true); when false they run it, marked CamelDuplicateMessage. */
  skipDuplicate?: boolean;
}

export interface IdempotentConsumerStep extends StepDefinition {
  readonly children: StepDefinition[];
  readonly repository: IdempotentRepository;
}

/** The key expression gave nothing to remember the message by. */
export class NoMessageIdError extends DromedaryError {
  constructor(expression: string) {
    super('NO_MESSAGE_ID', `No message id: the idempotent consumer's key ${expression} evaluated to nothing; every message needs a key`);
  }
}

const OPTION_NAMES = ['repository', 'eager', 'removeOnFailure', 'skipDuplicate'];

/**
 * The Idempotent Consumer: the steps until end() run once per key. A duplicate is marked with
 * CamelDuplicateMessage and skips the block; it is not a failure, so the route goes on after end().
 */
export function idempotentConsumerStep(keyExpression: Expression, options: IdempotentConsumerOptions = {}): IdempotentConsumerStep {
  checkOptions(options);
  const evaluate = toEvaluator(keyExpression);
  const described = describeExpression(keyExpression);
  const repository = options.repository ?? new MemoryIdempotentRepository();
  const eager = options.eager ?? true;
  const removeOnFailure = options.removeOnFailure ?? true;
  const skipDuplicate = options.skipDuplicate ?? true;
  const children: StepDefinition[] = [];
  return {
    kind: 'idempotentConsumer',
    label: `idempotentConsumer(${described})`,
    children,
    repository,
    async compile(compiler) {
      const body = await compiler.compile(children);
      const forget = async (key: string, exchange: Exchange) => {
        try {
          await repository.remove(key);
        } catch (err) {
          // The exchange's own failure matters more than this one; keep it and say what happened.
          compiler.logger.warn(`idempotentConsumer could not remove key ${key} of failed exchange ${exchange.id}: ${String(err)}`, {
            route: compiler.routeId,
          });
        }
      };
      return async (exchange) => {
        const value = await evaluate(exchange);
        if (value === undefined || value === null || value === '') throw new NoMessageIdError(described);
        const key = String(value);
        const duplicate = eager ? !(await repository.add(key)) : await repository.contains(key);
        if (duplicate) {
          exchange.properties.set(ExchangeProperty.DuplicateMessage, true);
          if (!skipDuplicate) await body(exchange);
          return;
        }
        await body(exchange);
        if (exchange.exception !== undefined) {
          if (eager && removeOnFailure) await forget(key, exchange);
        } else if (eager) await repository.confirm(key);
        else await repository.add(key);
      };
    },
  };
}

function checkOptions(options: IdempotentConsumerOptions): void {
  checkStepOptions(options, OPTION_NAMES);
  checkBooleanOptions(options, ['eager', 'removeOnFailure', 'skipDuplicate']);
  const repo = options.repository;
  if (repo !== undefined) {
    const missing = ['add', 'contains', 'remove', 'confirm'].filter((m) => typeof (repo as unknown as Record<string, unknown>)[m] !== 'function');
    if (missing.length > 0) throw new TypeError(`the repository lacks ${missing.join(', ')}(); it must implement IdempotentRepository`);
  }
}
