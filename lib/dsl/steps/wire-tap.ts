import { maskSecrets, maskUri } from '../../uri/mask.ts';
import { checkUriSyntax } from '../../uri/parse.ts';
import type { StepDefinition } from '../step.ts';
import { PendingWork } from './pending-work.ts';

/**
 * The Wire Tap: a copy of the exchange, taken where the tap stands, goes to the endpoint while the
 * original carries on without waiting. The tap cannot change or fail the original; its failures are
 * logged. Taps still running when the route stops are waited for (up to the context's shutdown
 * timeout) before the producers close.
 */
export function wireTapStep(uri: string): StepDefinition {
  if (typeof uri !== 'string') throw new TypeError(`wireTap() takes an endpoint URI, got ${typeof uri}`);
  checkUriSyntax(uri);
  const masked = maskUri(uri);
  return {
    kind: 'wireTap',
    label: `wireTap(${masked})`,
    async compile({ producer: producerFor, onStop, logger, context, routeId }) {
      const producer = await producerFor(uri);
      const pending = new PendingWork();
      onStop(async () => {
        const left = await pending.settle(context.shutdownTimeout);
        if (left > 0) {
          logger.warn(`wireTap(${masked}) still had ${left} tapped exchange(s) running after the ${context.shutdownTimeout}ms shutdown timeout`, {
            route: routeId,
          });
        }
      });
      const report = (tapId: string, originalId: string, error: unknown) => {
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        logger.warn(maskSecrets(`wireTap(${masked}) failed for exchange ${tapId} (tapped from ${originalId}): ${message}`), {
          route: routeId,
          exchangeId: tapId,
        });
      };
      return (exchange) => {
        const tap = exchange.copy();
        tap.pattern = 'InOnly';
        // Started a microtask later, so the original does not wait for even the synchronous part of the tap.
        const sending = Promise.resolve().then(() => producer.process(tap));
        pending.add(
          sending.then(
            () => {
              if (tap.exception !== undefined) report(tap.id, exchange.id, tap.exception);
            },
            (err: unknown) => report(tap.id, exchange.id, err),
          ),
        );
      };
    },
  };
}
