import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describeMembers, MS, reportRealClusterSkip, type MembersHarness } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';

reportRealClusterSkip('members-singleton.test');

/** The member app: a singleton service on lock `svc` with a 100 ms loop gated by isLeader(). */
const SERVICE = fileURLToPath(new URL('fixtures/singleton', import.meta.url));
const PERIOD = 100;

interface Line {
  member: string;
  what: string;
  at: bigint;
  token: number;
}

async function lines(h: MembersHarness): Promise<Line[]> {
  const text = await readFile(h.records, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [member, what, at, token] = line.split(' ');
      return { member: member!, what: what!, at: BigInt(at!), token: Number(token) };
    })
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

/** The member doing units of work after `since`, once it has done three in a row. */
async function currentWorker(h: MembersHarness, since = 0n): Promise<string> {
  return waitFor(
    async () => {
      const last = (await lines(h)).filter((l) => l.what === 'unit' && l.at > since).slice(-3);
      return last.length === 3 && last.every((l) => l.member === last[0]!.member) ? last[0]!.member : undefined;
    },
    { timeout: 15_000 + 2 * h.ACQUIRE_DELAY, message: 'a member to do units of work steadily' },
  );
}

/** The singleton's leader, once every running member has seen it lead (so each starts its lease clock from it). */
async function settledWorker(h: MembersHarness): Promise<string> {
  const worker = await currentWorker(h);
  const running = [...h.members.values()].filter((m) => m.running);
  await waitFor(() => running.every((m) => m.output.includes(`member ${worker} is now leader of svc`)), { timeout: 15_000, message: `every member to see ${worker} lead svc` });
  return worker;
}

/**
 * Issue 10 case 5: a custom singleton service with a 100 ms loop. Paused (SIGSTOP) past its lease
 * and resumed (SIGCONT), the old leader's loop is due at once, before any of its timers has noticed
 * the lapse; without a gate it did one more unit of work while another member led. The gate,
 * isLeader(), is judged on the monotonic clock, so it is already false then.
 */
describeMembers('custom singleton service gated by its leadership term', (h) => {
  if (!h.configMapMode) {
    it('a leader paused past its lease (SIGSTOP) does no unit of work after SIGCONT while another member leads, and its fencing token is lower than the new leader’s', async () => {
      for (const name of ['m1', 'm2', 'm3']) h.start(name, { routes: SERVICE });
      const victim = await settledWorker(h);
      const stoppedAt = h.now();
      h.members.get(victim)!.signal('SIGSTOP');
      const next = await currentWorker(h, stoppedAt);
      expect(next).not.to.equal(victim);
      const resumedAt = h.now();
      h.members.get(victim)!.signal('SIGCONT');
      // The resumed member's loop is due at once; its term's signal fires when it notices the lapse.
      await waitFor(async () => (await lines(h)).some((l) => l.member === victim && l.what === 'service-stop' && l.at > resumedAt), {
        timeout: 10_000,
        message: `${victim} to stop its service after SIGCONT`,
      });
      // Several periods of its loop, and its renewal attempts, after the resume.
      const until = h.now() + BigInt(h.RENEW + h.RETRY + 3 * PERIOD) * MS;
      await waitFor(async () => (await lines(h)).some((l) => l.at > until), { timeout: 10_000 });
      const all = await lines(h);
      const afterResume = all.filter((l) => l.what === 'unit' && l.member === victim && l.at > resumedAt);
      expect(afterResume, `${victim} did units of work after resuming, while ${next} led`).to.deep.equal([]);
      // Never two at once: every unit of the old leader comes before the new leader's first.
      const firstOfNext = all.find((l) => l.what === 'unit' && l.member === next)!.at;
      expect(all.filter((l) => l.what === 'unit' && l.member === victim && l.at > firstOfNext)).to.deep.equal([]);
      // Fencing tokens: the new leader's term is numbered above the old one's.
      const victimTokens = all.filter((l) => l.member === victim && l.what === 'unit').map((l) => l.token);
      const nextTokens = all.filter((l) => l.member === next && l.what === 'unit').map((l) => l.token);
      expect(Math.min(...nextTokens), 'the new leader’s fencing token').to.be.greaterThan(Math.max(...victimTokens));
    });
  } else {
    // A stopped process keeps its pod Ready, so nobody may take the lock from it: no other member
    // leads, and the case is the resumed member alone. Its renewDeadline has passed on SIGCONT, so
    // the term its loop runs for has ended: no unit of work until it leads again, a new term after
    // acquireDelay with a new start.
    it('a leader paused past its lease (SIGSTOP) keeps a Ready pod: nobody else works, and after SIGCONT it does no unit of work until a new term starts, not sooner than acquireDelay', async () => {
      for (const name of ['m1', 'm2', 'm3']) h.start(name, { routes: SERVICE });
      const victim = await settledWorker(h);
      const stoppedAt = h.now();
      h.members.get(victim)!.signal('SIGSTOP');
      await h.followersPolledPastLease(victim, Date.now());
      const resumedAt = h.now();
      h.members.get(victim)!.signal('SIGCONT');
      const next = await currentWorker(h, resumedAt);
      const all = await lines(h);
      expect(next).to.equal(victim);
      const whileStopped = all.filter((l) => l.what === 'unit' && l.at > stoppedAt + BigInt(PERIOD) * MS && l.at < resumedAt);
      expect(whileStopped, 'units of work while the holder was stopped').to.deep.equal([]);
      const stop = all.find((l) => l.what === 'service-stop' && l.at > resumedAt);
      const restart = all.find((l) => l.what === 'service-start' && l.at > resumedAt);
      const firstUnit = all.find((l) => l.what === 'unit' && l.at > resumedAt)!;
      expect(stop, 'the old term’s service stopped after SIGCONT').not.to.equal(undefined);
      expect(restart, 'a start for the new term').not.to.equal(undefined);
      expect(stop!.at < restart!.at && restart!.at <= firstUnit.at, 'the old term stopped before the new one started its first unit').to.equal(true);
      expect(h.msSince(resumedAt, firstUnit.at)).to.be.at.least(h.ACQUIRE_DELAY);
    });
  }
});
