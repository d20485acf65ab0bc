import { expect } from 'chai';
import { describeMembers, MS, reportRealClusterSkip, TICK } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';

reportRealClusterSkip('members.test');

/** The chaos suite's core cases; test/support/cluster-members.ts runs them on every target. */
describeMembers('clustered singleton routes across processes', (h) => {
  const { LEASE, RENEW, RETRY, MARGIN, ACQUIRE_DELAY, RETRIES, configMapMode } = h;
  const start = (name: string) => h.start(name);
  const kill = (id: string) => h.kill(id);
  const terminate = (id: string) => h.terminate(id);
  const entries = () => h.entries();
  const currentRunner = (what: string, since?: bigint) => h.currentRunner(what, since);
  const settledRunner = () => h.settledRunner();
  const firstRunAfter = (from: bigint) => h.firstRunAfter(from);
  const followersPolledPastLease = (victim: string, since: number) => h.followersPolledPastLease(victim, since);
  const assertNeverTwoAtOnce = h.assertNeverTwoAtOnce.bind(h);
  const now = () => h.now();
  const msSince = (from: bigint, to: bigint) => h.msSince(from, to);

  it('runs master routes on exactly one of 3 members, non-master routes on all, and locks independently', async () => {
    for (const name of ['m1', 'm2', 'm3']) start(name);
    const runner1 = await currentRunner('lock1');
    const runner2 = await currentRunner('lock2');
    await waitFor(async () => new Set((await entries()).filter((e) => e.what === 'all').map((e) => e.member)).size === 3, {
      message: 'every member to run the non-master route',
    });
    const from = now();
    await waitFor(async () => (await entries()).filter((e) => e.what === 'lock1' && e.at > from).length >= 20);
    const all = await entries();
    const recent = all.filter((e) => e.at > from);
    expect(new Set(recent.filter((e) => e.what === 'lock1').map((e) => e.member))).to.deep.equal(new Set([runner1]));
    expect(new Set(recent.filter((e) => e.what === 'lock2').map((e) => e.member))).to.deep.equal(new Set([runner2]));
    expect(all.filter((e) => e.what === 'service-start').length).to.equal(1);
    assertNeverTwoAtOnce(all, 'lock1');
    assertNeverTwoAtOnce(all, 'lock2');
    const leaderLog = h.members.get(runner1)!.output;
    expect(leaderLog).to.contain(`member ${runner1} is now leader of lock1 (this member)`);
  });

  // Lease mode and file locks: a follower may take over once the lease it last saw renewed runs out
  // (≤ leaseDuration after the kill), and polls at most one retryPeriod late.
  // ConfigMap mode: the holder stops being a live member the moment its pod goes not Ready; the
  // followers hear it from the pod watch, take the lock, and wait acquireDelay (= leaseDuration).
  const failoverBound = Math.ceil((configMapMode ? 0 : LEASE) + ACQUIRE_DELAY + RETRIES + MARGIN);
  it(`after SIGKILL of the leader, another member runs the route within ${failoverBound} ms`, async () => {
    for (const name of ['m1', 'm2', 'm3']) start(name);
    const victim = await settledRunner();
    const killedAt = now();
    kill(victim);
    const next = await currentRunner('lock1', killedAt);
    expect(next).not.to.equal(victim);
    const first = (await entries()).find((e) => e.what === 'lock1' && e.at > killedAt)!;
    expect(msSince(killedAt, first.at)).to.be.below(failoverBound);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  // A graceful stop releases the lock, so a follower takes it at once; 1 s covers the shutdown
  // reaching the release, the notification and the takeover. ConfigMap mode adds acquireDelay.
  const handoverBound = ACQUIRE_DELAY + 1000;
  it(`after SIGTERM of the leader, another member takes over within ${handoverBound} ms because the lock was released`, async () => {
    for (const name of ['m1', 'm2', 'm3']) start(name);
    const victim = await settledRunner();
    const termAt = now();
    expect(await terminate(victim)).to.equal(0);
    const next = await currentRunner('lock1', termAt);
    expect(next).not.to.equal(victim);
    const first = (await entries()).find((e) => e.what === 'lock1' && e.at > termAt && e.member !== victim)!;
    expect(msSince(termAt, first.at)).to.be.below(handoverBound);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  if (!configMapMode) {
    it('a leader paused past its lease (SIGSTOP) produces no exchange after SIGCONT until it leads again', async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await settledRunner();
      const stoppedAt = now();
      h.members.get(victim)!.signal('SIGSTOP');
      const next = await currentRunner('lock1', stoppedAt);
      expect(next).not.to.equal(victim);
      const resumedAt = now();
      h.members.get(victim)!.signal('SIGCONT');
      // Let the resumed member run for several ticks and renew attempts.
      const until = now() + BigInt(RENEW + RETRY) * MS;
      await waitFor(async () => (await entries()).some((e) => e.at > until), { timeout: 10_000 });
      const afterResume = (await entries()).filter((e) => e.what === 'lock1' && e.member === victim && e.at > resumedAt);
      expect(afterResume, `${victim} ran lock1 after resuming`).to.deep.equal([]);
      expect(h.members.get(victim)!.output).to.match(/Leadership lost for lock1|no member leads lock1|member \S+ is now leader of lock1$/m);
      assertNeverTwoAtOnce(await entries(), 'lock1');
    });
  } else {
    // A stopped process keeps its pod Ready (the kubelet sees a container, not a hang), so nobody may
    // take the lock from it. On SIGCONT its renewDeadline has passed: it has stopped the guarded
    // work, and renewing its own lock is a fresh acquisition, with acquireDelay before leading.
    const resumeBound = Math.ceil(RETRIES + ACQUIRE_DELAY + MARGIN);
    it(`a leader paused past its lease (SIGSTOP) keeps a Ready pod: nobody takes over, and it leads again within ${resumeBound} ms of SIGCONT, not sooner than acquireDelay`, async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await settledRunner();
      const stoppedAt = now();
      h.members.get(victim)!.signal('SIGSTOP');
      await followersPolledPastLease(victim, Date.now());
      const resumedAt = now();
      h.members.get(victim)!.signal('SIGCONT');
      const next = await currentRunner('lock1', resumedAt);
      const all = await entries();
      const whileStopped = all.filter((e) => e.what === 'lock1' && e.at > stoppedAt + BigInt(TICK) * MS && e.at < resumedAt);
      expect(whileStopped, 'exchanges while the holder was stopped').to.deep.equal([]);
      expect(next).to.equal(victim);
      const first = all.find((e) => e.what === 'lock1' && e.at > resumedAt)!;
      expect(msSince(resumedAt, first.at)).to.be.at.least(ACQUIRE_DELAY);
      expect(msSince(resumedAt, first.at)).to.be.below(resumeBound);
      assertNeverTwoAtOnce(all, 'lock1');
    });
  }

  it('survives a rolling replacement of every member, one at a time, with a runner after each step', async () => {
    const old = ['m1', 'm2', 'm3'].map(start);
    await currentRunner('lock1');
    for (const [i, fresh] of ['m4', 'm5', 'm6'].entries()) {
      const id = start(fresh);
      await h.members.get(id)!.waitForLine(/started \d+ route/);
      const stoppedAt = now();
      expect(await terminate(old[i]!)).to.equal(0);
      await currentRunner('lock1', stoppedAt);
    }
    const last = await currentRunner('lock1', now());
    expect(['m4', 'm5', 'm6'].map((n) => `${h.run}-${n}`)).to.include(last);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  if (h.target.api === 'test-server') {
    if (!configMapMode) {
      it('a leader blackholed from the API server stops running the route, and another member takes over', async () => {
        for (const name of ['m1', 'm2', 'm3']) start(name);
        const victim = await settledRunner();
        const cutAt = now();
        h.server!.faults(h.tokens.get(victim)).blackhole();
        // The victim legitimately runs on until its renewDeadline passes; wait for someone else.
        const next = await waitFor(
          async () => (await entries()).filter((e) => e.what === 'lock1' && e.at > cutAt && e.member !== victim).slice(-3).at(-3)?.member,
          { timeout: 15_000, message: 'another member to run lock1' },
        );
        expect(next).not.to.equal(victim);
        const all = await entries();
        const takeover = all.find((e) => e.what === 'lock1' && e.member === next && e.at > cutAt)!.at;
        // The cut-off leader stepped down by itself (renewDeadline) before the new one started (leaseDuration).
        expect(all.some((e) => e.what === 'lock1' && e.member === victim && e.at > takeover)).to.equal(false);
        expect(msSince(cutAt, takeover)).to.be.below(failoverBound);
        assertNeverTwoAtOnce(all, 'lock1');
      });
    } else {
      // Cut off from the API server, the leader stops within renewDeadline; its pod stays Ready, so
      // nobody may take over. Once the partition heals it renews its own lock: a fresh acquisition.
      const healBound = Math.ceil(RETRIES + ACQUIRE_DELAY + MARGIN);
      it(`a leader blackholed from the API server stops within renewDeadline; its Ready pod keeps the lock, and it leads again within ${healBound} ms of the partition healing`, async () => {
        for (const name of ['m1', 'm2', 'm3']) start(name);
        const victim = await settledRunner();
        const cutAt = now();
        h.server!.faults(h.tokens.get(victim)).blackhole();
        await followersPolledPastLease(victim, Date.now());
        const healedAt = now();
        h.server!.faults(h.tokens.get(victim)).clear();
        const next = await currentRunner('lock1', healedAt);
        const all = await entries();
        // The last renewal began before the cut, so its renewDeadline ended before cutAt + renewDeadline;
        // the margin covers an exchange admitted just before that and recorded a little later.
        const stepDown = cutAt + BigInt(RENEW + MARGIN) * MS;
        const cutOff = all.filter((e) => e.what === 'lock1' && e.at > stepDown && e.at < healedAt);
        expect(cutOff, 'exchanges after renewDeadline while the leader was cut off').to.deep.equal([]);
        expect(next).to.equal(victim);
        const first = all.find((e) => e.what === 'lock1' && e.at > healedAt)!;
        expect(msSince(healedAt, first.at)).to.be.at.least(ACQUIRE_DELAY);
        expect(msSince(healedAt, first.at)).to.be.below(healBound);
        assertNeverTwoAtOnce(all, 'lock1');
      });
    }

    // If the faults made the leader step down, a follower takes over once its lease runs out (Lease
    // mode), or the leader takes its own lock back and waits acquireDelay (ConfigMap mode), after at
    // most one retry wait.
    const recoveryBound = Math.ceil(LEASE + ACQUIRE_DELAY + RETRIES + MARGIN);
    it(`keeps one runner through 5xx bursts, slow responses and an API server restart, with a runner within ${recoveryBound} ms after each`, async () => {
      const ids = ['m1', 'm2', 'm3'].map(start);
      await settledRunner();
      const failed = () => h.server!.requests().filter((r) => r.fault === 'fail').length;
      const before = failed();
      for (const id of ids) h.server!.faults(h.tokens.get(id)).failRate(0.3, 503).latency(100);
      await waitFor(() => failed() >= before + 10, { timeout: 20_000, message: 'ten failed API requests' });
      for (const id of ids) h.server!.faults(h.tokens.get(id)).clear();
      const clearedAt = now();
      expect(msSince(clearedAt, await firstRunAfter(clearedAt))).to.be.below(recoveryBound);
      const restartedAt = now();
      await h.server!.restart();
      expect(msSince(restartedAt, await firstRunAfter(restartedAt))).to.be.below(recoveryBound);
      assertNeverTwoAtOnce(await entries(), 'lock1');
    });
  }

  it('moves a custom singleton service with leadership', async () => {
    const first = start('m1');
    await waitFor(async () => (await entries()).some((e) => e.what === 'service-start' && e.member === first), { timeout: 10_000 + ACQUIRE_DELAY });
    const second = start('m2');
    await h.members.get(second)!.waitForLine(new RegExp(`member ${first} is now leader of lock3`));
    expect(await terminate(first)).to.equal(0);
    await waitFor(async () => (await entries()).some((e) => e.what === 'service-start' && e.member === second), { timeout: 10_000 + ACQUIRE_DELAY });
    const services = (await entries()).filter((e) => e.what.startsWith('service-')).map((e) => `${e.member} ${e.what}`);
    expect(services).to.deep.equal([`${first} service-start`, `${first} service-stop`, `${second} service-start`]);
  });
});
