import type { Exchange } from '../exchange/exchange.ts';
import type { Logger } from '../logging/logger.ts';
import type { Consumer, Endpoint, Producer } from '../spi/component.ts';
import { isPromise, type Processor } from '../spi/processor.ts';
import type { RouteCompiler, StepDefinition } from '../dsl/step.ts';
import { EXCHANGE_OBSERVER, type ExchangeListener, type ExchangeObserver } from '../spi/exchange-observer.ts';
import type { RouteDefinition } from '../dsl/route-definition.ts';
import { RouteBuildError, DromedaryError } from '../errors.ts';
import { pipeline } from './pipeline.ts';
import { logFailure } from './error-handler.ts';
import { markExhausted, snapshotMessage, withCompletions, type CompiledCompletion, type RouteErrorHandler } from './error-handling.ts';
import { buildErrorHandler } from './route-error-handler.ts';
import type { Context } from './context.ts';

export type RouteStatus = 'built' | 'started' | 'stopping' | 'stopped';

/**
 * A route at run time: its consumer, its compiled steps and the producers they use. It counts
 * exchanges in flight, and work its steps started that outlives them, so that shutdown can stop
 * the consumer first and then wait for them.
 */
export class Route {
  readonly id: string;
  readonly definition: RouteDefinition;
  readonly logger: Logger;
  readonly endpoint: Endpoint;
  #consumer: Consumer | undefined;
  #processor: Processor;
  readonly #producers: Producer[];
  readonly #stopHooks: Array<() => void | Promise<void>>;
  readonly #prepareHooks: Array<() => void>;
  #prepared = false;
  readonly #abort: AbortController;
  /** Aborted as the consumer stops, so that redelivery waits do not hold up shutdown. */
  readonly #stopping: AbortController;
  readonly #needsOriginalMessage: boolean;
  #inflight = 0;
  /** Tracked work of the steps (compiler.track) still running. */
  #pending = 0;
  /** Drains waiting: each resolves once its own count (all work, or tracked work only) reaches zero. */
  #idleWaiters: Array<{ count: () => number; wake: () => void }> = [];
  #status: RouteStatus = 'built';
  #exchangesTotal = 0;
  #exchangesFailed = 0;
  /** Metrics' listener, if an ExchangeObserver is registered: without one the hot path reads no clock. */
  #observe: ExchangeListener | undefined;

  private constructor(init: {
    id: string;
    definition: RouteDefinition;
    logger: Logger;
    endpoint: Endpoint;
    processor: Processor;
    producers: Producer[];
    stopHooks: Array<() => void | Promise<void>>;
    prepareHooks: Array<() => void>;
    abort: AbortController;
    stopping: AbortController;
    needsOriginalMessage: boolean;
  }) {
    this.id = init.id;
    this.definition = init.definition;
    this.logger = init.logger;
    this.endpoint = init.endpoint;
    this.#processor = init.processor;
    this.#producers = init.producers;
    this.#stopHooks = init.stopHooks;
    this.#prepareHooks = init.prepareHooks;
    this.#abort = init.abort;
    this.#stopping = init.stopping;
    this.#needsOriginalMessage = init.needsOriginalMessage;
  }

  /** Resolves the endpoints and compiles the steps; nothing starts yet. */
  static async build(context: Context, definition: RouteDefinition, id: string): Promise<Route> {
    const logger = context.logger.child({ route: id });
    const producers: Producer[] = [];
    const stopHooks: Array<() => void | Promise<void>> = [];
    const prepareHooks: Array<() => void> = [];
    // The route does not exist yet while its steps compile; tracked work reaches it through this.
    let route: Route | undefined;
    const early: Promise<unknown>[] = [];
    const abort = new AbortController();
    const stopping = new AbortController();
    const where = definition.source ? ` (${definition.source})` : '';
    const wrapError = (what: string, err: unknown): unknown =>
      err instanceof DromedaryError && !(err instanceof RouteBuildError && err.message.startsWith(`Route ${id}`))
        ? new RouteBuildError(`Route ${id}${where}: ${what} cannot be built: ${err.message}`, { cause: err })
        : err;
    const makeCompiler = (errorHandler: RouteErrorHandler | undefined): RouteCompiler => {
      const compiler: RouteCompiler = {
        context,
        routeId: id,
        logger,
        signal: abort.signal,
        async compile(steps: readonly StepDefinition[]) {
          const processors: Processor[] = [];
          for (const step of steps) {
            let processor: Processor;
            try {
              processor = await step.compile(compiler);
            } catch (err) {
              if (err instanceof DromedaryError) {
                throw new RouteBuildError(`Route ${id}${where}: step ${step.label} cannot be built: ${err.message}`, { cause: err });
              }
              throw err;
            }
            processors.push(errorHandler ? errorHandler.channel(processor, step.label) : processor);
          }
          return pipeline(processors);
        },
        compileWithoutErrorHandler(steps: readonly StepDefinition[]) {
          return unguarded.compile(steps);
        },
        async producer(uri: string) {
          const endpoint = await context.endpoint(uri);
          const producer = await endpoint.createProducer();
          producers.push(producer);
          return producer;
        },
        onStop(fn) {
          stopHooks.push(fn);
        },
        onPrepareShutdown(fn) {
          prepareHooks.push(fn);
        },
        track(work) {
          if (route) route.#track(work);
          else early.push(work);
        },
      };
      return compiler;
    };
    const unguarded = makeCompiler(undefined);
    let endpoint: Endpoint;
    try {
      endpoint = await context.endpoint(definition.fromUri);
    } catch (err) {
      if (err instanceof DromedaryError) {
        throw new RouteBuildError(`Route ${id}${where}: from(${definition.maskedFromUri}) cannot be built: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const errorHandler = await buildErrorHandler(context, definition.errorHandling, unguarded, { routeId: id, logger, stopping: stopping.signal, wrapError });
    const compiler = errorHandler ? makeCompiler(errorHandler) : unguarded;
    const completions: CompiledCompletion[] = [];
    for (const [scope, definitions] of [['route', definition.errorHandling.onCompletions], ['context', context.errorHandling.onCompletions]] as const) {
      for (const d of definitions) {
        try {
          completions.push({ definition: d, body: await unguarded.compile(d.steps), scope });
        } catch (err) {
          throw wrapError(`${d.label} (${scope} level)`, err);
        }
      }
    }
    const processor = withCompletions(await compiler.compile(definition.steps), completions, logger, id);
    route = new Route({
      id,
      definition,
      logger,
      endpoint,
      processor,
      producers,
      stopHooks,
      prepareHooks,
      abort,
      stopping,
      needsOriginalMessage: errorHandler?.needsOriginalMessage ?? false,
    });
    for (const work of early) route.#track(work);
    return route;
  }

  get status(): RouteStatus {
    return this.#status;
  }

  /** Exchanges in flight, plus work the steps started that outlives its exchange. */
  get inflight(): number {
    return this.#inflight + this.#pending;
  }

  /** Whether other routes call this one in-process (direct:), so a graceful stop stops it last. */
  get defersShutdown(): boolean {
    return this.#consumer?.defersShutdown === true;
  }

  get stats(): { total: number; failed: number; inflight: number } {
    return { total: this.#exchangesTotal, failed: this.#exchangesFailed, inflight: this.#inflight };
  }

  get consumer(): Consumer | undefined {
    return this.#consumer;
  }

  /**
   * The entry point handed to the consumer. It never rejects: a failure is logged by the route that
   * received the exchange first and left on the exchange for the consumer to settle.
   */
  readonly dispatch: Processor = (exchange: Exchange) => {
    const origin = exchange.routeId === undefined;
    if (origin) {
      exchange.routeId = this.id;
      exchange.fromEndpoint ??= this.endpoint.maskedUri;
    }
    if (this.#needsOriginalMessage && exchange.originalMessage === undefined) exchange.originalMessage = snapshotMessage(exchange.message);
    this.#inflight += 1;
    this.#exchangesTotal += 1;
    const started = this.#observe?.wants() ? performance.now() : -1;
    let result: void | Promise<void> = undefined;
    try {
      result = this.#processor(exchange);
    } catch (err) {
      // The pipeline never throws; this guards against a custom processor replacing it.
      exchange.exception = err instanceof Error ? err : new Error(String(err));
    }
    if (isPromise(result)) return result.then(() => this.#done(exchange, origin, started));
    this.#done(exchange, origin, started);
  };

  #done(exchange: Exchange, origin: boolean, started: number): void {
    if (started >= 0) this.#observe!.finished(exchange, started);
    if (exchange.exception !== undefined) {
      // This route's error handler is done with it: a calling route must not redeliver or handle it again.
      markExhausted(exchange.exception);
      this.#exchangesFailed += 1;
      if (origin) logFailure(this.logger, this.id, exchange);
    }
    this.#inflight -= 1;
    this.#wakeIfIdle();
  }

  #track(work: Promise<unknown>): void {
    this.#pending += 1;
    const settled = () => {
      this.#pending -= 1;
      this.#wakeIfIdle();
    };
    work.then(settled, settled);
  }

  #wakeIfIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    const idle = this.#idleWaiters.filter((w) => w.count() === 0);
    if (idle.length === 0) return;
    this.#idleWaiters = this.#idleWaiters.filter((w) => !idle.includes(w));
    for (const w of idle) w.wake();
  }

  async start(): Promise<void> {
    this.#observe = this.endpoint.context.service<ExchangeObserver>(EXCHANGE_OBSERVER)?.forRoute(this.id);
    for (const producer of this.#producers) await producer.start();
    this.#consumer = await this.endpoint.createConsumer(this.dispatch);
    await this.#consumer.start();
    this.#status = 'started';
    this.logger.info(`Started route ${this.id} (${this.endpoint.maskedUri})`, { endpoint: this.endpoint.maskedUri });
  }

  /**
   * The stop has begun: redelivery waits end now, so they do not hold it up. A route that defers its
   * shutdown (direct:) still takes exchanges from other routes until stopConsumer().
   */
  beginStop(): void {
    this.#status = 'stopping';
    this.#stopping.abort();
  }

  /** Stops taking new exchanges. */
  async stopConsumer(): Promise<void> {
    this.beginStop();
    await this.#consumer?.stop();
  }

  /**
   * Starts the work that must be done before the route stops (its steps' onPrepareShutdown hooks:
   * an aggregator's forced completions), once. Call it after the drain of what was in flight, while
   * the routes it calls still serve; then drain again.
   */
  prepareShutdown(): void {
    if (this.#prepared) return;
    this.#prepared = true;
    for (const hook of this.#prepareHooks) {
      try {
        hook();
      } catch (err) {
        this.logger.error(`Preparing route ${this.id} for shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /**
   * Resolves when nothing is in flight (exchanges and tracked work; with `trackedOnly`, tracked work
   * only), or with the number still in flight when the timeout passes.
   */
  drain(timeoutMs: number, options: { trackedOnly?: boolean } = {}): Promise<number> {
    const count = options.trackedOnly ? () => this.#pending : () => this.inflight;
    if (count() === 0) return Promise.resolve(0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== waiter);
        resolve(count());
      }, timeoutMs);
      const waiter = {
        count,
        wake: () => {
          clearTimeout(timer);
          resolve(0);
        },
      };
      this.#idleWaiters.push(waiter);
    });
  }

  /** Tells the consumer the route's work has drained (or not, when the shutdown timeout passed first). */
  async afterDrain(drained: boolean): Promise<void> {
    await this.#consumer?.afterDrain?.(drained);
  }

  /** Ends waits inside steps, stops the producers and runs the steps' stop hooks. */
  async stopProducers(): Promise<void> {
    this.#abort.abort();
    for (const hook of this.#stopHooks) await hook();
    for (const producer of this.#producers) await producer.stop();
    this.#status = 'stopped';
    this.logger.info(`Stopped route ${this.id}`, { endpoint: this.endpoint.maskedUri });
  }
}
