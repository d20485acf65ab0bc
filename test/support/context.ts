import { Context, type ContextOptions } from '../../lib/engine/context.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { captureLogger } from './capture-logger.ts';

export type StartContextOptions = Pick<ContextOptions, 'shutdownTimeout' | 'components'>;

/** A started context with the given routes and a capturing logger; stop it in afterEach. */
export async function startContext(routes: (r: RouteBuilder) => void, options: StartContextOptions = {}) {
  const capture = captureLogger();
  const context = new Context({ logger: capture.logger, shutdownTimeout: options.shutdownTimeout, components: options.components });
  await context.addRoutes(routes);
  await context.start();
  return { context, template: context.createProducerTemplate(), ...capture };
}

/**
 * Call inside a describe: returns startContext for its tests and registers an afterEach that stops
 * every context a test started. A test may stop one itself first (stop is idempotent).
 */
export function startContextStoppedAfterEach(): typeof startContext {
  const started: Context[] = [];
  afterEach(async () => {
    for (const context of started.splice(0).reverse()) await context.stop();
  });
  return async (routes, options) => {
    const result = await startContext(routes, options);
    started.push(result.context);
    return result;
  };
}
