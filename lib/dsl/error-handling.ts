import { RouteBuildError } from '../errors.ts';
import type { Exchange } from '../exchange/exchange.ts';
import { parseDuration } from '../uri/duration.ts';
import { maskUri } from '../uri/mask.ts';
import { checkUriSyntax } from '../uri/parse.ts';
import { toTest, type Predicate, type Test } from './expression.ts';
import type { StepDefinition } from './step.ts';

/** An error class: `TypeError`, `AmqpAuthError`, or a user's own subclass of Error. */
export type ErrorType = abstract new (...args: never[]) => Error;
/** A condition on the error (and the exchange) for failures that classes cannot tell apart. */
export type ErrorCondition = (error: Error, exchange: Exchange) => boolean;
/** What onException() and doCatch() match: an error class, or a condition. */
export type ErrorMatcher = ErrorType | ErrorCondition;

export function isErrorType(matcher: unknown): matcher is ErrorType {
  return typeof matcher === 'function' && (matcher === Error || (matcher as { prototype?: unknown }).prototype instanceof Error);
}

/** Redelivery options as written; see `RedeliveryPolicy` for their meaning once resolved. */
export interface RedeliveryOptions {
  /** Redeliveries after the first attempt; 0 (default) none, -1 forever. */
  maximumRedeliveries?: number;
  /** Wait before the first redelivery: milliseconds or a duration such as `2s`. Default 1 s. */
  redeliveryDelay?: number | string;
  /** Multiply the wait by backOffMultiplier after each redelivery. Defaults to true when backOffMultiplier is given. */
  useExponentialBackOff?: boolean;
  /** Default 2. */
  backOffMultiplier?: number;
  /** Upper bound of any wait. Default 60 s. */
  maximumRedeliveryDelay?: number | string;
  /** Randomises each wait by ± this fraction of it (Camel's collision avoidance; 0.15 is Camel's factor). Default 0. */
  jitter?: number;
  /** Redeliver only errors of these types (or with such a cause); others are exhausted at once. */
  retryOn?: ErrorType[];
  /** Redeliver while this predicate holds, instead of counting to maximumRedeliveries (Camel's retryWhile). */
  retryWhile?: Predicate;
}

/** A redelivery policy with every value resolved. */
export interface RedeliveryPolicy {
  readonly maximumRedeliveries: number;
  readonly redeliveryDelay: number;
  readonly useExponentialBackOff: boolean;
  readonly backOffMultiplier: number;
  readonly maximumRedeliveryDelay: number;
  readonly jitter: number;
  readonly retryOn: readonly ErrorType[] | undefined;
  readonly retryWhile: Test | undefined;
}

/** Camel's defaults. */
export const DEFAULT_REDELIVERY: RedeliveryPolicy = {
  maximumRedeliveries: 0,
  redeliveryDelay: 1000,
  useExponentialBackOff: false,
  backOffMultiplier: 2,
  maximumRedeliveryDelay: 60_000,
  jitter: 0,
  retryOn: undefined,
  retryWhile: undefined,
};

const REDELIVERY_KEYS = [
  'maximumRedeliveries',
  'redeliveryDelay',
  'useExponentialBackOff',
  'backOffMultiplier',
  'maximumRedeliveryDelay',
  'jitter',
  'retryOn',
  'retryWhile',
] as const;

function checkKeys(what: string, options: object, valid: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!valid.includes(key)) throw new RouteBuildError(`${what}: unknown option "${key}". Valid options: ${valid.join(', ')}`);
  }
}

function duration(what: string, key: string, value: number | string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 0) throw new RouteBuildError(`${what}: ${key} ${JSON.stringify(value)} is not a duration: use milliseconds or units such as 500ms, 5s, 1m`);
  return ms;
}

function number(what: string, key: string, value: unknown, check: (n: number) => boolean, expect: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
    throw new RouteBuildError(`${what}: ${key} must be ${expect}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The options given, checked and resolved; keys not given stay absent, so a clause can override a handler's policy field by field. */
export function resolveRedelivery(what: string, options: RedeliveryOptions): Partial<RedeliveryPolicy> {
  const out: { -readonly [K in keyof RedeliveryPolicy]?: RedeliveryPolicy[K] } = {};
  const o = options;
  if (o.maximumRedeliveries !== undefined) {
    out.maximumRedeliveries = number(what, 'maximumRedeliveries', o.maximumRedeliveries, (n) => Number.isInteger(n) && n >= -1, 'an integer ≥ -1 (-1 redelivers forever)');
  }
  if (o.redeliveryDelay !== undefined) out.redeliveryDelay = duration(what, 'redeliveryDelay', o.redeliveryDelay);
  if (o.maximumRedeliveryDelay !== undefined) out.maximumRedeliveryDelay = duration(what, 'maximumRedeliveryDelay', o.maximumRedeliveryDelay);
  if (o.backOffMultiplier !== undefined) {
    out.backOffMultiplier = number(what, 'backOffMultiplier', o.backOffMultiplier, (n) => n >= 1, 'a number ≥ 1');
    out.useExponentialBackOff = true;
  }
  if (o.useExponentialBackOff !== undefined) out.useExponentialBackOff = Boolean(o.useExponentialBackOff);
  if (o.jitter !== undefined) out.jitter = number(what, 'jitter', o.jitter, (n) => n >= 0 && n <= 1, 'a fraction between 0 and 1');
  if (o.retryOn !== undefined) {
    const list = Array.isArray(o.retryOn) ? o.retryOn : [o.retryOn];
    for (const t of list) if (!isErrorType(t)) throw new RouteBuildError(`${what}: retryOn takes error classes (TypeError, a subclass of Error), got ${String(t)}`);
    out.retryOn = list;
  }
  if (o.retryWhile !== undefined) out.retryWhile = toTest(o.retryWhile);
  return out;
}

/** The matchers of onException() or doCatch(), checked: at least one, each a class or a function. */
export function toMatchers(what: string, matchers: ErrorMatcher | readonly ErrorMatcher[]): ErrorMatcher[] {
  const list = Array.isArray(matchers) ? [...matchers] : [matchers as ErrorMatcher];
  if (list.length === 0) throw new RouteBuildError(`${what}: give at least one error class (TypeError, Error) or a condition (error, exchange) => boolean`);
  for (const m of list) {
    if (typeof m !== 'function') throw new RouteBuildError(`${what}: ${String(m)} is neither an error class nor a function (error, exchange) => boolean`);
  }
  return list;
}

export function describeMatchers(matchers: readonly ErrorMatcher[]): string {
  return matchers.map((m) => (isErrorType(m) ? m.name : m.name ? `${m.name}()` : '(condition)')).join(', ');
}

export interface OnExceptionOptions extends RedeliveryOptions {
  /** The failure is dealt with: the exchange is no longer failed, and the route stops routing it. */
  handled?: boolean | Predicate;
  /** The failure is ignored: the route goes on with the step after the one that failed. */
  continued?: boolean | Predicate;
  /** The clause's steps see the message as it entered the route, not as the failed step left it. */
  useOriginalMessage?: boolean;
  /** The clause applies only when this also holds (Camel's onWhen). */
  onWhen?: Predicate;
}

const ON_EXCEPTION_KEYS = [...REDELIVERY_KEYS, 'handled', 'continued', 'useOriginalMessage', 'onWhen'];

function toFlag(value: boolean | Predicate | undefined): Test | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return () => true;
  return toTest(value);
}

/** An onException clause: which failures it takes, what it does with them, and its own steps. */
export class OnExceptionDefinition {
  readonly matchers: readonly ErrorMatcher[];
  readonly label: string;
  readonly redelivery: Partial<RedeliveryPolicy>;
  readonly handled: Test | undefined;
  readonly continued: Test | undefined;
  readonly useOriginalMessage: boolean;
  readonly onWhen: Test | undefined;
  readonly steps: StepDefinition[];

  constructor(matchers: ErrorMatcher | readonly ErrorMatcher[], options: OnExceptionOptions = {}, steps: StepDefinition[] = []) {
    const list = toMatchers('onException()', matchers);
    this.matchers = list;
    this.label = `onException(${describeMatchers(list)})`;
    if (typeof options !== 'object' || options === null) throw new RouteBuildError(`${this.label}: options must be an object`);
    checkKeys(this.label, options, ON_EXCEPTION_KEYS);
    if (options.handled !== undefined && options.handled !== false && options.continued !== undefined && options.continued !== false) {
      throw new RouteBuildError(`${this.label}: handled and continued exclude each other: handled stops the route, continued resumes it`);
    }
    this.redelivery = resolveRedelivery(this.label, options);
    this.handled = toFlag(options.handled);
    this.continued = toFlag(options.continued);
    this.useOriginalMessage = options.useOriginalMessage === true;
    this.onWhen = options.onWhen === undefined ? undefined : toTest(options.onWhen);
    this.steps = steps;
  }
}

export interface DeadLetterOptions extends RedeliveryOptions {
  /** Send the message as it entered the route, not as the failed step left it. */
  useOriginalMessage?: boolean;
}

/** What happens to a failure no onException clause takes: Camel's errorHandler(...). */
export interface ErrorHandlerDefinition {
  readonly kind: 'default' | 'deadLetterChannel';
  readonly label: string;
  readonly deadLetterUri: string | undefined;
  readonly redelivery: Partial<RedeliveryPolicy>;
  readonly useOriginalMessage: boolean;
}

/** What errorHandler() asks for when given anything else (often deadLetterChannel itself, not called). */
export const ERROR_HANDLER_EXPECTED = 'give defaultErrorHandler({ ... }) or deadLetterChannel(uri, { ... })';

export function isErrorHandlerDefinition(value: unknown): value is ErrorHandlerDefinition {
  const kind = (value as { kind?: unknown } | null | undefined)?.kind;
  return kind === 'default' || kind === 'deadLetterChannel';
}

/** Logs the failure and leaves the exchange failed, after the redeliveries, if any. */
export function defaultErrorHandler(options: RedeliveryOptions = {}): ErrorHandlerDefinition {
  const label = 'defaultErrorHandler()';
  checkKeys(label, options, REDELIVERY_KEYS);
  return { kind: 'default', label, deadLetterUri: undefined, redelivery: resolveRedelivery(label, options), useOriginalMessage: false };
}

/** Sends the failed exchange to an endpoint, with the error's message and type in headers; the exchange is then handled. */
export function deadLetterChannel(uri: string, options: DeadLetterOptions = {}): ErrorHandlerDefinition {
  if (typeof uri !== 'string' || uri === '') throw new RouteBuildError('deadLetterChannel(uri): give the URI of the dead-letter endpoint, e.g. amqp:queue:orders-dlq');
  checkUriSyntax(uri);
  const label = `deadLetterChannel(${maskUri(uri)})`;
  checkKeys(label, options, [...REDELIVERY_KEYS, 'useOriginalMessage']);
  const { useOriginalMessage, ...redelivery } = options;
  return { kind: 'deadLetterChannel', label, deadLetterUri: uri, redelivery: resolveRedelivery(label, redelivery), useOriginalMessage: useOriginalMessage === true };
}

export interface OnCompletionOptions {
  /** Run only when the exchange completed without failure (handled failures count as success). */
  onCompleteOnly?: boolean;
  /** Run only when the exchange failed. */
  onFailureOnly?: boolean;
  /** Run only when this holds. */
  onWhen?: Predicate;
}

/** Steps run on a copy of the exchange once the route is done with it. */
export class OnCompletionDefinition {
  readonly onCompleteOnly: boolean;
  readonly onFailureOnly: boolean;
  readonly onWhen: Test | undefined;
  readonly steps: StepDefinition[];
  readonly label: string;

  constructor(options: OnCompletionOptions = {}, steps: StepDefinition[] = []) {
    checkKeys('onCompletion()', options, ['onCompleteOnly', 'onFailureOnly', 'onWhen']);
    if (options.onCompleteOnly && options.onFailureOnly) {
      throw new RouteBuildError('onCompletion(): onCompleteOnly and onFailureOnly exclude each other; give neither to run after every exchange');
    }
    this.onCompleteOnly = options.onCompleteOnly === true;
    this.onFailureOnly = options.onFailureOnly === true;
    this.onWhen = options.onWhen === undefined ? undefined : toTest(options.onWhen);
    this.steps = steps;
    this.label = this.onCompleteOnly ? 'onCompletion(onCompleteOnly)' : this.onFailureOnly ? 'onCompletion(onFailureOnly)' : 'onCompletion()';
  }
}

/** The error handling declared at one level: a route, or the whole context. */
export class ErrorHandlingScope {
  errorHandler: ErrorHandlerDefinition | undefined;
  readonly onExceptions: OnExceptionDefinition[] = [];
  readonly onCompletions: OnCompletionDefinition[] = [];

  /** Takes another scope's declarations (route files' top-level ones into the context's). */
  adopt(other: ErrorHandlingScope): void {
    if (other.errorHandler) this.errorHandler = other.errorHandler;
    this.onExceptions.push(...other.onExceptions);
    this.onCompletions.push(...other.onCompletions);
  }
}
