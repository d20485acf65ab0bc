import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { ElectorClusterService } from '../lib/cluster/elector-cluster-service.ts';
import { FileLockStore } from '../lib/cluster/file/file-lock-store.ts';
import { validateTimings } from '../lib/cluster/election/timings.ts';
import { assignLocks } from '../lib/cluster/rebalance.ts';
import { PartitionableStore } from '../test/support/partitionable-store.ts';
import { fmt, median, printTable } from './measure.ts';

const TRIALS = 5;
const LOCKS = Array.from({ length: 10 }, (_, i) => `lock${i}`);
// The failover bench's timings: client-go's defaults scaled down ten times.
const timings = validateTimings({ leaseDuration: 1500, renewDeadline: 1000, retryPeriod: 200 });
const logger = winston.createLogger({ silent: true });

function waitUntil(check: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve(performance.now()) : setTimeout(poll, 2));
    poll();
  });
}

interface Member {
  service: ElectorClusterService;
  link: PartitionableStore;
}

async function member(root: string, id: string): Promise<Member> {
  const link = new PartitionableStore(new FileLockStore(root, { memberTimeout: timings.leaseDuration }), { watch: true, members: true });
  const service = new ElectorClusterService({ kind: 'file', memberId: id, store: link, timings, logger, rebalance: true });
  for (const lock of LOCKS) service.view(lock);
  await service.start();
  return { service, link };
}

/** Resolves when each lock is led by its assignee among `members`, and by no other member. */
function balanced(members: Member[], everyone: Member[]): Promise<number> {
  const target = assignLocks(
    LOCKS,
    members.map((m) => m.service.memberId),
  );
  return waitUntil(() =>
    LOCKS.every((lock) => everyone.filter((m) => m.service.isLeader(lock)).map((m) => m.service.memberId).join() === target.get(lock)),
  );
}

/** One trial: 10 locks; a first member, a second and a third join, then the third crashes. Milliseconds to balance after each step. */
async function trial(root: string, n: number): Promise<{ second: number; third: number; crash: number }> {
  const m1 = await member(root, `t${n}-m1`);
  await balanced([m1], [m1]);
  let t0 = performance.now();
  const m2 = await member(root, `t${n}-m2`);
  const second = (await balanced([m1, m2], [m1, m2])) - t0;
  t0 = performance.now();
  const m3 = await member(root, `t${n}-m3`);
  const third = (await balanced([m1, m2, m3], [m1, m2, m3])) - t0;
  t0 = performance.now();
  m3.link.cut();
  const crash = (await balanced([m1, m2], [m1, m2])) - t0;
  for (const m of [m1, m2]) m.link.cut();
  await Promise.all([m1, m2, m3].map((m) => m.service.stop()));
  return { second, third, crash };
}

export async function run(): Promise<void> {
  const results = { second: [] as number[], third: [] as number[], crash: [] as number[] };
  for (let i = 0; i < TRIALS; i += 1) {
    // A folder per trial: each trial's members see only each other's heartbeats.
    const root = await mkdtemp(join(tmpdir(), 'dromedary-bench-rebalance-'));
    try {
      const r = await trial(root, i);
      results.second.push(r.second);
      results.third.push(r.third);
      results.crash.push(r.crash);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }
  const t = `lease ${timings.leaseDuration}ms, renew ${timings.renewDeadline}ms, retry ${timings.retryPeriod}ms`;
  const row = (name: string, values: number[], note: string) => {
    const ms = median(values);
    return {
      name,
      value: `${fmt(ms, 0)} ms`,
      baseline: `${timings.leaseDuration} ms (leaseDuration)`,
      ratio: (ms / timings.leaseDuration).toFixed(2),
      note: `${(ms / timings.retryPeriod).toFixed(1)} renew periods (retryPeriod); ${note}`,
    };
  };
  printTable(`Rebalancing on the file backend (10 locks, ${TRIALS} trials, medians; ${t})`, [
    row('a second member joins: 5 and 5', results.second, 'from its start to every lock led by its assignee'),
    row('a third member joins: 4, 3, 3', results.third, 'same'),
    row('the third crashes: 5 and 5 again', results.crash, 'its leases and heartbeats run out first (one lease)'),
  ]);
}
