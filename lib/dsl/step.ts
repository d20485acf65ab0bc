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
  /** Work to do when the route stops (clear timers, close caches). */
  onStop(fn: () => void | Promise<void>): void;
  /** Aborted when the route stops, so waits inside steps (delay, throttle) end early. */
  readonly signal: AbortSignal;
}
