import type { Processor } from '../spi/processor.ts';
import type { Producer } from '../spi/component.ts';
import type { Logger } from '../logging/logger.ts';
import type { Context } from '../engine/context.ts';

/**
 * One step of a route as the DSL recorded it. Steps are compiled into processors when the route
 * starts; anything that can be checked earlier (expressions, URIs' syntax) is checked when recorded.
 */
export interface StepDefinition {
  /** The DSL verb, e.g. `to`, `filter`. */
  readonly kind: string;
  /** How the step reads in messages, e.g. `to(direct:out)`, with secrets masked. */
  readonly label: string;
  compile(compiler: RouteCompiler): Processor | Promise<Processor>;
}

/** What a step may ask of the route being built. */
export interface RouteCompiler {
  readonly context: Context;
  readonly routeId: string;
  readonly logger: Logger;
  /** Compiles nested steps (a filter's body, a choice branch) into one processor. */
  compile(steps: readonly StepDefinition[]): Promise<Processor>;
  /**
   * Compiles nested steps whose failures the route's error handler must not take: doTry bodies and
   * the steps of onException and onCompletion (an error there must never be handled again).
   */
  compileWithoutErrorHandler(steps: readonly StepDefinition[]): Promise<Processor>;
  /** A producer that lives as long as the route: started before its consumer, stopped after it drains. */
  producer(uri: string): Promise<Producer>;
  /** Work to do when the route stops (clear timers, close caches), after its work in flight has drained. */
  onStop(fn: () => void | Promise<void>): void;
  /**
   * Called once when a graceful stop begins for this route: its consumer no longer starts new work and
   * what was in flight has finished, but the routes it calls (direct:) still serve. Start the work that
   * must still be done before stopping (an aggregator's forced completions) and track() it.
   */
  onPrepareShutdown(fn: () => void): void;
  /**
   * Work a step started that outlives the exchange which started it (an aggregated group completed by
   * its timeout): counted as in flight, so the route's graceful stop waits for it.
   */
  track(work: Promise<unknown>): void;
  /** Aborted when the route stops, so waits inside steps (delay, throttle) end early. */
  readonly signal: AbortSignal;
}
