import type { Exchange } from '../exchange/exchange.ts';
import { compileExpression, compilePredicate } from '../simple/index.ts';

/** A value computed from an exchange: a Simple template such as `${body.id}`, or a function. */
export type ExpressionFn<T = unknown> = (exchange: Exchange) => T | Promise<T>;
export type Expression<T = unknown> = string | ExpressionFn<T>;
/** A condition: a Simple predicate such as `${header.type} == 'order'`, or a function. */
export type Predicate = string | ((exchange: Exchange) => boolean | Promise<boolean>);

export type Evaluate = (exchange: Exchange) => unknown;
export type Test = (exchange: Exchange) => boolean | Promise<boolean>;

/** Compiles now, so a malformed template fails while the route is being defined. */
export function toEvaluator(expression: Expression | unknown): Evaluate {
  if (typeof expression === 'function') return expression as Evaluate;
  if (typeof expression === 'string') return compileExpression(expression);
  return () => expression;
}

export function toTest(predicate: Predicate): Test {
  if (typeof predicate === 'function') return predicate;
  if (typeof predicate === 'string') return compilePredicate(predicate);
  throw new TypeError(`a predicate must be a Simple expression string or a function, got ${typeof predicate}`);
}

/** How an expression reads in messages. */
export function describeExpression(expression: unknown): string {
  if (typeof expression === 'function') return expression.name ? `${expression.name}()` : '(function)';
  if (typeof expression === 'string') return JSON.stringify(expression);
  return String(expression);
}
