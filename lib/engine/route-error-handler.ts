import { DEFAULT_REDELIVERY, type ErrorHandlingScope, type RedeliveryPolicy } from '../dsl/error-handling.ts';
import type { RouteCompiler } from '../dsl/step.ts';
import type { Logger } from '../logging/logger.ts';
import type { Producer } from '../spi/component.ts';
import type { Context } from './context.ts';
import { RouteErrorHandler, type CompiledClause } from './error-handling.ts';

/**
 * The error handler of one route, from the route's declarations and then the context's. Returns
 * undefined when neither asks for anything beyond the default (no clause, no dead-letter channel,
 * no redelivery): the route then runs its steps unwrapped, and a failure simply stops it.
 */
export async function buildErrorHandler(
  context: Context,
  route: ErrorHandlingScope,
  compiler: RouteCompiler,
  init: { routeId: string; logger: Logger; stopping: AbortSignal; wrapError: (what: string, err: unknown) => unknown },
): Promise<RouteErrorHandler | undefined> {
  const global = context.errorHandling;
  const handler = route.errorHandler ?? global.errorHandler;
  const policy: RedeliveryPolicy = { ...DEFAULT_REDELIVERY, ...handler?.redelivery };
  const declared = [
    ...route.onExceptions.map((definition) => ({ definition, scope: 'route' })),
    ...global.onExceptions.map((definition) => ({ definition, scope: 'context' })),
  ];
  const needed = declared.length > 0 || handler?.kind === 'deadLetterChannel' || policy.maximumRedeliveries !== 0 || policy.retryWhile !== undefined;
  if (!needed) return undefined;
  const clauses: CompiledClause[] = [];
  for (const { definition, scope } of declared) {
    try {
      // A clause inherits the handler's policy and overrides only what it sets, as in Camel.
      clauses.push({ definition, scope, policy: { ...policy, ...definition.redelivery }, body: await compiler.compile(definition.steps) });
    } catch (err) {
      throw init.wrapError(`${definition.label} (${scope} level)`, err);
    }
  }
  let deadLetter: Producer | undefined;
  if (handler?.kind === 'deadLetterChannel') {
    try {
      deadLetter = await compiler.producer(handler.deadLetterUri!);
    } catch (err) {
      throw init.wrapError(handler.label, err);
    }
  }
  return new RouteErrorHandler({
    routeId: init.routeId,
    logger: init.logger,
    scheduler: context.scheduler,
    stopping: init.stopping,
    handler,
    policy,
    clauses,
    deadLetter,
  });
}
