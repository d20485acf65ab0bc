import type { Logger } from '../logging/logger.ts';
import type { ClusterService, LeadershipEvent } from './cluster-service.ts';
import { trackSingleton } from './singleton-registry.ts';

/** The seed's "custom singleton service": anything with start() and stop(). */
export interface SingletonService {
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

export interface SingletonHandle {
  /** Whether the service is started on this member now. */
  readonly running: boolean;
  /** Stops the service if it runs here and releases the view (and, if it was the last one, the lock). */
  close(): Promise<void>;
}

/**
 * Runs `service` only on the member that leads `lock`: started when this member becomes leader,
 * stopped when it loses leadership. Starts and stops are serialised, so there is never a second
 * start before the previous stop has finished. A start that throws is logged and tried again at
 * the next leadership change.
 */
export function singleton(cluster: ClusterService, lock: string, service: SingletonService, logger?: Logger): SingletonHandle {
  const view = cluster.view(lock);
  let running = false;
  let closed = false;
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (action: () => Promise<void>) => {
    queue = queue.then(action, action);
    return queue;
  };
  const apply = async (lead: boolean) => {
    if (lead && !running && !closed && view.isLeader) {
      try {
        await service.start();
        running = true;
      } catch (err) {
        logger?.error(`Singleton service for ${lock} failed to start: ${err instanceof Error ? err.message : String(err)}`, { lock });
      }
    } else if (!lead && running) {
      running = false;
      try {
        await service.stop();
      } catch (err) {
        logger?.error(`Singleton service for ${lock} failed to stop: ${err instanceof Error ? err.message : String(err)}`, { lock });
      }
    }
  };
  const onLeadership = (event: LeadershipEvent) => void enqueue(() => apply(event.isLocal));
  view.on('leadership', onLeadership);
  return trackSingleton(cluster, {
    get running() {
      return running;
    },
    async close() {
      if (closed) return queue;
      closed = true;
      view.off('leadership', onLeadership);
      await enqueue(() => apply(false));
      await view.close();
    },
  });
}
