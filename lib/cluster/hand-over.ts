import type { EventEmitter } from 'node:events';
import type { ClusterViewEvents, HandOverEvent } from './cluster-service.ts';

/**
 * Emits a view's `handover` event (see HandOverEvent) and waits for what its listeners deferred: true
 * once every one drained, false when one could not or failed. Shared by the elector's and the server
 * backends' views, which hand over the same way.
 */
export async function askListenersToHandOver(view: EventEmitter<ClusterViewEvents>, lock: string, to: string, timeoutMs: number): Promise<boolean> {
  const waits: Promise<boolean>[] = [];
  view.emit('handover', { lock, to, timeoutMs, defer: (drained) => void waits.push(drained) } satisfies HandOverEvent);
  return (await Promise.all(waits.map((w) => w.catch(() => false)))).every(Boolean);
}
