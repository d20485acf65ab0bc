import { Context } from '../engine/context.ts';
import { createClusterService, resolveClusterConfig, type ClusterFlags } from '../cluster/config.ts';
import { CLUSTER_SERVICE } from '../components/master/master-component.ts';
import { closeSingletons } from '../cluster/singleton-registry.ts';
import { DromedaryError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { discoverRouteFiles, loadRouteFiles } from './route-loader.ts';

export interface RunOptions {
  paths: string[];
  logger: Logger;
  shutdownTimeout?: number;
  cluster?: ClusterFlags;
  /** Serve /healthz, /readyz and /leadership on this port (0: any free port). */
  healthPort?: number;
  healthHost?: string;
  /** Values of `{{name}}` placeholders in endpoint URIs (--properties). */
  properties?: Record<string, string>;
  /** Aborted when the process should stop as on SIGTERM (the CLI: its stdout was closed). */
  stop?: AbortSignal;
}

/**
 * `dromedary run`: loads the route files, starts a context and runs until SIGINT or SIGTERM, then
 * shuts down gracefully. Resolves with the process exit code.
 */
export async function runRoutes(options: RunOptions): Promise<number> {
  const { logger } = options;
  // Signals are handled from the first moment, so a member stopped while still starting exits cleanly too.
  const shutdown = shutdownOnSignals(logger, options.stop);
  const files = await discoverRouteFiles(options.paths);
  if (files.length === 0) {
    throw new DromedaryError(
      'NO_ROUTES',
      `No route files found in ${options.paths.join(', ')} (looked for .ts, .mts, .js and .mjs files not starting with _)`,
    );
  }
  // One cluster service per process, shared by every master: route and by route files' own code.
  const clusterConfig = resolveClusterConfig({ flags: options.cluster });
  const cluster = await createClusterService(clusterConfig, logger);
  const context = new Context({ logger, shutdownTimeout: options.shutdownTimeout, properties: options.properties });
  context.addService(CLUSTER_SERVICE, cluster);
  // Services stop in reverse order, after the routes drained: the route files' singletons stop their
  // services and release their locks before the cluster service stops (which would release them first).
  context.addService('singletons', { start: async () => undefined, stop: () => closeSingletons(cluster) });
  const definitions = await loadRouteFiles(files, { context, cluster });
  if (definitions.length === 0) {
    throw new DromedaryError('NO_ROUTES', `The route files in ${options.paths.join(', ')} define no routes: call from('...') in them`);
  }
  await context.addRoutes(definitions);
  const health =
    options.healthPort === undefined
      ? undefined
      : await (await import('../health/health-server.ts')).startHealthServer({ context, cluster, port: options.healthPort, host: options.healthHost });
  if (health) logger.info(`Health endpoints on ${health.url}/healthz, /readyz and /leadership`);
  if (!shutdown.requested) {
    try {
      await context.start();
    } catch (err) {
      await context.stop().catch(() => undefined);
      await health?.close();
      throw err;
    }
  }
  return shutdown.afterSignal(async () => {
    await context.stop();
    await health?.close();
  });
}

/** How soon a repeat of the first stop signal counts as the same delivery (see onSignal). */
const REPEAT_WINDOW_MS = 500;

interface Shutdown {
  readonly requested: boolean;
  /** Resolves with the exit code once a signal came and `stop` finished (or a second signal forced it). */
  afterSignal(stop: () => Promise<void>): Promise<number>;
}

/** SIGINT/SIGTERM (and, for a --replicas member, its supervisor going away) start one graceful stop; a second signal forces exit. */
function shutdownOnSignals(logger: Logger, stop?: AbortSignal): Shutdown {
  let requested = false;
  let signalled!: () => void;
  let forced!: (code: number) => void;
  const signal = new Promise<void>((resolve) => (signalled = resolve));
  const force = new Promise<number>((resolve) => (forced = resolve));
  let first: { name: string; at: number } | undefined;
  const onSignal = (name: NodeJS.Signals | 'supervisor exit' | 'output closed') => {
    if (requested && (name === 'supervisor exit' || name === 'output closed')) return;
    // One stop delivered twice: a terminal's Ctrl-C reaches `npm start`'s npm and this process, and npm
    // forwards it. A deliberate second signal, to force the exit, comes later than this.
    if (requested && first?.name === name && performance.now() - first.at < REPEAT_WINDOW_MS) {
      logger.debug(`Received ${name} again at once: the same stop delivered twice, not a second one`);
      return;
    }
    if (requested) {
      logger.warn(`Received ${name} again: exiting without waiting for in-flight exchanges`);
      forced(130);
      return;
    }
    requested = true;
    first = { name, at: performance.now() };
    logger.info(`Received ${name}: shutting down`);
    signalled();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  stop?.addEventListener('abort', () => onSignal('output closed'), { once: true });
  if (process.env.DROMEDARY_REPLICA_CHILD === '1') {
    // A member of --replicas: when the supervisor dies, even by SIGKILL, its end of stdin closes.
    process.stdin.on('end', () => onSignal('supervisor exit')).on('error', () => onSignal('supervisor exit')).resume();
  }
  return {
    get requested() {
      return requested;
    },
    afterSignal(stop) {
      const graceful = signal.then(stop).then(
        () => 0,
        (err: unknown) => {
          logger.error(`Shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
          return 1;
        },
      );
      // Stay up until stopped, even when no route holds the event loop open (only direct: routes, a finished timer).
      const keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
      return Promise.race([graceful, force]).finally(() => clearInterval(keepAlive));
    },
  };
}
