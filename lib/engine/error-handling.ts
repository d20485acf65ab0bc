import { DromedaryError, LeadershipLostError } from '../errors.ts';
import { ExchangeProperty, type Exchange } from '../exchange/exchange.ts';
import type { Message } from '../exchange/message.ts';
import type { Logger } from '../logging/logger.ts';
import type { Producer } from '../spi/component.ts';
import { isPromise, type Processor } from '../spi/processor.ts';
import { maskSecrets } from '../uri/mask.ts';
import {
  isErrorType,
  type ErrorHandlerDefinition,
  type ErrorMatcher,
  type OnCompletionDefinition,
  type OnExceptionDefinition,
  type RedeliveryPolicy,
} from '../dsl/error-handling.ts';
import type { Test } from '../dsl/expression.ts';
import { guard, termEnded, toError } from './pipeline.ts';
import { abortableWait, type Scheduler } from './scheduler.ts';

/** Headers the error handler sets, after Camel's. */
export const ErrorHeader = {
  Redelivered: 'CamelRedelivered',
  RedeliveryCounter: 'CamelRedeliveryCounter',
  RedeliveryMaxCounter: 'CamelRedeliveryMaxCounter',
  /**
   * On the message sent to a dead-letter endpoint: the failure's message, its type (Error.name) and
   * the route. Not Camel* names, which transports keep to themselves: these travel, as AMQP headers
   * for instance, under the names Spring AMQP's republishing recoverer uses.
   */
  ExceptionMessage: 'x-exception-message',
  ExceptionType: 'x-exception-type',
  FailureRouteId: 'x-failure-route-id',
} as const;

/** Properties the error handler sets beside ExchangeProperty.ExceptionCaught and FailureRouteId. */
export const ErrorProperty = {
  /** True once an onException(handled) clause or a dead-letter channel dealt with the failure. */
  ErrorHandlerHandled: 'CamelErrorHandlerHandled',
  /** On an onCompletion copy: the id of the exchange it was copied from. */
  CorrelationId: 'CamelCorrelationId',
  /** Marks an onCompletion copy: routes it reaches do not run their own onCompletion for it, so completions cannot recurse. */
  OnCompletion: 'CamelOnCompletion',
} as const;

/**
 * Errors an error handler has finished with. A failure leaves the step that raised it through each
 * enclosing block (a filter, a split, a direct: call into another route); every one of those is a
 * step with its own channel, and none may redeliver or handle the failure a second time.
 */
const exhausted = new WeakSet<Error>();

export function markExhausted(error: Error): void {
  exhausted.add(error);
}

export function isExhausted(error: Error): boolean {
  return exhausted.has(error);
}

/** Put on an exchange whose redelivery stopped because the route is stopping or leadership was lost. */
export class RedeliveryAbortedError extends DromedaryError {
  constructor(routeId: string, exchangeId: string, attempts: number, reason: string, cause: Error) {
    super(
      'REDELIVERY_ABORTED',
      `Redelivery of exchange ${exchangeId} on route ${routeId} stopped after ${attempts} attempt(s): ${reason}. Last error: ${cause.name}: ${cause.message}`,
      { cause },
    );
  }
}

/** Delivery attempts made so far: the first, plus the redeliveries counted in the header. */
export function deliveryAttempts(exchange: Exchange): number {
  return Number(exchange.message.headers.get(ErrorHeader.RedeliveryCounter) ?? 0) + 1;
}

/** The nominal wait before the next redelivery, given the previous one (0 before the first). */
export function nextRedeliveryDelay(policy: RedeliveryPolicy, previous: number): number {
  const delay = previous > 0 && policy.useExponentialBackOff ? previous * policy.backOffMultiplier : policy.redeliveryDelay;
  return policy.maximumRedeliveryDelay > 0 ? Math.min(delay, policy.maximumRedeliveryDelay) : delay;
}

/** The nominal wait moved by up to ± jitter of itself, so that many failed exchanges do not retry in lockstep. */
export function applyJitter(delay: number, jitter: number, random: () => number = Math.random): number {
  if (jitter <= 0 || delay <= 0) return delay;
  return Math.max(0, Math.round(delay + delay * jitter * (random() * 2 - 1)));
}

/** A copy that later steps cannot change: headers are copied, and the body too when it is mutable. */
export function snapshotMessage(message: Message): Message {
  const copy = message.copy();
  const body = message.body;
  if (Buffer.isBuffer(body)) copy.body = Buffer.from(body);
  else if (typeof body === 'object' && body !== null) {
    try {
      copy.body = structuredClone(body);
    } catch {
      // Not cloneable (functions, class instances with private state): keep the reference.
    }
  }
  return copy;
}

/** The error and its causes, innermost first: Camel matches onException from the root cause outwards. */
function causesInnermostFirst(error: Error): Error[] {
  const chain: Error[] = [];
  let current: unknown = error;
  while (current instanceof Error && chain.length < 16 && !chain.includes(current)) {
    chain.push(current);
    current = current.cause;
  }
  return chain.reverse();
}

/** How many prototype steps separate the error's class from the type: 0 for an exact match. */
function inheritanceDistance(error: Error, type: { prototype: unknown }): number {
  let distance = 0;
  let proto: unknown = Object.getPrototypeOf(error);
  while (proto !== null && proto !== type.prototype) {
    proto = Object.getPrototypeOf(proto);
    distance += 1;
  }
  return distance;
}

/** The closest distance at which any matcher takes the error; a condition counts as a match on Error. */
function matchDistance(matchers: readonly ErrorMatcher[], error: Error, exchange: Exchange): number {
  let best = Infinity;
  for (const matcher of matchers) {
    if (isErrorType(matcher)) {
      if (error instanceof matcher) best = Math.min(best, inheritanceDistance(error, matcher));
    } else {
      let taken = false;
      try {
        taken = matcher(error, exchange) === true;
      } catch {
        taken = false;
      }
      if (taken) best = Math.min(best, inheritanceDistance(error, Error));
    }
  }
  return best;
}

/** Whether any matcher takes the error or one of its causes: doCatch tries its clauses in order with it. */
export function matchesAny(matchers: readonly ErrorMatcher[], error: Error, exchange: Exchange): boolean {
  return causesInnermostFirst(error).some((e) => matchDistance(matchers, e, exchange) < Infinity);
}

async function holds(test: Test, exchange: Exchange): Promise<boolean> {
  return (await test(exchange)) === true;
}

export interface CompiledClause {
  readonly definition: OnExceptionDefinition;
  readonly policy: RedeliveryPolicy;
  readonly body: Processor;
  /** 'route' or 'context', for messages. */
  readonly scope: string;
}

export interface RouteErrorHandlerInit {
  routeId: string;
  logger: Logger;
  scheduler: Scheduler;
  /** Aborted when the route stops taking exchanges: redelivery waits end at once. */
  stopping: AbortSignal;
  handler: ErrorHandlerDefinition | undefined;
  policy: RedeliveryPolicy;
  /** Route clauses first, then the context's: on equal match, the route's wins. */
  clauses: readonly CompiledClause[];
  deadLetter: Producer | undefined;
  random?: () => number;
}

/**
 * Camel's error handler for one route. Each step is wrapped in a channel; when the step fails, the
 * channel picks the onException clause that fits best, redelivers that step (not the whole route)
 * as its policy says, and when redeliveries are exhausted runs the clause, the dead-letter channel,
 * or leaves the exchange failed for the default handler to log. Failures inside the clause's steps
 * or the dead-letter endpoint are not handled again: they are logged and fail the exchange.
 */
export class RouteErrorHandler {
  readonly #init: RouteErrorHandlerInit;
  readonly #random: () => number;
  /** Whether exchanges must keep a snapshot of the message they entered the route with. */
  readonly needsOriginalMessage: boolean;

  constructor(init: RouteErrorHandlerInit) {
    this.#init = init;
    this.#random = init.random ?? Math.random;
    this.needsOriginalMessage = init.handler?.useOriginalMessage === true || init.clauses.some((c) => c.definition.useOriginalMessage);
  }

  /** Wraps a compiled step. The success path costs a try and one comparison. */
  channel(step: Processor, label: string): Processor {
    const guarded = guard(step);
    return (exchange) => {
      const result = guarded(exchange);
      if (isPromise(result)) return result.then(() => (exchange.exception === undefined ? undefined : this.#failed(exchange, guarded, label)));
      if (exchange.exception !== undefined) return this.#failed(exchange, guarded, label);
    };
  }

  /** `step` is guarded: it records its failure on the exchange and never throws. */
  async #failed(exchange: Exchange, step: Processor, label: string): Promise<void> {
    let error = exchange.exception!;
    // Losing leadership is final: a redelivery, an onException clause or a dead-letter channel
    // would do the term's work on a member that no longer leads, and a handled exchange would be
    // acked instead of left for the new leader.
    if (isExhausted(error) || error instanceof LeadershipLostError) return;
    let clause = await this.#match(error, exchange);
    let policy = clause?.policy ?? this.#init.policy;
    let attempt = 0;
    let nominal = 0;
    while (await this.#shouldRedeliver(policy, attempt, error, exchange)) {
      if (this.#fenced(exchange, 'was not redelivered', error)) return;
      nominal = nextRedeliveryDelay(policy, nominal);
      const wait = applyJitter(nominal, policy.jitter, this.#random);
      const abortedBy = await abortableWait(this.#init.scheduler, wait, [this.#init.stopping, exchange.signal]);
      if (abortedBy) {
        const reason = abortedBy === this.#init.stopping ? 'the route is stopping' : describeReason(abortedBy.reason);
        const aborted = new RedeliveryAbortedError(this.#init.routeId, exchange.id, attempt + 1, reason, error);
        markExhausted(aborted);
        exchange.exception = aborted;
        this.#init.logger.warn(maskSecrets(aborted.message), { route: this.#init.routeId, exchangeId: exchange.id });
        return;
      }
      if (this.#fenced(exchange, 'was not redelivered', error)) return;
      attempt += 1;
      exchange.exception = undefined;
      exchange.message.headers.set(ErrorHeader.Redelivered, true);
      exchange.message.headers.set(ErrorHeader.RedeliveryCounter, attempt);
      if (policy.maximumRedeliveries >= 0 && policy.retryWhile === undefined) {
        exchange.message.headers.set(ErrorHeader.RedeliveryMaxCounter, policy.maximumRedeliveries);
      }
      this.#init.logger.debug(
        maskSecrets(`Redelivery #${attempt} of exchange ${exchange.id} on route ${this.#init.routeId} at ${label} after ${wait}ms; it failed with ${error.name}: ${error.message}`),
      );
      await step(exchange);
      if (exchange.exception === undefined) return;
      error = exchange.exception;
      if (isExhausted(error)) return;
      clause = await this.#match(error, exchange);
      policy = clause?.policy ?? this.#init.policy;
    }
    if (this.#fenced(exchange, 'was not handed to the error handler', error)) return;
    await this.#exhausted(exchange, error, clause);
  }

  /** A redelivery or the handling of a failure is a step too: not once the exchange's leadership term has ended. */
  #fenced(exchange: Exchange, what: string, error: Error): boolean {
    if (exchange.term === undefined) return false;
    const fenced = termEnded(exchange, what, error);
    if (fenced) exchange.exception = fenced;
    return fenced !== undefined;
  }

  async #shouldRedeliver(policy: RedeliveryPolicy, attempt: number, error: Error, exchange: Exchange): Promise<boolean> {
    if (policy.retryOn && !causesInnermostFirst(error).some((e) => policy.retryOn!.some((type) => e instanceof type))) return false;
    if (policy.retryWhile) {
      try {
        return await holds(policy.retryWhile, exchange);
      } catch (err) {
        this.#init.logger.warn(maskSecrets(`retryWhile of route ${this.#init.routeId} failed (${toError(err).message}); not redelivering exchange ${exchange.id}`));
        return false;
      }
    }
    return policy.maximumRedeliveries < 0 || attempt < policy.maximumRedeliveries;
  }

  async #match(error: Error, exchange: Exchange): Promise<CompiledClause | undefined> {
    const clauses = this.#init.clauses;
    if (clauses.length === 0) return undefined;
    for (const candidate of causesInnermostFirst(error)) {
      let best: CompiledClause | undefined;
      let bestDistance = Infinity;
      for (const clause of clauses) {
        const distance = matchDistance(clause.definition.matchers, candidate, exchange);
        if (distance >= bestDistance) continue;
        if (clause.definition.onWhen && !(await this.#safely(clause.definition.onWhen, exchange, `onWhen of ${clause.definition.label}`))) continue;
        best = clause;
        bestDistance = distance;
      }
      if (best) return best;
    }
    return undefined;
  }

  async #safely(test: Test, exchange: Exchange, what: string): Promise<boolean> {
    try {
      return await holds(test, exchange);
    } catch (err) {
      this.#init.logger.warn(maskSecrets(`${what} on route ${this.#init.routeId} failed for exchange ${exchange.id}: ${toError(err).message}; taken as false`));
      return false;
    }
  }

  async #exhausted(exchange: Exchange, error: Error, clause: CompiledClause | undefined): Promise<void> {
    markExhausted(error);
    exchange.properties.set(ExchangeProperty.ExceptionCaught, error);
    exchange.properties.set(ExchangeProperty.FailureRouteId, this.#init.routeId);
    if (clause) return this.#runClause(exchange, error, clause);
    if (this.#init.deadLetter) return this.#toDeadLetter(exchange, error, this.#init.deadLetter);
    exchange.exception = error;
  }

  async #runClause(exchange: Exchange, error: Error, clause: CompiledClause): Promise<void> {
    const { definition } = clause;
    if (definition.useOriginalMessage) restoreOriginal(exchange);
    exchange.exception = undefined;
    await guard(clause.body)(exchange);
    if (exchange.exception !== undefined) return this.#errorInHandler(exchange, error, exchange.exception, definition.label);
    if (definition.handled && (await this.#safely(definition.handled, exchange, `handled of ${definition.label}`))) {
      exchange.properties.set(ErrorProperty.ErrorHandlerHandled, true);
      exchange.stopped = true;
      return;
    }
    if (definition.continued && (await this.#safely(definition.continued, exchange, `continued of ${definition.label}`))) return;
    exchange.exception = error;
  }

  async #toDeadLetter(exchange: Exchange, error: Error, producer: Producer): Promise<void> {
    // Counted before useOriginalMessage puts back a message without the redelivery headers.
    const attempts = deliveryAttempts(exchange);
    if (this.#init.handler?.useOriginalMessage) restoreOriginal(exchange);
    const headers = exchange.message.headers;
    headers.set(ErrorHeader.ExceptionMessage, maskSecrets(error.message));
    headers.set(ErrorHeader.ExceptionType, error.name);
    headers.set(ErrorHeader.FailureRouteId, this.#init.routeId);
    exchange.exception = undefined;
    await guard((ex) => producer.process(ex))(exchange);
    const where = producer.endpoint.maskedUri;
    if (exchange.exception !== undefined) return this.#errorInHandler(exchange, error, exchange.exception, `deadLetterChannel(${where})`);
    exchange.properties.set(ErrorProperty.ErrorHandlerHandled, true);
    exchange.stopped = true;
    this.#init.logger.warn(
      maskSecrets(
        `Exchange ${exchange.id} on route ${this.#init.routeId} from ${exchange.fromEndpoint ?? '(unknown endpoint)'} moved to dead letter endpoint ${where} ` +
          `after ${attempts} delivery attempt(s): ${error.name}: ${error.message}`,
      ),
      { route: this.#init.routeId, exchangeId: exchange.id, endpoint: exchange.fromEndpoint },
    );
  }

  /** A failure of the error handler itself: logged, never handled again, so it cannot loop. */
  #errorInHandler(exchange: Exchange, original: Error, fresh: Error, where: string): void {
    markExhausted(fresh);
    exchange.exception = fresh;
    exchange.properties.set(ExchangeProperty.ExceptionCaught, original);
    this.#init.logger.error(
      maskSecrets(
        `Error in the error handler ${where} of route ${this.#init.routeId} for exchange ${exchange.id}: ${fresh.name}: ${fresh.message}. ` +
          `It is not handled again; the exchange fails with it. The original failure was ${original.name}: ${original.message}`,
      ),
      { route: this.#init.routeId, exchangeId: exchange.id, error: maskSecrets(fresh.stack ?? String(fresh)) },
    );
  }
}

function restoreOriginal(exchange: Exchange): void {
  if (exchange.originalMessage) exchange.message = snapshotMessage(exchange.originalMessage);
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? 'the exchange was aborted' : String(reason);
}

export interface CompiledCompletion {
  readonly definition: OnCompletionDefinition;
  readonly body: Processor;
  /** 'route' runs where its route ends; 'context' once per exchange, where the exchange started. */
  readonly scope: 'route' | 'context';
}

/**
 * Exchanges whose context-level completions a route will run. Every route carries them, and direct:
 * hands the same exchange to the next route, which must not run them a second time.
 */
const contextCompletionsPending = new WeakSet<Exchange>();

/**
 * Runs the route, then its onCompletion steps on a copy of the exchange (Camel's onCompletion in
 * mode BeforeConsumer: the consumer settles after them). A completion's own failure is logged and
 * never changes the outcome of the exchange it followed.
 */
export function withCompletions(main: Processor, completions: readonly CompiledCompletion[], logger: Logger, routeId: string): Processor {
  if (completions.length === 0) return main;
  const guardedMain = guard(main);
  const guardedCompletions = completions.map(({ definition, body, scope }) => ({ definition, body: guard(body), scope }));
  return async (exchange) => {
    const runsContextLevel = !contextCompletionsPending.has(exchange);
    if (runsContextLevel) contextCompletionsPending.add(exchange);
    await guardedMain(exchange);
    if (runsContextLevel) contextCompletionsPending.delete(exchange);
    if (exchange.properties.has(ErrorProperty.OnCompletion)) return;
    const failure = exchange.exception;
    for (const { definition, body, scope } of guardedCompletions) {
      if (scope === 'context' && !runsContextLevel) continue;
      if (definition.onCompleteOnly && failure) continue;
      if (definition.onFailureOnly && !failure) continue;
      try {
        if (definition.onWhen && !(await holds(definition.onWhen, exchange))) continue;
      } catch (err) {
        logger.warn(maskSecrets(`onWhen of ${definition.label} on route ${routeId} failed for exchange ${exchange.id}: ${toError(err).message}; skipped`));
        continue;
      }
      const copy = exchange.copy();
      copy.properties.set(ErrorProperty.CorrelationId, exchange.id);
      copy.properties.set(ErrorProperty.OnCompletion, true);
      if (failure) copy.properties.set(ExchangeProperty.ExceptionCaught, failure);
      await body(copy);
      if (copy.exception !== undefined) {
        logger.error(
          maskSecrets(`${definition.label} of route ${routeId} failed for exchange ${exchange.id}: ${copy.exception.name}: ${copy.exception.message}. The exchange's own outcome is unchanged`),
          { route: routeId, exchangeId: exchange.id },
        );
      }
    }
  };
}
