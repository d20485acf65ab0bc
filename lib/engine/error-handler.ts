import { LeadershipLostError } from '../errors.ts';
import type { Exchange } from '../exchange/exchange.ts';
import type { Logger } from '../logging/logger.ts';
import { maskSecrets } from '../uri/mask.ts';
import { deliveryAttempts } from './error-handling.ts';

/**
 * Camel's DefaultErrorHandler at its simplest: the failure is logged once, by the route that
 * received the exchange first, and stays on the exchange so its consumer can react (nack, keep
 * the cursor, rethrow to a direct caller).
 */
export function logFailure(logger: Logger, routeId: string, exchange: Exchange): void {
  const error = exchange.exception;
  if (!error) return;
  if (error instanceof LeadershipLostError) {
    // Expected after a pause or a partition, not a fault of the route; its consumer still settles it as failed.
    logger.warn(maskSecrets(`Exchange ${exchange.id} on route ${routeId} from ${exchange.fromEndpoint ?? '(unknown endpoint)'} stopped: ${error.message}`), {
      route: routeId,
      exchangeId: exchange.id,
      endpoint: exchange.fromEndpoint,
    });
    return;
  }
  logger.error(
    maskSecrets(
      `Failed delivery for (ExchangeId: ${exchange.id}) on route ${routeId} from ${exchange.fromEndpoint ?? '(unknown endpoint)'}. ` +
        `Exhausted after delivery attempt: ${deliveryAttempts(exchange)} caught: ${error.name}: ${error.message}`,
    ),
    { route: routeId, exchangeId: exchange.id, endpoint: exchange.fromEndpoint, error: maskSecrets(error.stack ?? String(error)) },
  );
}
