import { Context } from '../../lib/engine/context.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { captureLogger } from './capture-logger.ts';

/** A started context with the given routes and a capturing logger; stop it in afterEach. */
export async function startContext(routes: (r: RouteBuilder) => void, options: { shutdownTimeout?: number } = {}) {
  const capture = captureLogger();
  const context = new Context({ logger: capture.logger, shutdownTimeout: options.shutdownTimeout });
  await context.addRoutes(routes);
  await context.start();
  return { context, template: context.createProducerTemplate(), ...capture };
}
