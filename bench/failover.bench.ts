import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { Elector } from '../lib/cluster/election/elector.ts';
import { FileLockStore } from '../lib/cluster/file/file-lock-store.ts';
import { validateTimings } from '../lib/cluster/election/timings.ts';
import { PartitionableStore } from '../test/support/partitionable-store.ts';
import { fmt, median, printTable } from './measure.ts';

const TRIALS = 10;
// Client-go's defaults scaled down ten times, so ten crash trials take seconds, not minutes.
const timings = validateTimings({ leaseDuration: 1500, renewDeadline: 1000, retryPeriod: 200 });
const logger = winston.createLogger({ silent: true });

function waitUntil(check: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve(performance.now()) : setImmediate(poll));
    poll();
  });
}

/** One trial: 3 members on a fresh lock; the leader is stopped gracefully or cut off; returns ms until another leads. */
async function trial(root: string, lock: string, mode: 'graceful' | 'crash', reference: boolean): Promise<number> {
  const links = [0, 1, 2].map(() => new PartitionableStore(new FileLockStore(root), { watch: !reference }));
  const electors = links.map(
    (link, i) => new Elector({ lock, memberId: `m${i}`, store: link, timings, logger, callTimeout: timings.retryPeriod }),
  );
  for (const e of electors) e.start();
  await waitUntil(() => electors.some((e) => e.isLeader));
  // Let followers observe the leader's renewals, as in a running cluster.
  await new Promise((r) => setTimeout(r, timings.retryPeriod * 2));
  const leaderIndex = electors.findIndex((e) => e.isLeader);
  const t0 = performance.now();
  if (mode === 'graceful') {
    // The reference is client-go without ReleaseOnCancel: the old leader simply stops renewing.
    if (reference) links[leaderIndex]!.cut();
    else await electors[leaderIndex]!.stop();
  } else {
    links[leaderIndex]!.cut();
  }
  const t1 = await waitUntil(() => electors.some((e, i) => i !== leaderIndex && e.isLeader));
  for (const l of links) l.cut();
  await Promise.all(electors.map((e) => e.stop()));
  return t1 - t0;
}

export async function run(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'dromedary-bench-failover-'));
  try {
    const results: Record<string, number[]> = { graceful: [], crash: [], refGraceful: [] };
    for (let i = 0; i < TRIALS; i += 1) {
      results.graceful!.push(await trial(root, `g${i}`, 'graceful', false));
      results.refGraceful!.push(await trial(root, `r${i}`, 'graceful', true));
      results.crash!.push(await trial(root, `c${i}`, 'crash', false));
    }
    const graceful = median(results.graceful!);
    const crash = median(results.crash!);
    const reference = median(results.refGraceful!);
    const t = `lease ${timings.leaseDuration}ms, renew ${timings.renewDeadline}ms, retry ${timings.retryPeriod}ms`;
    printTable(`Failover on the file backend (3 members, ${TRIALS} trials each, medians; ${t})`, [
      {
        name: 'graceful handover (leader stops, releases)',
        value: `${fmt(graceful, 1)} ms`,
        baseline: `${fmt(reference, 1)} ms (client-go loop: no release, no watch)`,
        ratio: (graceful / reference).toFixed(3),
        note: `vs leaseDuration: ${(graceful / timings.leaseDuration).toFixed(3)}`,
      },
      {
        name: 'crash failover (leader cut off)',
        value: `${fmt(crash, 1)} ms`,
        baseline: `${timings.leaseDuration} ms (leaseDuration)`,
        ratio: (crash / timings.leaseDuration).toFixed(3),
        note: `bound leaseDuration + retryPeriod = ${timings.leaseDuration + timings.retryPeriod} ms`,
      },
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  // The backends on real servers (etcd, …): same measures, against their own reference recipes.
  await (await import('./servers.bench.ts')).run();
}
