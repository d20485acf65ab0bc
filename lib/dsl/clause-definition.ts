import { RouteBuildError } from '../errors.ts';
import { userCallSite } from './callsite.ts';
import type { ErrorHandlerDefinition, ErrorMatcher, OnCompletionOptions, OnExceptionOptions } from './error-handling.ts';
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
