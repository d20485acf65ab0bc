import { RouteBuildError } from '../errors.ts';
import { userCallSite } from './callsite.ts';
import {
  ERROR_HANDLER_EXPECTED,
  isErrorHandlerDefinition,
  OnCompletionDefinition,
  OnExceptionDefinition,
  type ErrorHandlerDefinition,
  type ErrorHandlingScope,
  type ErrorMatcher,
  type OnCompletionOptions,
  type OnExceptionOptions,
} from './error-handling.ts';
import { RouteDefinition } from './route-definition.ts';

/**
 * The steps of a context-level onException or onCompletion: the same DSL as a route, without a
 * from(). `context.onException(TypeError, { handled: true }).log('bad input: ${exception.message}')`.
 */
export class ClauseDefinition extends RouteDefinition {
  constructor(label: string, source?: string) {
    super('clause:steps', source ?? userCallSite());
    this.routeId(label);
  }

  override errorHandler(_handler: ErrorHandlerDefinition): this {
    throw this.#nested('errorHandler');
  }

  override onException(_matchers: ErrorMatcher | readonly ErrorMatcher[], _options?: OnExceptionOptions): this {
    throw this.#nested('onException');
  }

  override onCompletion(_options?: OnCompletionOptions): this {
    throw this.#nested('onCompletion');
  }

  #nested(verb: string): RouteBuildError {
    return new RouteBuildError(`${this.id}${this.source ? ` at ${this.source}` : ''}: ${verb}() cannot be used inside ${this.id}; declare it on its own`);
  }
}

/*
 * Declarations for a whole context, made on the context itself or at the top level of a route file;
 * both fill an ErrorHandlingScope the same way.
 */

export function declareErrorHandler(scope: ErrorHandlingScope, handler: ErrorHandlerDefinition): void {
  if (!isErrorHandlerDefinition(handler)) throw new RouteBuildError(`errorHandler(): ${ERROR_HANDLER_EXPECTED}`);
  scope.errorHandler = handler;
}

export function declareOnException(scope: ErrorHandlingScope, matchers: ErrorMatcher | readonly ErrorMatcher[], options?: OnExceptionOptions): ClauseDefinition {
  // Built once to check the options and name the clause before its steps exist.
  const steps = new ClauseDefinition(new OnExceptionDefinition(matchers, options).label);
  scope.onExceptions.push(new OnExceptionDefinition(matchers, options, steps.steps));
  return steps;
}

export function declareOnCompletion(scope: ErrorHandlingScope, options?: OnCompletionOptions): ClauseDefinition {
  const steps = new ClauseDefinition(new OnCompletionDefinition(options).label);
  scope.onCompletions.push(new OnCompletionDefinition(options, steps.steps));
  return steps;
}
