import { Context } from '../engine/context.ts';
import { DromedaryError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { discoverRouteFiles, loadRouteFiles } from './route-loader.ts';

export interface RunOptions {
  paths: string[];
  logger: Logger;
  shutdownTimeout?: number;
}

/**
 * `dromedary run`: loads the route files, starts a context and runs until SIGINT or SIGTERM, then
 * shuts down gracefully. Resolves with the process exit code.
 */
export async function runRoutes(options: RunOptions): Promise<number> {
  const { logger } = options;
  const files = await discoverRouteFiles(options.paths);
  if (files.length === 0) {
    throw new DromedaryError(
      'NO_ROUTES',
      `No route files found in ${options.paths.join(', ')} (looked for .ts, .mts, .js and .mjs files not starting with _)`,
    );
  }
  const definitions = await loadRouteFiles(files);
  if (definitions.length === 0) {
    throw new DromedaryError('NO_ROUTES', `The route files in ${options.paths.join(', ')} define no routes: call from('...') in them`);
  }
  const context = new Context({ logger, shutdownTimeout: options.shutdownTimeout });
  await context.addRoutes(definitions);

  const stopped = new Promise<number>((resolveExit) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`Received ${signal} again: exiting without waiting for in-flight exchanges`);
        resolveExit(130);
        return;
      }
      stopping = true;
      logger.info(`Received ${signal}: shutting down`);
      context.stop().then(
        () => resolveExit(0),
        (err: unknown) => {
          logger.error(`Shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
          resolveExit(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  try {
    await context.start();
  } catch (err) {
    await context.stop().catch(() => undefined);
    throw err;
  }
  return stopped;
}
