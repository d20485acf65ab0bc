import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describeMembers, MS, reportRealClusterSkip, type MembersHarness } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';

reportRealClusterSkip('members-fencing.test');

/** The member app: a master route on lock1 spending SLOW ms inside each exchange, between `begin` and `end`. */
const SLOW_ROUTE = fileURLToPath(new URL('fixtures/fencing', import.meta.url));
const SLOW = 1500;

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

/** The member running lock1's exchanges after `since`, once it has begun two. */
async function currentRunner(h: MembersHarness, since = 0n): Promise<string> {
  return waitFor(
    async () => {
      const last = (await lines(h)).filter((l) => l.what === 'begin' && l.at > since).slice(-2);
      return last.length === 2 && last[0]!.member === last[1]!.member ? last[0]!.member : undefined;
    },
    { timeout: 15_000 + 2 * h.ACQUIRE_DELAY + 2 * SLOW, message: 'a member to run lock1 steadily' },
  );
}

/**
 * Starts three members and pauses (SIGSTOP) the leader while one of its exchanges is inside the
 * route: its last record is a `begin` made less than SLOW/2 ago, so the `end` is still to come.
 */
async function pauseLeaderMidExchange(h: MembersHarness): Promise<{ victim: string; stoppedAt: bigint; inFlight: Line }> {
  for (const name of ['m1', 'm2', 'm3']) h.start(name, { routes: SLOW_ROUTE, env: { SLOW_MS: String(SLOW) } });
  const victim = await currentRunner(h);
  const running = [...h.members.values()];
  await waitFor(() => running.every((m) => m.output.includes(`member ${victim} is now leader of lock1`)), { timeout: 15_000, message: `every member to see ${victim} lead lock1` });
  const inFlight = await waitFor(
    async () => {
      const last = (await lines(h)).filter((l) => l.member === victim).at(-1);
      return last?.what === 'begin' && h.now() - last.at < BigInt(SLOW / 2) * MS ? last : undefined;
    },
    { timeout: 3 * SLOW, message: `${victim} to begin an exchange` },
  );
  const stoppedAt = h.now();
  h.members.get(victim)!.signal('SIGSTOP');
  return { victim, stoppedAt, inFlight };
}

/**
 * Issue 10 case 6: an exchange already inside a master route when leadership lapses (the leader
 * was paused) ran to its end on resume, while another member led. The engine now checks the term
 * before each step: the exchange stops before its next step with a LeadershipLostError.
 */
describeMembers('fencing: a master route exchange stops when its leadership term ends', (h) => {
  const stoppedLine = /Exchange \S+ on route slow .* stopped: Member \S+ no longer leads lock1 \(term \d+\): .*stopped before its next step/;

  if (!h.configMapMode) {
    it('a leader paused mid-exchange past its lease does not finish the exchange after SIGCONT while another member leads, and its fencing token is lower than the new leader’s', async () => {
      const { victim, stoppedAt, inFlight } = await pauseLeaderMidExchange(h);
      const next = await currentRunner(h, stoppedAt);
      expect(next).not.to.equal(victim);
      const resumedAt = h.now();
      h.members.get(victim)!.signal('SIGCONT');
      // The in-flight exchange's wait is overdue on resume: its next step comes at once, and is refused.
      await h.members.get(victim)!.waitForLine(stoppedLine, 10_000);
      const all = await lines(h);
      expect(all.filter((l) => l.member === victim && l.at > inFlight.at && l.at < resumedAt), 'the pause caught the exchange mid-flight').to.deep.equal([]);
      const finished = all.filter((l) => l.member === victim && l.what === 'end' && l.at > inFlight.at);
      expect(finished, `${victim} finished its exchange after resuming, while ${next} led`).to.deep.equal([]);
      const victimTokens = all.filter((l) => l.member === victim).map((l) => l.token);
      const nextTokens = all.filter((l) => l.member === next).map((l) => l.token);
      expect(nextTokens.every((t) => Number.isInteger(t)) && victimTokens.every((t) => Number.isInteger(t)), 'every exchange carries DromedaryFencingToken').to.equal(true);
      expect(Math.min(...nextTokens), 'the new leader’s fencing token').to.be.greaterThan(Math.max(...victimTokens));
    });
  } else {
    // A stopped process keeps its pod Ready, so nobody may take the lock from it: no other member
    // leads. On SIGCONT its renewDeadline has passed, so the exchange's term has ended: it stops
    // before its next step, and the route runs again only in the new term, after acquireDelay.
    it('a leader paused mid-exchange past its lease keeps a Ready pod: after SIGCONT the exchange of the ended term stops before its next step, and the route runs again only after acquireDelay', async () => {
      const { victim, stoppedAt, inFlight } = await pauseLeaderMidExchange(h);
      await h.followersPolledPastLease(victim, Date.now());
      const resumedAt = h.now();
      h.members.get(victim)!.signal('SIGCONT');
      await h.members.get(victim)!.waitForLine(stoppedLine, 10_000);
      const next = await currentRunner(h, resumedAt);
      expect(next).to.equal(victim);
      const all = await lines(h);
      expect(all.filter((l) => l.at > stoppedAt + 50n * MS && l.at < resumedAt), 'records while the holder was stopped').to.deep.equal([]);
      const firstAfter = all.find((l) => l.member === victim && l.at > inFlight.at)!;
      expect(firstAfter.what, 'the exchange of the ended term did not finish').to.equal('begin');
      expect(h.msSince(resumedAt, firstAfter.at)).to.be.at.least(h.ACQUIRE_DELAY);
    });
  }
});
