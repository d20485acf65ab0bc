import { RouteDefinition } from './route-definition.ts';
import { userCallSite } from './callsite.ts';
import { declareErrorHandler, declareOnCompletion, declareOnException, type ClauseDefinition } from './clause-definition.ts';
import { ErrorHandlingScope, type ErrorHandlerDefinition, type ErrorMatcher, type OnCompletionOptions, type OnExceptionOptions } from './error-handling.ts';

/**
 * Route files may call `from(...)` at top level. Those definitions wait here until the CLI (or a
 * program) takes them. The list lives on globalThis so that a route file importing a second copy
 * of the package still reaches the same list.
 */
const KEY = Symbol.for('dromedary.pendingRoutes');
type Holder = { [KEY]?: RouteDefinition[] };

function pending(): RouteDefinition[] {
  const holder = globalThis as Holder;
  return (holder[KEY] ??= []);
}

export function from(uri: string): RouteDefinition {
  const route = new RouteDefinition(uri, userCallSite());
  pending().push(route);
  return route;
}

/** Removes and returns the routes defined with the top-level from() since the last call. */
export function takePendingRoutes(): RouteDefinition[] {
  return pending().splice(0);
}

const ERRORS_KEY = Symbol.for('dromedary.pendingErrorHandling');
type ErrorsHolder = { [ERRORS_KEY]?: ErrorHandlingScope };

function pendingErrorHandling(): ErrorHandlingScope {
  const holder = globalThis as ErrorsHolder;
  return (holder[ERRORS_KEY] ??= new ErrorHandlingScope());
}

/** In a route file: the error handler of every route of the context (like context.errorHandler). */
export function errorHandler(handler: ErrorHandlerDefinition): void {
  declareErrorHandler(pendingErrorHandling(), handler);
}

/** In a route file: an onException clause for every route of the context; chain its steps on the result. */
export function onException(matchers: ErrorMatcher | readonly ErrorMatcher[], options?: OnExceptionOptions): ClauseDefinition {
  return declareOnException(pendingErrorHandling(), matchers, options);
}

/** In a route file: steps run after every exchange of every route of the context. */
export function onCompletion(options?: OnCompletionOptions): ClauseDefinition {
  return declareOnCompletion(pendingErrorHandling(), options);
}

/** Removes and returns the error handling declared at top level since the last call. */
export function takePendingErrorHandling(): ErrorHandlingScope {
  const holder = globalThis as ErrorsHolder;
  const taken = pendingErrorHandling();
  holder[ERRORS_KEY] = new ErrorHandlingScope();
  return taken;
}

/**
 * Forgets every top-level declaration not yet taken (routes and error handling alike), so one route
 * file's leftovers, or a failed file's half, never reach the next file.
 */
export function discardPendingDeclarations(): void {
  takePendingRoutes();
  takePendingErrorHandling();
}
