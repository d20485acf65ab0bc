import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import { ElectorClusterService } from '../lib/cluster/elector-cluster-service.ts';
import { FileLockStore } from '../lib/cluster/file/file-lock-store.ts';
import { createKubernetesClusterService } from '../lib/cluster/kubernetes/index.ts';
import { resolveClusterConfig } from '../lib/cluster/config.ts';
import { validateTimings } from '../lib/cluster/election/timings.ts';
import { startKubeApiServer } from '../lib/testing/index.ts';
import type { ClusterService } from '../lib/cluster/cluster-service.ts';
import { fmt, printTable, type Row } from './measure.ts';

// The default timings (retryPeriod 2 s) and http-poll's default delay (1 s) scaled down ten times,
// so each window holds dozens of renewals and polls in seconds.
const timings = validateTimings({ leaseDuration: 1500, renewDeadline: 1000, retryPeriod: 200 });
const POLL_DELAY = 100;
const WINDOW = 8000;
const logger = winston.createLogger({ silent: true });

type Loop = 'idle' | 'poller' | 'back-to-back';

/**
 * One leader of one lock for WINDOW ms: idle (its renewals only), or running a poller-like loop that
 * saves its cursor in the leader state after every batch (a batch every POLL_DELAY, or back to back).
 * Returns the store writes per second (every successful create and update: renewals and state writes)
 * and the saves per second.
 */
async function window(service: ClusterService, lock: string, loop: Loop): Promise<{ writes: number; saves: number }> {
  const view = service.view(lock);
  const deadline = performance.now() + 10_000;
  while (!view.isLeader) {
    if (performance.now() > deadline) throw new Error(`no leadership of ${lock} within 10 s`);
    await sleep(10);
  }
  let writes = 0;
  const off = service.storeRequests!.onRequest((verb, outcome) => {
    if ((verb === 'update' || verb === 'create') && outcome === 'ok') writes += 1;
  });
  let running = loop !== 'idle';
  let saves = 0;
  const poller = (async () => {
    let since = 0;
    while (running) {
      if (loop === 'poller') await sleep(POLL_DELAY);
      since += 25; // a batch of 25 items, done
      await view.state.set('http-poll://api/events', { since, etag: `W/"${since}"` });
      saves += 1;
    }
  })();
  await sleep(WINDOW);
  running = false;
  const seconds = WINDOW / 1000;
  const result = { writes: writes / seconds, saves: saves / seconds };
  off();
  await poller;
  await view.close();
  return result;
}

async function measure(title: string, service: ClusterService, renewEvery: number): Promise<void> {
  await service.start();
  try {
    const idle = await window(service, 'idle', 'idle');
    const poller = await window(service, 'poller', 'poller');
    const fast = await window(service, 'back-to-back', 'back-to-back');
    const row = (name: string, r: { writes: number; saves: number }): Row => ({
      name,
      value: `${fmt(r.writes, 2)} writes/s (${fmt(r.saves, 2)} saves/s)`,
      baseline: `${fmt(idle.writes, 2)} writes/s (the idle leader's renewals, every ${renewEvery} ms)`,
      ratio: (r.writes / idle.writes).toFixed(2),
      note: `extra ${fmt(r.writes - idle.writes, 2)} writes/s`,
    });
    printTable(`Leader state: store writes of a leader saving a cursor, ${title} (lease ${timings.leaseDuration}ms, renew ${timings.renewDeadline}ms, retry ${timings.retryPeriod}ms; ${WINDOW / 1000} s each)`, [
      row(`poller saving after every batch, a batch every ${POLL_DELAY} ms`, poller),
      row('poller saving after every batch, batches back to back (one save in flight at a time)', fast),
    ]);
  } finally {
    await service.stop();
  }
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dromedary-bench-state-'));
  const server = await startKubeApiServer({ tokens: { m1: {} } });
  try {
    const file = new ElectorClusterService({ kind: 'file', memberId: 'm1', store: new FileLockStore(join(dir, 'locks')), timings, logger });
    await measure('file backend', file, timings.retryPeriod);
    const kubeconfig = join(dir, 'm1.yaml');
    await writeFile(kubeconfig, server.kubeconfig({ token: 'm1' }));
    const config = resolveClusterConfig({ flags: { cluster: 'kubernetes', memberId: 'm1', timings }, env: { KUBECONFIG: kubeconfig, DROMEDARY_K8S_LEASE_PREFIX: 'bench' } });
    const lease = await createKubernetesClusterService(config, logger);
    await measure('Kubernetes Lease, API test server', lease, Math.max(timings.retryPeriod, Math.floor(timings.renewDeadline / 3)));
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
