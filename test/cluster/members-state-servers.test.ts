import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { describeMembers, type Entry, type MembersHarness } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';

/** The member app: a singleton on lock `svc` that counts in the lock's leader state every 100 ms. */
const SERVICE = fileURLToPath(new URL('fixtures/state-servers', import.meta.url));

const numberOf = (e: Entry) => Number(e.what.slice(e.what.indexOf('-') + 1));
const is = (e: Entry, kind: string) => e.what.startsWith(`${kind}-`);

/** The member saving the count, once it has saved a few times and every running member has seen it lead. */
async function settledCounter(h: MembersHarness): Promise<string> {
  const counter = await waitFor(
    async () => {
      const saved = (await h.entries()).filter((e) => is(e, 'saved')).slice(-3);
      return saved.length === 3 && saved.every((e) => e.member === saved[0]!.member) ? saved[0]!.member : undefined;
    },
    { timeout: 15_000, message: 'a member to save the count steadily' },
  );
  const running = [...h.members.values()].filter((m) => m.running);
  await waitFor(() => running.every((m) => m.output.includes(`member ${counter} is now leader of svc`)), { timeout: 15_000, message: `every member to see ${counter} lead svc` });
  return counter;
}

/** The member whose term started after `since`, once it has saved twice: its resume record and the term's records. */
async function nextCounter(h: MembersHarness, since: bigint, not: string): Promise<{ member: string; resumed: number; token: number }> {
  return waitFor(
    async () => {
      const all = await h.entries();
      const resume = all.find((e) => is(e, 'resume') && e.at > since && e.member !== not);
      if (!resume) return undefined;
      const saved = all.filter((e) => is(e, 'saved') && e.member === resume.member && e.token === resume.token);
      return saved.length >= 2 ? { member: resume.member, resumed: numberOf(resume), token: resume.token } : undefined;
    },
    { timeout: 15_000 + h.LEASE, message: 'another member to resume the count and save it' },
  );
}

/**
 * The next leader starts from what the last one saved: no lower than the last write the server
 * confirmed to it, no higher than the last it tried (one in flight may have landed unconfirmed).
 * Its own saves then go on from there, each higher than the last.
 */
function expectContinued(all: Entry[], victim: string, before: bigint, next: { member: string; resumed: number; token: number }): void {
  const confirmed = all.filter((e) => e.member === victim && is(e, 'saved') && e.at < before).map(numberOf);
  const tried = all.filter((e) => e.member === victim && (is(e, 'try') || is(e, 'stale')) && e.at < before).map(numberOf);
  expect(confirmed.length, `${victim} saved before the fault`).to.be.greaterThan(0);
  expect(next.resumed, 'the count the next leader resumed from').to.be.within(Math.max(...confirmed), Math.max(...tried));
  const saves = all.filter((e) => e.member === next.member && e.token === next.token && is(e, 'saved')).map(numberOf);
  expect(Math.min(...saves)).to.be.greaterThan(next.resumed);
}

describeMembers(
  'leader state that moves with leadership',
  (h) => {
    const start = (name: string) => h.start(name, { routes: SERVICE });

    it('a leader paused past its lease (SIGSTOP): the next leader continues its count, and after SIGCONT the old leader\'s write is refused', async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await settledCounter(h);
      const stoppedAt = h.now();
      h.members.get(victim)!.signal('SIGSTOP');
      const next = await nextCounter(h, stoppedAt, victim);
      const resumedAt = h.now();
      h.members.get(victim)!.signal('SIGCONT');
      await waitFor(async () => (await h.entries()).some((e) => e.member === victim && e.what === 'refused-LeadershipLostError' && e.at > resumedAt), {
        timeout: h.RENEW + h.MARGIN + 5000,
        message: `${victim}'s write after SIGCONT to be refused`,
      });
      const all = await h.entries();
      expectContinued(all, victim, stoppedAt, next);
      // What the old leader saw confirmed after SIGCONT had reached the server before it stopped, so before the next leader read.
      const late = all.filter((e) => e.member === victim && is(e, 'saved') && e.at > resumedAt).map(numberOf);
      for (const n of late) expect(n).to.be.at.most(next.resumed);
      // Its attempts after the resume are all refused: no confirmed value of its term is above what the next leader read.
      const stale = all.filter((e) => e.member === victim && is(e, 'stale') && e.at > resumedAt);
      expect(stale.length, `${victim} tried a write once its term ended`).to.be.greaterThan(0);
    });

    it('a leader killed (SIGKILL): the next leader continues from the last count the server confirmed', async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await settledCounter(h);
      const killedAt = h.now();
      h.kill(victim);
      const next = await nextCounter(h, killedAt, victim);
      expectContinued(await h.entries(), victim, killedAt, next);
    });

    it('a leader stopped gracefully (SIGTERM): the next leader continues its count from the last one saved', async () => {
      for (const name of ['m1', 'm2']) start(name);
      const victim = await settledCounter(h);
      const stoppedAt = h.now();
      await h.terminate(victim);
      const next = await nextCounter(h, stoppedAt, victim);
      const all = await h.entries();
      expectContinued(all, victim, h.now(), next);
      // The stopping leader's last write after its term ended was refused, not stored.
      expect(all.some((e) => e.member === victim && e.what === 'refused-LeadershipLostError')).to.equal(true);
    });
  },
  { clusters: ['etcd', 'postgres', 'zookeeper'] },
);
