import { DromedaryError, RouteBuildError } from '../errors.ts';
import type { Exchange } from '../exchange/exchange.ts';
import type { Processor } from '../spi/processor.ts';
import { maskUri } from '../uri/mask.ts';
import { checkUriSyntax } from '../uri/parse.ts';
import { userCallSite } from './callsite.ts';
import type { Expression, Predicate } from './expression.ts';
import type { StepDefinition } from './step.ts';
import {
  ERROR_HANDLER_EXPECTED,
  ErrorHandlingScope,
  isErrorHandlerDefinition,
  OnCompletionDefinition,
  OnExceptionDefinition,
  type ErrorHandlerDefinition,
  type ErrorMatcher,
  type OnCompletionOptions,
  type OnExceptionOptions,
} from './error-handling.ts';
import { doTryStep, type DoTryStep } from './steps/do-try.ts';
import { logStep } from './steps/log.ts';
import { toDStep, toStep } from './steps/to.ts';
import { processStep, type ProcessorObject } from './steps/process.ts';
import { removeHeaderStep, removePropertyStep, setBodyStep, setHeaderStep, setPropertyStep, transformStep } from './steps/set.ts';
import { filterStep } from './steps/filter.ts';
import { choiceStep, type ChoiceStep } from './steps/choice.ts';
import { splitStep, type SplitOptions } from './steps/split.ts';
import type { AggregationStrategy } from './steps/split.ts';
import { idempotentConsumerStep, type IdempotentConsumerOptions } from './steps/idempotent-consumer.ts';
import { wireTapStep } from './steps/wire-tap.ts';
import { multicastStep, type MulticastOptions } from './steps/multicast.ts';
import { throttleStep, type ThrottleOptions } from './steps/throttle.ts';
import { aggregateStep, type AggregateOptions } from './steps/aggregate.ts';
import { marshalJsonStep, unmarshalJsonStep, type JsonOptions } from './steps/json.ts';
import { delayStep, stopStep } from './steps/delay.ts';

/** A nested block the DSL is adding steps to: a filter's body, a choice branch, a split's body. */
interface OpenBlock {
  readonly kind: string;
  /** Where new steps go; undefined inside a choice before its first when(). */
  steps: StepDefinition[] | undefined;
  readonly choice?: ChoiceStep;
}

/**
 * A route as written with the DSL: `from(uri)` and the steps after it. Block steps (filter, choice,
 * split) take the steps that follow until `end()`, as in Camel's Java DSL; a block still open at
 * the end of the route closes itself. Expressions and URIs are checked as they are added, and a
 * mistake is reported with the route and the line that wrote it.
 */
export class RouteDefinition {
  readonly fromUri: string;
  readonly maskedFromUri: string;
  /** `file:line` of the from(...) call, when it could be found. */
  readonly source: string | undefined;
  readonly steps: StepDefinition[] = [];
  #id: string | undefined;
  #description: string | undefined;
  /** This route's errorHandler, onException clauses and onCompletion blocks. */
  readonly errorHandling = new ErrorHandlingScope();
  /** The doTry step behind each open doTry block, for doCatch() and doFinally(). */
  readonly #tries = new WeakMap<OpenBlock, DoTryStep>();
  readonly #open: OpenBlock[] = [];

  constructor(fromUri: string, source?: string) {
    this.source = source ?? userCallSite();
    this.maskedFromUri = typeof fromUri === 'string' ? maskUri(fromUri) : String(fromUri);
    this.fromUri = fromUri;
    this.#guard('from', () => checkUriSyntax(fromUri));
  }

  get id(): string | undefined {
    return this.#id;
  }

  get description(): string | undefined {
    return this.#description;
  }

  routeId(id: string): this {
    if (typeof id !== 'string' || id.trim() === '') throw this.#error('routeId', 'the route id must be a non-empty string');
    this.#id = id;
    return this;
  }

  /** A line of documentation, shown in logs and `--help`-style listings. */
  describe(text: string): this {
    this.#description = text;
    return this;
  }

  /** This route's error handler: `defaultErrorHandler({ maximumRedeliveries: 3 })` or `deadLetterChannel(uri, options)`. */
  errorHandler(handler: ErrorHandlerDefinition): this {
    if (!isErrorHandlerDefinition(handler)) throw this.#error('errorHandler', ERROR_HANDLER_EXPECTED);
    this.errorHandling.errorHandler = handler;
    return this;
  }

  /**
   * Failures of these error classes (or meeting the condition) get this clause: its redelivery
   * policy, then the steps up to end(), then handled (the route stops, the exchange is not failed),
   * continued (the route resumes after the failed step), or neither (the exchange stays failed).
   */
  onException(matchers: ErrorMatcher | readonly ErrorMatcher[], options?: OnExceptionOptions): this {
    this.#routeLevel('onException');
    const clause = this.#make('onException', () => new OnExceptionDefinition(matchers, options));
    this.errorHandling.onExceptions.push(clause);
    this.#open.push({ kind: 'onException', steps: clause.steps });
    return this;
  }

  /** Steps up to end() run on a copy of each exchange once the route is done with it. */
  onCompletion(options?: OnCompletionOptions): this {
    this.#routeLevel('onCompletion');
    const completion = this.#make('onCompletion', () => new OnCompletionDefinition(options));
    this.errorHandling.onCompletions.push(completion);
    this.#open.push({ kind: 'onCompletion', steps: completion.steps });
    return this;
  }

  /** try/catch/finally: `doTry() … doCatch(TypeError) … doFinally() … end()`. */
  doTry(): this {
    const step = this.#make('doTry', () => doTryStep());
    this.#push(step);
    const block: OpenBlock = { kind: 'doTry', steps: step.tryBody };
    this.#tries.set(block, step);
    this.#open.push(block);
    return this;
  }

  /** Steps up to the next doCatch(), doFinally() or end() run when the doTry steps fail with one of these. */
  doCatch(...matchers: ErrorMatcher[]): this {
    const [block, step] = this.#tryBlock('doCatch');
    if (step.finallySteps) throw this.#error('doCatch', 'doCatch() cannot follow doFinally() in the same doTry()');
    block.steps = this.#make('doCatch', () => step.addCatch(matchers));
    return this;
  }

  /** Steps up to end() run after the doTry, whether it failed or not. */
  doFinally(): this {
    const [block, step] = this.#tryBlock('doFinally');
    if (step.finallySteps) throw this.#error('doFinally', 'a doTry() can have only one doFinally()');
    block.steps = step.addFinally();
    return this;
  }

  #tryBlock(verb: string): [OpenBlock, DoTryStep] {
    const top = this.#open.at(-1);
    const step = top ? this.#tries.get(top) : undefined;
    if (!top || !step) {
      const inside = top ? ` The innermost open block is ${top.kind}(); close it with end() first.` : '';
      throw this.#error(verb, `${verb}() must follow doTry().${inside}`);
    }
    return [top, step];
  }

  #routeLevel(verb: string): void {
    const top = this.#open.at(-1);
    if (top) throw this.#error(verb, `${verb}() belongs to the route, not inside ${top.kind}(): close the block with end() first`);
  }

  /** Logs a Simple message at INFO, or at the given level (`error`, `warn`, `info`, `debug`, `trace`, `off`). */
  log(message: string): this;
  log(level: string, message: string): this;
  log(level: string, logName: string, message: string): this;
  log(a: string, b?: string, c?: string): this {
    if (c !== undefined) return this.#add('log', () => logStep(a, c, b));
    if (b !== undefined) return this.#add('log', () => logStep(a, b));
    return this.#add('log', () => logStep('info', a));
  }

  to(...uris: string[]): this {
    if (uris.length === 0) throw this.#error('to', 'to() needs at least one endpoint URI');
    for (const uri of uris) this.#add('to', () => toStep(uri));
    return this;
  }

  /** Sends to a URI computed per exchange from a Simple template: `toD('http://api/${header.id}')`. */
  toD(uriTemplate: string, options?: { cacheSize?: number }): this {
    return this.#add('toD', () => toDStep(uriTemplate, options));
  }

  process(processor: Processor | ProcessorObject): this {
    if (typeof processor !== 'function' && typeof (processor as ProcessorObject)?.process !== 'function') {
      throw this.#error('process', 'process() takes a function of the exchange, or an object with a process(exchange) method');
    }
    return this.#add('process', () => processStep(processor));
  }

  setBody<T>(expression: Expression<T> | T): this {
    return this.#add('setBody', () => setBodyStep(expression));
  }

  transform<T>(expression: Expression<T> | T): this {
    return this.#add('transform', () => transformStep(expression));
  }

  setHeader<T>(name: string, expression: Expression<T> | T): this {
    return this.#add('setHeader', () => setHeaderStep(name, expression));
  }

  setProperty<T>(name: string, expression: Expression<T> | T): this {
    return this.#add('setProperty', () => setPropertyStep(name, expression));
  }

  removeHeader(name: string): this {
    return this.#add('removeHeader', () => removeHeaderStep(name));
  }

  removeProperty(name: string): this {
    return this.#add('removeProperty', () => removePropertyStep(name));
  }

  /** Steps until end() run only for exchanges matching the predicate. */
  filter(predicate: Predicate): this {
    const step = this.#make('filter', () => filterStep(predicate));
    this.#push(step);
    this.#open.push({ kind: 'filter', steps: step.children });
    return this;
  }

  choice(): this {
    const step = this.#make('choice', () => choiceStep());
    this.#push(step);
    this.#open.push({ kind: 'choice', steps: undefined, choice: step });
    return this;
  }

  when(predicate: Predicate): this {
    const block = this.#choiceBlock('when');
    if (block.choice!.otherwise) throw this.#error('when', 'when() cannot follow otherwise() in the same choice()');
    block.steps = this.#make('when', () => ({ steps: block.choice!.addWhen(predicate) })).steps;
    return this;
  }

  otherwise(): this {
    const block = this.#choiceBlock('otherwise');
    if (block.choice!.branches.length === 0) throw this.#error('otherwise', 'otherwise() needs at least one when() before it');
    if (block.choice!.otherwise) throw this.#error('otherwise', 'a choice() can have only one otherwise()');
    block.choice!.otherwise = [];
    block.steps = block.choice!.otherwise;
    return this;
  }

  /** Closes the nearest open block: filter, choice, split, doTry, onException, onCompletion, idempotentConsumer, multicast or aggregate. */
  end(): this {
    if (this.#open.length === 0) {
      throw this.#error('end', 'end() has no open block to close; it closes filter(), choice(), split(), doTry(), onException(), onCompletion(), idempotentConsumer(), multicast() and aggregate()');
    }
    this.#open.pop();
    return this;
  }

  /** Closes blocks up to and including the nearest choice(), as Camel's endChoice() does for when() bodies. */
  endChoice(): this {
    const index = this.#open.findLastIndex((b) => b.kind === 'choice');
    if (index === -1) throw this.#error('endChoice', 'endChoice() has no open choice() to return to');
    this.#open.length = index + 1;
    return this;
  }

  /** One sub-exchange per item of the expression's value (an array, an iterable, or a string split on commas). */
  split(expression: Expression, options?: SplitOptions): this {
    const step = this.#make('split', () => splitStep(expression, options));
    this.#push(step);
    this.#open.push({ kind: 'split', steps: step.children });
    return this;
  }

  /**
   * The steps until end() run once per key: a message whose key was seen before is marked
   * CamelDuplicateMessage and skips them (`skipDuplicate: false` lets it through, marked). The key is
   * added before the block runs (`eager`, default true), so two concurrent exchanges with one key never
   * both pass, and removed when the block fails (`removeOnFailure`, default true), so a redelivery is
   * processed. Keys live in `repository`: by default an in-memory LRU of 1000 keys; give an
   * IdempotentRepository to share them (Redis, a database).
   */
  idempotentConsumer(keyExpression: Expression, options?: IdempotentConsumerOptions): this {
    return this.#openBlock('idempotentConsumer', () => idempotentConsumerStep(keyExpression, options));
  }

  /**
   * Sends a copy of the exchange to the endpoint without waiting for it; the original goes on
   * unchanged and never sees the tap fail (failures are logged). Stopping the route waits for taps
   * still running.
   */
  wireTap(uri: string): this {
    return this.#add('wireTap', () => wireTapStep(uri));
  }

  /**
   * Sends a copy of the exchange to each destination, one after the other, or all at once with
   * `parallelProcessing`. Either `multicast(['direct:a', 'direct:b'], options?)`, or
   * `multicast(options?)` followed by steps until end(), each step one destination. The original
   * then takes the last reply, or what `aggregationStrategy` makes of the replies (in written order);
   * the first failure fails it, after every destination ran unless `stopOnException`.
   */
  multicast(uris: readonly string[], options?: MulticastOptions): this;
  multicast(options?: MulticastOptions): this;
  multicast(first?: readonly string[] | MulticastOptions, second?: MulticastOptions): this {
    if (typeof first === 'string') {
      const uri = maskUri(first);
      throw this.#error('multicast', `multicast() takes its URIs as an array: multicast(['${uri}', …]), or a block: multicast().to('${uri}')….end()`);
    }
    if (!Array.isArray(first)) return this.#openBlock('multicast', () => multicastStep(first as MulticastOptions | undefined));
    const uris = first as readonly string[];
    if (uris.length === 0) throw this.#error('multicast', 'multicast() needs at least one destination URI');
    const step = this.#make('multicast', () => {
      const made = multicastStep(second);
      for (const uri of uris) made.children.push(toStep(uri));
      return made;
    });
    this.#push(step);
    return this;
  }

  /**
   * Lets at most `maximum` exchanges pass per `period` (default 1s; a sliding window, Camel 4's
   * default total-requests mode); the others wait their turn in order, or fail with
   * ThrottlerRejectedError when `rejectExecution` is set. Waiting exchanges fail when the route stops.
   */
  throttle(maximum: number, options?: ThrottleOptions): this {
    return this.#add('throttle', () => throttleStep(maximum, options));
  }

  /**
   * Combines exchanges with the same correlation key using the strategy; a group completes on
   * `completionSize`, on `completionTimeout` (no new exchange for that long, per key), on
   * `completionPredicate`, whichever comes first. The aggregated exchange runs the steps until end(),
   * with CamelAggregatedSize, CamelAggregatedCompletedBy and CamelAggregatedCorrelationKey; the
   * incoming exchanges skip them and go on after end(). Incomplete groups are completed when the route
   * stops (`forceCompletionOnStop`, default true), or else dropped with an error logged for each.
   */
  aggregate(correlationExpression: Expression, strategy: AggregationStrategy, options?: AggregateOptions): this {
    return this.#openBlock('aggregate', () => aggregateStep(correlationExpression, strategy, options));
  }

  #openBlock(verb: string, make: () => StepDefinition & { readonly children: StepDefinition[] }): this {
    const step = this.#make(verb, make);
    this.#push(step);
    this.#open.push({ kind: verb, steps: step.children });
    return this;
  }

  marshal(): { json: (options?: JsonOptions) => RouteDefinition } {
    return { json: (options) => this.#add('marshal', () => marshalJsonStep(options)) };
  }

  unmarshal(): { json: () => RouteDefinition } {
    return { json: () => this.#add('unmarshal', () => unmarshalJsonStep()) };
  }

  /** Waits: milliseconds, a duration such as `5s`, or a function of the exchange giving milliseconds. */
  delay(duration: number | string | ((exchange: Exchange) => number)): this {
    return this.#add('delay', () => delayStep(duration));
  }

  /** Ends routing of the exchange, successfully. */
  stop(): this {
    return this.#add('stop', () => stopStep());
  }

  /** Adds a step made elsewhere (an EIP from another module or a user's own). */
  step(definition: StepDefinition): this {
    this.#push(definition);
    return this;
  }

  #choiceBlock(verb: string): OpenBlock {
    const top = this.#open.at(-1);
    if (top?.kind !== 'choice') {
      const inside = top ? ` The innermost open block is ${top.kind}(); close it with end(), or use endChoice().` : '';
      throw this.#error(verb, `${verb}() must follow choice().${inside}`);
    }
    return top;
  }

  #add(verb: string, make: () => StepDefinition): this {
    this.#push(this.#make(verb, make));
    return this;
  }

  #push(step: StepDefinition): void {
    const top = this.#open.at(-1);
    if (top && top.steps === undefined) {
      throw this.#error(step.kind, `${step.kind}() inside choice() must come after a when() or otherwise()`);
    }
    (top?.steps ?? this.steps).push(step);
  }

  #make<T>(verb: string, make: () => T): T {
    return this.#guard(verb, make);
  }

  #guard<T>(verb: string, make: () => T): T {
    try {
      return make();
    } catch (err) {
      if (err instanceof RouteBuildError) throw err;
      if (err instanceof DromedaryError || err instanceof TypeError) throw this.#error(verb, err.message, err);
      throw err;
    }
  }

  #error(verb: string, message: string, cause?: unknown): RouteBuildError {
    const route = this.#id ? `Route ${this.#id}` : `Route from(${this.maskedFromUri})`;
    const where = this.source ? ` at ${this.source}` : '';
    return new RouteBuildError(`${route}${where}: ${verb}(): ${message}`, cause ? { cause } : undefined);
  }
}

/** Collects route definitions, for `context.addRoutes(r => r.from(...))` and `export default (r) => ...` route files. */
export class RouteBuilder {
  readonly routes: RouteDefinition[] = [];

  from(uri: string): RouteDefinition {
    const route = new RouteDefinition(uri, userCallSite());
    this.routes.push(route);
    return route;
  }
}
