import type { Exchange } from '../exchange/exchange.ts';

/** The context service name an ExchangeObserver is registered under (`context.addService`). */
export const EXCHANGE_OBSERVER = 'dromedary.exchange-observer';

/**
 * Told of the exchanges a route finishes, for metrics. A route asks once, as it is built, for its
 * listener; with no observer registered the route does not even read the clock.
 */
export interface ExchangeObserver {
  forRoute(routeId: string): ExchangeListener;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ExchangeListener {
  /**
   * Asked as the route receives an exchange: whether to time this one. A clock read costs about as
   * much as a step, so a listener may time only a sample of a busy route's exchanges.
   */
  wants(): boolean;
  /** Called as an exchange `wants` chose leaves the route; `startedMs` is `performance.now()` on arrival. */
  finished(exchange: Exchange, startedMs: number): void;
}
