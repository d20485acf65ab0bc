import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMembers, reportRealClusterSkip, type Entry, type MembersHarness } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';
import { leaseName, STATE_ANNOTATION } from '../../lib/cluster/kubernetes/lease-store.ts';
import { parseState } from '../../lib/cluster/state-value.ts';
import type { LockRecord } from '../../lib/cluster/election/lock-store.ts';

reportRealClusterSkip('members-leader-state.test');

/** The member app: a singleton on lock `svc` that counts in the lock's leader state, saving every 100 ms. */
const SERVICE = fileURLToPath(new URL('fixtures/leader-state', import.meta.url));

interface Progress {
  n: number;
  by: string;
}

/** `saved:12` → 12, for the entries of one kind. */
const numbers = (entries: Entry[], kind: 'saved' | 'resume', member?: string) =>
  entries.filter((e) => e.what.startsWith(`${kind}:`) && (member === undefined || e.member === member)).map((e) => Number(e.what.slice(kind.length + 1)));

/** The member saving now, once its last three saves are its own, after `since`. */
async function saver(h: MembersHarness, since = 0n): Promise<string> {
  return waitFor(
    async () => {
      const last = (await h.entries()).filter((e) => e.what.startsWith('saved:') && e.at > since).slice(-3);
      return last.length === 3 && last.every((e) => e.member === last[0]!.member) ? last[0]!.member : undefined;
    },
    { timeout: 15_000 + 2 * h.ACQUIRE_DELAY, message: 'a member to save steadily' },
  );
}

/** The saver, once every running member has seen it lead svc (so each starts its lease clock from it). */
async function settledSaver(h: MembersHarness): Promise<string> {
  const leader = await saver(h);
  const running = [...h.members.values()].filter((m) => m.running);
  await waitFor(() => running.every((m) => m.output.includes(`member ${leader} is now leader of svc`)), { timeout: 15_000, message: `every member to see ${leader} lead svc` });
  return leader;
}

/** The progress in the store now, read as an operator would: the newest record file, the Lease, the ConfigMap. */
async function stored(h: MembersHarness): Promise<Progress | undefined> {
  let state: LockRecord['state'];
  if (h.target.cluster === 'file') {
    const dir = join(h.dir, 'locks', 'svc');
    const newest = (await readdir(dir)).filter((n) => /^v\d+\.json$/.test(n)).sort().at(-1)!;
    state = (JSON.parse(await readFile(join(dir, newest), 'utf8')) as LockRecord).state;
  } else if (h.configMapMode) {
    const map = await h.janitor!.core.readNamespacedConfigMap({ name: `${h.run}-leaders`, namespace: h.janitor!.namespace });
    state = parseState(map.data?.['leader.state.svc']);
  } else {
    const lease = await h.janitor!.coordination.readNamespacedLease({ name: leaseName(h.run, 'svc'), namespace: h.janitor!.namespace });
    state = parseState(lease.metadata?.annotations?.[STATE_ANNOTATION]);
  }
  return state?.progress as Progress | undefined;
}

/**
 * Issue 14: leader state moves with leadership. Real member processes on the file backend and on
 * Kubernetes (Lease and ConfigMap modes); each saves a counter after every step of its work.
 */
describeMembers(
  'leader state (ClusterView.state) across members',
  (h) => {
    it('a leader paused past its lease (SIGSTOP) has its state write refused after SIGCONT: set() rejects with LeadershipLostError, and the store keeps the new leader’s state', async () => {
      for (const name of ['m1', 'm2', 'm3']) h.start(name, { routes: SERVICE });
      const victim = await settledSaver(h);
      const stoppedAt = h.now();
      h.members.get(victim)!.signal('SIGSTOP');
      // ConfigMap mode: a holder is valid while its pod is Ready, and a stopped process's pod stays
      // Ready; the kubelet would mark it not Ready once its probes time out, as it does here.
      if (h.configMapMode) h.server!.setPodStatus(victim, { ready: false }, h.NAMESPACE);
      const next = await saver(h, stoppedAt);
      expect(next).not.to.equal(victim);
      const resumedAt = h.now();
      h.members.get(victim)!.signal('SIGCONT');
      const refusal = await waitFor(async () => (await h.entries()).find((e) => e.member === victim && e.what.startsWith('refused:') && e.at > resumedAt), {
        timeout: 10_000,
        message: `${victim}'s set() after SIGCONT to be refused`,
      });
      expect(refusal.what).to.equal('refused:LEADERSHIP_LOST');
      // The new leader continues saving; the store holds its state, not the old leader's.
      const until = h.now();
      await waitFor(async () => (await h.entries()).some((e) => e.member === next && e.what.startsWith('saved:') && e.at > until), { timeout: 10_000 });
      const progress = await stored(h);
      expect(progress?.by, 'the member whose state the store holds').to.equal(next);
      const all = await h.entries();
      // Nothing the old leader saved is lost: the new leader resumed from its last save (or from
      // a save that reached the store before the pause, its answer not yet recorded).
      const victimSaves = numbers(all, 'saved', victim);
      const [resumed] = numbers(
        all.filter((e) => e.at > stoppedAt),
        'resume',
        next,
      );
      expect(resumed).to.be.oneOf([Math.max(...victimSaves), Math.max(...victimSaves) + 1]);
      // Every save of the old leader came before the new leader's first: no stale write after it.
      const firstOfNext = all.find((e) => e.member === next && e.what.startsWith('saved:'))!.at;
      expect(all.filter((e) => e.member === victim && e.what.startsWith('saved:') && e.at > firstOfNext)).to.deep.equal([]);
      expect(Math.min(...numbers(all, 'saved', next))).to.be.greaterThan(Math.max(...victimSaves));
    });

    it('the state survives a graceful handover: the next leader resumes from exactly what the old one saved last', async () => {
      h.start('m1', { routes: SERVICE });
      const first = await saver(h);
      for (const name of ['m2', 'm3']) h.start(name, { routes: SERVICE });
      await settledSaver(h);
      const stoppedAt = h.now();
      expect(await h.terminate(first)).to.equal(0);
      const next = await saver(h, stoppedAt);
      const all = await h.entries();
      const lastOfFirst = Math.max(...numbers(all, 'saved', first));
      expect(lastOfFirst).to.be.at.least(3);
      expect(numbers(all.filter((e) => e.at > stoppedAt), 'resume', next)[0]).to.equal(lastOfFirst);
    });

    it('the state survives a SIGKILL failover: the next leader resumes from the last save that reached the store', async () => {
      for (const name of ['m1', 'm2', 'm3']) h.start(name, { routes: SERVICE });
      const victim = await settledSaver(h);
      const killedAt = h.now();
      h.kill(victim);
      const next = await saver(h, killedAt);
      expect(next).not.to.equal(victim);
      const all = await h.entries();
      const lastOfVictim = Math.max(...numbers(all, 'saved', victim));
      // Killed between a write and its record, the store holds one more than the record says.
      expect(numbers(all.filter((e) => e.at > killedAt), 'resume', next)[0]).to.be.oneOf([lastOfVictim, lastOfVictim + 1]);
    });
  },
  { clusters: ['file', 'kubernetes'] },
);
