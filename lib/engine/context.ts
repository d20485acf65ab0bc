import { ServiceSupport } from '../spi/service.ts';
import type { Component, Endpoint, Producer } from '../spi/component.ts';
import { silentLogger, type Logger } from '../logging/logger.ts';
import { parseUri } from '../uri/parse.ts';
import { hideValuesInError, PropertyResolver, type Properties } from '../uri/placeholders.ts';
import { ResolveEndpointError, RouteBuildError } from '../errors.ts';
import { builtinComponents } from '../components/registry.ts';
import { RouteBuilder, type RouteDefinition } from '../dsl/route-definition.ts';
import { Route } from './route.ts';
import { ProducerTemplate } from './producer-template.ts';
import { realScheduler, type Scheduler } from './scheduler.ts';
import { formatDuration } from '../uri/duration.ts';
import { ErrorHandlingScope, type ErrorHandlerDefinition, type ErrorMatcher, type OnCompletionOptions, type OnExceptionOptions } from '../dsl/error-handling.ts';
import { declareErrorHandler, declareOnCompletion, declareOnException, type ClauseDefinition } from '../dsl/clause-definition.ts';

export interface ContextOptions {
  /** Shown in logs; defaults to `dromedary`. */
  name?: string;
  /** A winston logger (or anything with the same methods). The context never configures it. */
  logger?: Logger;
  /** Components to use instead of, or beside, the built-in ones, by scheme. */
  components?: Record<string, Component>;
  /** How long stop() waits for exchanges in flight after the consumers stopped. Default 10 s. */
  shutdownTimeout?: number;
  /** Values of the `{{name}}` placeholders in endpoint URIs (`{{env:NAME}}` reads the environment). */
  properties?: Properties;
  /** Clock and timers for redelivery waits; tests pass a virtual clock. Default: the process's own. */
  scheduler?: Scheduler;
}

/** Something whose lifecycle follows the context's: started before the routes, stopped after them. */
export interface ContextService {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Owns the components, the endpoints they make, the routes and their lifecycle. Start builds every
 * route before starting any, so a bad URI or expression anywhere fails startup as a whole. Stop
 * follows Camel's graceful shutdown (see doStop): consumers first, then the work in flight, then producers.
 */
export class Context extends ServiceSupport {
  readonly name: string;
  readonly logger: Logger;
  readonly shutdownTimeout: number;
  readonly #properties: PropertyResolver;
  readonly scheduler: Scheduler;
  /** Error handling for every route: each route's own declarations come first. */
  readonly errorHandling = new ErrorHandlingScope();
  readonly #components = new Map<string, Component>();
  readonly #componentLoads = new Map<string, Promise<Component>>();
  readonly #startedComponents = new Set<Component>();
  readonly #endpoints = new Map<string, Promise<Endpoint>>();
  readonly #definitions: RouteDefinition[] = [];
  readonly #routes: Route[] = [];
  readonly #services = new Map<string, ContextService>();
  readonly #templates: ProducerTemplate[] = [];
  #routeCounter = 0;

  constructor(options: ContextOptions = {}) {
    super();
    this.name = options.name ?? 'dromedary';
    this.logger = options.logger ?? silentLogger();
    this.shutdownTimeout = options.shutdownTimeout ?? 10_000;
    this.#properties = new PropertyResolver({ ...options.properties });
    this.scheduler = options.scheduler ?? realScheduler;
    for (const [scheme, component] of Object.entries(options.components ?? {})) this.addComponent(scheme, component);
  }

  addComponent(scheme: string, component: Component): this {
    this.#components.set(scheme.toLowerCase(), component);
    return this;
  }

  /** Registered schemes plus the built-in ones, for error messages and `--help`. */
  get schemes(): string[] {
    return [...new Set([...this.#components.keys(), ...Object.keys(builtinComponents)])].sort();
  }

  async component(scheme: string): Promise<Component> {
    const key = scheme.toLowerCase();
    const registered = this.#components.get(key);
    const component = registered ?? (await this.#loadBuiltin(key));
    if (component === undefined) {
      throw new ResolveEndpointError(
        `${scheme}:…`,
        `no component found with scheme "${scheme}". Available components: ${this.schemes.join(', ')}. ` +
          `Register your own with context.addComponent('${scheme}', component).`,
      );
    }
    if (this.isStarted || this.state === 'starting') await this.#startComponent(component);
    return component;
  }

  #loadBuiltin(scheme: string): Promise<Component> | undefined {
    const load = builtinComponents[scheme];
    if (!load) return undefined;
    let pending = this.#componentLoads.get(scheme);
    if (!pending) {
      pending = load().then((c) => {
        this.#components.set(scheme, c);
        return c;
      });
      this.#componentLoads.set(scheme, pending);
    }
    return pending;
  }

  async #startComponent(component: Component): Promise<void> {
    if (this.#startedComponents.has(component)) return;
    this.#startedComponents.add(component);
    await component.start?.();
  }

  /**
   * The endpoint for a URI; the same URI always gives the same endpoint. Property placeholders are
   * resolved here, once for every component; errors are rewritten so they show placeholders, not values.
   */
  endpoint(uri: string): Promise<Endpoint> {
    let pending = this.#endpoints.get(uri);
    if (!pending) {
      pending = (async () => {
        const parsed = parseUri(uri, this.#properties);
        const component = await this.component(parsed.scheme);
        try {
          return await component.createEndpoint(parsed, this);
        } catch (err) {
          throw hideValuesInError(err, parsed.placeholders);
        }
      })();
      this.#endpoints.set(uri, pending);
      pending.catch(() => this.#endpoints.delete(uri));
    }
    return pending;
  }

  /** The endpoints made so far (read by /metrics for the counts components keep per endpoint). */
  async endpoints(): Promise<Endpoint[]> {
    const made = await Promise.allSettled(this.#endpoints.values());
    return made.flatMap((m) => (m.status === 'fulfilled' ? [m.value] : []));
  }

  /** Adds routes, from a builder function or definitions. Routes added after start() start at once. */
  async addRoutes(routes: ((builder: RouteBuilder) => void) | Iterable<RouteDefinition>): Promise<void> {
    let definitions: RouteDefinition[];
    if (typeof routes === 'function') {
      const builder = new RouteBuilder();
      routes(builder);
      definitions = builder.routes;
    } else {
      definitions = [...routes];
    }
    const seen = new Map(this.#definitions.map((d) => [this.#idOf(d), d] as const));
    for (const d of definitions) {
      if (d.id === undefined) continue;
      const other = seen.get(d.id);
      if (other) {
        throw new RouteBuildError(
          `Duplicate route id "${d.id}": defined at ${describe(other)} and at ${describe(d)}. Give each route a unique .routeId(...).`,
        );
      }
      seen.set(d.id, d);
    }
    this.#definitions.push(...definitions);
    if (this.isStarted) await this.#startRoutes(definitions);
  }

  #ids = new WeakMap<RouteDefinition, string>();

  #idOf(definition: RouteDefinition): string {
    let id = definition.id ?? this.#ids.get(definition);
    if (id === undefined) {
      do {
        this.#routeCounter += 1;
        id = `route${this.#routeCounter}`;
      } while (this.#definitions.some((d) => d.id === id));
      this.#ids.set(definition, id);
    }
    return id;
  }

  /** The error handler of every route that does not declare its own (read when routes are built). */
  errorHandler(handler: ErrorHandlerDefinition): this {
    declareErrorHandler(this.errorHandling, handler);
    return this;
  }

  /** An onException clause for every route, after the route's own; add its steps to the returned definition. */
  onException(matchers: ErrorMatcher | readonly ErrorMatcher[], options?: OnExceptionOptions): ClauseDefinition {
    return declareOnException(this.errorHandling, matchers, options);
  }

  /** Steps run after every exchange of every route; add them to the returned definition. */
  onCompletion(options?: OnCompletionOptions): ClauseDefinition {
    return declareOnCompletion(this.errorHandling, options);
  }

  get routes(): readonly Route[] {
    return this.#routes;
  }

  route(id: string): Route | undefined {
    return this.#routes.find((r) => r.id === id);
  }

  /** Registers a service (a cluster service, a health server) whose lifecycle follows the context's. */
  addService(name: string, service: ContextService): this {
    this.#services.set(name, service);
    return this;
  }

  service<T extends ContextService>(name: string): T | undefined {
    return this.#services.get(name) as T | undefined;
  }

  /** Sends exchanges to endpoints from plain code (Camel's ProducerTemplate). */
  createProducerTemplate(): ProducerTemplate {
    const template = new ProducerTemplate(this);
    this.#templates.push(template);
    return template;
  }

  protected async doStart(): Promise<void> {
    for (const component of this.#components.values()) await this.#startComponent(component);
    for (const service of this.#services.values()) await service.start();
    await this.#startRoutes(this.#definitions);
    this.logger.info(`${this.name} started ${this.#routes.length} route(s)`, { routes: this.#routes.map((r) => r.id) });
  }

  async #startRoutes(definitions: readonly RouteDefinition[]): Promise<void> {
    const built: Route[] = [];
    for (const definition of definitions) built.push(await Route.build(this, definition, this.#idOf(definition)));
    for (const route of built) {
      await route.start();
      this.#routes.push(route);
    }
  }

  /**
   * Camel's graceful shutdown. The consumers that start new work stop first, at once. Each of those
   * routes then drains what it had in flight, runs its prepare-shutdown hooks (an aggregator's forced
   * completions) and drains again, while the in-process routes it calls (direct:, which defer their
   * shutdown) still serve; only then is its consumer told the route drained, so a master: route
   * gives up its lock after its last exchange ended, never before. The deferred routes finish last,
   * when nothing can call them any more. The exchanges in flight share one deadline, the shutdown
   * timeout; the forced completions get one more (see #drainPrepared).
   */
  protected async doStop(): Promise<void> {
    const routes = [...this.#routes].reverse();
    const deadline = performance.now() + this.shutdownTimeout;
    const left = () => Math.max(0, deadline - performance.now());
    const starters = routes.filter((r) => !r.defersShutdown);
    const deferred = routes.filter((r) => r.defersShutdown);
    this.#announceDrain(routes);
    for (const route of deferred) route.beginStop();
    await Promise.all(starters.map((route) => route.stopConsumer().catch((err: unknown) => this.#warn('stopping the consumer of', route, err))));
    const unfinished = new Map<Route, number>();
    const finish = async (route: Route, inflight: number): Promise<void> => {
      if (inflight > 0) unfinished.set(route, inflight);
      await route.afterDrain(inflight === 0).catch((err: unknown) => this.#warn('releasing the consumer of', route, err));
    };
    await Promise.all(
      starters.map(async (route) => {
        const stuck = await route.drain(left());
        route.prepareShutdown();
        await finish(route, await this.#drainPrepared(route, stuck));
      }),
    );
    // No route that starts work runs any more, so only the deferred routes can still call one another.
    const stuck = await Promise.all(deferred.map((route) => route.drain(left())));
    for (const route of deferred) route.prepareShutdown();
    const deferredLeft = await Promise.all(deferred.map((route, i) => this.#drainPrepared(route, stuck[i]!)));
    for (const route of deferred) await route.stopConsumer().catch((err: unknown) => this.#warn('stopping the consumer of', route, err));
    for (const [i, route] of deferred.entries()) await finish(route, deferredLeft[i]!);
    for (const [route, inflight] of unfinished) {
      this.logger.warn(`Route ${route.id} still had ${inflight} exchange(s) in flight after the ${this.shutdownTimeout}ms shutdown timeout`, { route: route.id });
    }
    for (const route of routes) await route.stopProducers().catch((err) => this.#warn('stopping the producers of', route, err));
    for (const template of this.#templates) await template.stop();
    for (const service of [...this.#services.values()].reverse()) await service.stop();
    for (const component of [...this.#startedComponents].reverse()) await component.stop?.();
    this.#startedComponents.clear();
    this.#routes.length = 0;
    this.#endpoints.clear();
    this.logger.info(`${this.name} stopped`);
  }

  /**
   * Waits for the work a route's prepare-shutdown hooks started (forced completions), and returns what
   * is still in flight. That work holds data already taken from its source (acked messages), so it gets
   * a shutdown timeout of its own even when the exchanges in flight used up the first; exchanges that
   * did (`stuck`) are not waited for again.
   */
  async #drainPrepared(route: Route, stuck: number): Promise<number> {
    if (stuck === 0) return route.drain(this.shutdownTimeout);
    await route.drain(this.shutdownTimeout, { trackedOnly: true });
    return route.inflight;
  }

  /** One line, so an operator sees why a stop takes time: how many exchanges, in which routes, for how long at most. */
  #announceDrain(routes: readonly Route[]): void {
    const busy = routes.filter((r) => r.inflight > 0);
    if (busy.length === 0) return;
    const total = busy.reduce((sum, r) => sum + r.inflight, 0);
    this.logger.info(
      `Shutting down: waiting up to ${formatDuration(this.shutdownTimeout)} for ${total} exchange(s) in flight (${busy.map((r) => `${r.id}: ${r.inflight}`).join(', ')})`,
      { inflight: total, shutdownTimeout: this.shutdownTimeout, routes: Object.fromEntries(busy.map((r) => [r.id, r.inflight])) },
    );
  }

  #warn(what: string, route: Route, err: unknown): void {
    this.logger.warn(`Error ${what} route ${route.id}: ${err instanceof Error ? err.message : String(err)}`, { route: route.id });
  }

  /** Producers not owned by a route (templates) reuse this to find or make theirs. */
  async createProducer(uri: string): Promise<Producer> {
    const endpoint = await this.endpoint(uri);
    const producer = await endpoint.createProducer();
    await producer.start();
    return producer;
  }
}

function describe(definition: RouteDefinition): string {
  return definition.source ?? `from(${definition.maskedFromUri})`;
}
