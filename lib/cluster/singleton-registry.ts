import type { ClusterService } from './cluster-service.ts';
import type { SingletonHandle } from './singleton.ts';

const open = new WeakMap<ClusterService, Set<SingletonHandle>>();

/**
 * Keeps a singleton's handle, until it is closed, where the owner of the cluster service finds it:
 * a route file makes singletons and never closes them, so `dromedary run` closes them on shutdown.
 */
export function trackSingleton<H extends SingletonHandle>(cluster: ClusterService, handle: H): H {
  let handles = open.get(cluster);
  if (!handles) {
    handles = new Set();
    open.set(cluster, handles);
  }
  const mine = handles;
  mine.add(handle);
  const close = handle.close.bind(handle);
  handle.close = async () => {
    mine.delete(handle);
    await close();
  };
  return handle;
}

/**
 * Closes every singleton still open on the cluster service, newest first: each stops its service and
 * only then releases its view. Run before the cluster service stops: stopping it first would release
 * the locks while the services still run, and a follower could start its own at once.
 */
export async function closeSingletons(cluster: ClusterService): Promise<void> {
  for (const handle of [...(open.get(cluster) ?? [])].reverse()) await handle.close();
}
