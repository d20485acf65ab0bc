import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { describeMembers, MS, type Entry } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';

/** Faults of the backends that run on a real server the harness starts: the server and the network to it. */
const SERVER_ROUTES = fileURLToPath(new URL('./fixtures/servers', import.meta.url));

describeMembers(
  'clustered singleton routes on a real server',
  (h) => {
    const { LEASE, RENEW, RETRY, RETRIES, MARGIN } = h;
    const start = (name: string) => h.start(name, { routes: SERVER_ROUTES });
    const now = () => h.now();
    const lock1After = async (from: bigint) => (await h.entries()).filter((e) => e.what === 'lock1' && e.at > from);
    /** When lock1 first ran in a term that began after `from`. */
    const newTermAfter = async (from: bigint) => {
      const token = await waitFor(async () => (await h.entries()).find((e) => e.what.startsWith('token-') && e.at > from), { timeout: 10_000, message: 'a new term' });
      return (await waitFor(async () => (await lock1After(token.at)).find((e) => e.member === token.member), { timeout: 5000, message: 'the new leader to run lock1' })).at;
    };
    /** A follower takes over once the server ended the cut-off or crashed leader's session. */
    const failoverBound = Math.ceil(LEASE + RETRIES + MARGIN);
    /** Once the server is back, sessions that lapsed meanwhile are renewed or replaced, then someone leads. */
    const recoveryBound = Math.ceil(LEASE + 2 * RETRIES + MARGIN);

    it(`a leader cut off from the server stops within renewDeadline, and another member takes over within ${failoverBound} ms`, async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await h.settledRunner();
      const cutAt = now();
      h.backend!.cut(h.tokens.get(victim)!);
      const next = await h.currentRunner('lock1', cutAt + BigInt(RENEW) * MS);
      expect(next).not.to.equal(victim);
      const all = await h.entries();
      const takeover = all.find((e) => e.what === 'lock1' && e.member === next && e.at > cutAt)!.at;
      expect(h.msSince(cutAt, takeover)).to.be.below(failoverBound);
      // Its last keep-alive began before the cut, so its leadership ended by cutAt + renewDeadline.
      const late = all.filter((e) => e.what === 'lock1' && e.member === victim && e.at > cutAt + BigInt(RENEW + MARGIN) * MS);
      expect(late, 'exchanges of the cut-off leader after renewDeadline').to.deep.equal([]);
      const healedAt = now();
      h.backend!.heal(h.tokens.get(victim)!);
      await waitFor(async () => (await h.entries()).some((e) => e.at > healedAt + BigInt(RENEW + RETRY) * MS), { timeout: 10_000 });
      expect((await lock1After(healedAt)).filter((e) => e.member === victim)).to.deep.equal([]);
      h.assertNeverTwoAtOnce(await h.entries(), 'lock1');
    });

    it(`keeps one runner through a server restart, with a runner within ${recoveryBound} ms of the server being back`, async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      await h.settledRunner();
      const stoppedAt = now();
      // The server may answer members before the harness sees it ready: "down" ends when it starts.
      let startingAt = 0n;
      await h.backend!.restart(() => (startingAt = now()));
      const backAt = now();
      const first = await h.firstRunAfter(backAt);
      expect(h.msSince(backAt, first)).to.be.below(recoveryBound);
      if (h.msSince(stoppedAt, startingAt) > RENEW + MARGIN) {
        const down = (await h.entries()).filter((e) => e.what === 'lock1' && e.at > stoppedAt + BigInt(RENEW + MARGIN) * MS && e.at < startingAt);
        expect(down, 'exchanges while the server was down past renewDeadline').to.deep.equal([]);
      }
      h.assertNeverTwoAtOnce(await h.entries(), 'lock1');
    });

    it(`a server paused past the lease (SIGSTOP) stops the leader within renewDeadline; a runner within ${recoveryBound} ms of SIGCONT`, async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await h.settledRunner();
      const pausedAt = now();
      h.backend!.pause();
      await h.members.get(victim)!.waitForLine(/lost lock1: |could not renew lock1/, RENEW + 10_000);
      await waitFor(() => now() > pausedAt + BigInt(LEASE + MARGIN) * MS, { timeout: LEASE + MARGIN + 5000, message: 'the lease to pass' });
      const resumedAt = now();
      h.backend!.resume();
      const first = await h.firstRunAfter(resumedAt);
      expect(h.msSince(resumedAt, first)).to.be.below(recoveryBound);
      const whilePaused = (await h.entries()).filter((e) => e.what === 'lock1' && e.at > pausedAt + BigInt(RENEW + MARGIN) * MS && e.at < resumedAt);
      expect(whilePaused, 'exchanges while the server was paused past renewDeadline').to.deep.equal([]);
      h.assertNeverTwoAtOnce(await h.entries(), 'lock1');
    });

    it('after SIGTERM in the middle of an exchange, the next member starts only once that exchange ended', async () => {
      for (const name of ['m1', 'm2']) start(name);
      const victim = await h.currentRunner('slow-start');
      const from = now();
      await waitFor(async () => (await h.entries()).some((e) => e.what === 'slow-start' && e.member === victim && e.at > from), { timeout: 5000 });
      expect(await h.terminate(victim)).to.equal(0);
      const termAt = now();
      const next = await waitFor(async () => (await h.entries()).find((e) => e.what === 'slow-start' && e.member !== victim && e.at > from)?.member, {
        timeout: failoverBound + 5000,
        message: 'another member to run the slow route',
      });
      await waitFor(async () => (await h.entries()).some((e) => e.what === 'slow-end' && e.member === next), { timeout: 5000 });
      assertExchangesNeverOverlap(await h.entries());
      expect(h.msSince(from, termAt)).to.be.below(failoverBound + 5000);
    });

    it('fencing tokens strictly increase across terms, also when a member leads again', async () => {
      const first = start('m1');
      const token = async (member: string, after = 0n) =>
        waitFor(async () => (await h.entries()).find((e) => e.member === member && e.what.startsWith('token-') && e.at > after), {
          timeout: failoverBound + 5000,
          message: `${member} to start a term`,
        });
      const t1 = await token(first);
      const second = start('m2');
      await h.members.get(second)!.waitForLine(new RegExp(`member ${first} is now leader of lock1`));
      let at = now();
      expect(await h.terminate(first)).to.equal(0);
      const t2 = await token(second, at);
      h.start('m1', { routes: SERVER_ROUTES });
      await waitFor(() => [...h.members.values()].filter((m) => m.running).every((m) => m.output.includes(`member ${second} is now leader of lock1`)), { timeout: 10_000 });
      at = now();
      expect(await h.terminate(second)).to.equal(0);
      const t3 = await token(first, at);
      const tokens = [t1, t2, t3].map((e) => Number(e.what.slice('token-'.length)));
      expect(tokens[1]).to.be.greaterThan(tokens[0]!);
      expect(tokens[2]).to.be.greaterThan(tokens[1]!);
    });

    if (h.target.cluster === 'etcd') {
      it(`a leader whose etcd key is deleted by someone ends its term; a new leader, with a higher token, within ${Math.ceil(2 * RETRIES + MARGIN)} ms`, async () => {
        for (const name of ['m1', 'm2', 'm3']) start(name);
        const victim = await h.settledRunner();
        const before = (await h.entries()).filter((e) => e.what.startsWith('token-')).length;
        const deletedAt = now();
        await h.backend!.etcd.ctl('del', '--prefix', `/${h.run}/lock1/`);
        await h.members.get(victim)!.waitForLine(/its etcd key was deleted/);
        const first = await newTermAfter(deletedAt);
        expect(h.msSince(deletedAt, first)).to.be.below(Math.ceil(2 * RETRIES + MARGIN));
        const tokens = (await h.entries()).filter((e) => e.what.startsWith('token-')).map((e) => Number(e.what.slice('token-'.length)));
        expect(tokens.length).to.be.greaterThan(before);
        expect(tokens.at(-1)).to.be.greaterThan(tokens[before - 1]!);
        h.assertNeverTwoAtOnce(await h.entries(), 'lock1');
      });
    }

    if (h.target.cluster === 'postgres') {
      it(`a leader whose lease row is deleted by someone ends its term at its next renew; a new leader, with a higher token, within ${Math.ceil(RENEW + 2 * RETRIES + MARGIN)} ms`, async () => {
        for (const name of ['m1', 'm2', 'm3']) start(name);
        const victim = await h.settledRunner();
        const before = (await h.entries()).filter((e) => e.what.startsWith('token-')).length;
        const deletedAt = now();
        await h.backend!.postgres.sql(`DELETE FROM "${h.run}" WHERE lock = 'lock1'`);
        const first = await newTermAfter(deletedAt);
        // The leader notices at its next renew (every renewDeadline/3); until then nobody else may lead.
        expect(h.msSince(deletedAt, first)).to.be.below(Math.ceil(RENEW + 2 * RETRIES + MARGIN));
        const tokens = (await h.entries()).filter((e) => e.what.startsWith('token-')).map((e) => Number(e.what.slice('token-'.length)));
        expect(tokens.length).to.be.greaterThan(before);
        expect(tokens.at(-1)).to.be.greaterThan(tokens[before - 1]!);
        await h.members.get(victim)!.waitForLine(/row was released or deleted/, 5000);
        h.assertNeverTwoAtOnce(await h.entries(), 'lock1');
      });
    }
  },
  { clusters: ['etcd', 'postgres', 'zookeeper'] },
);

/** Every slow exchange's start and end: no other member's exchange starts between them. */
function assertExchangesNeverOverlap(all: Entry[]): void {
  const open = new Map<string, bigint>();
  for (const e of all) {
    if (e.what === 'slow-start') {
      const other = [...open.keys()].find((m) => m !== e.member);
      expect(other, `${e.member} started a slow exchange while ${other} was inside one`).to.equal(undefined);
      open.set(e.member, e.at);
    } else if (e.what === 'slow-end') {
      open.delete(e.member);
    }
  }
}
