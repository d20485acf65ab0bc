import { resolve } from 'node:path';
import { Context } from '../engine/context.ts';
import { createClusterService, resolveClusterConfig, type ClusterFlags } from '../cluster/config.ts';
import { CLUSTER_SERVICE } from '../components/master/master-component.ts';
import { DromedaryError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { discoverRouteFiles, loadRouteFiles } from './route-loader.ts';

export interface RunOptions {
  paths: string[];
  logger: Logger;
  shutdownTimeout?: number;
  cluster?: ClusterFlags;
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
  // One cluster service per process, shared by every master: route and by route files' own code.
  const clusterConfig = resolveClusterConfig({ flags: options.cluster, appKey: options.paths.map((p) => resolve(p)).join('\n') });
  const cluster = await createClusterService(clusterConfig, logger);
  const context = new Context({ logger, shutdownTimeout: options.shutdownTimeout });
  context.addService(CLUSTER_SERVICE, cluster);
  const definitions = await loadRouteFiles(files, { context, cluster });
  if (definitions.length === 0) {
    throw new DromedaryError('NO_ROUTES', `The route files in ${options.paths.join(', ')} define no routes: call from('...') in them`);
  }
  await context.addRoutes(definitions);

  const stopped = new Promise<number>((resolveExit) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals | 'supervisor exit') => {
      if (stopping && signal === 'supervisor exit') return;
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
    if (process.env.DROMEDARY_REPLICA_CHILD === '1') {
      // A member of --replicas: when the supervisor dies, even by SIGKILL, its end of stdin closes.
      process.stdin.on('end', () => onSignal('supervisor exit')).on('error', () => onSignal('supervisor exit')).resume();
    }
  });

  try {
    await context.start();
  } catch (err) {
    await context.stop().catch(() => undefined);
    throw err;
  }
  return stopped;
}
