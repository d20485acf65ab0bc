import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { describeMembers, type Entry, type MembersHarness } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';

/** One master route on lock1 whose exchanges take $EXCHANGE_MS, recording start and end. */
const LONG_EXCHANGE = fileURLToPath(new URL('./fixtures/shutdown', import.meta.url));
/** A singleton service on lock3 whose stop takes $SERVICE_STOP_MS. */
const SLOW_STOPPING_SERVICE = fileURLToPath(new URL('./fixtures/shutdown-singleton', import.meta.url));

/**
 * The follower's first exchange after the signal started after every exchange the victim had begun
 * had ended: the two never ran at once. (Each member runs one exchange at a time, so its start and
 * end records pair up in order.)
 */
function assertNoOverlapAtHandover(all: Entry[], victim: string, followerStart: Entry): void {
  const starts = all.filter((e) => e.member === victim && e.what === 'start' && e.at < followerStart.at);
  const ends = all.filter((e) => e.member === victim && e.what === 'end');
  expect(ends.length, `${victim} had an exchange running when ${followerStart.member} started one`).to.be.at.least(starts.length);
  const lastEnd = ends[starts.length - 1];
  if (lastEnd) expect(lastEnd.at < followerStart.at, `${followerStart.member} started an exchange before ${victim}'s last one ended`).to.equal(true);
}

describeMembers('graceful stop drains before it releases', (h: MembersHarness) => {
  const { LEASE, RENEW, MARGIN, ACQUIRE_DELAY, RETRIES } = h;
  /** How often a leader renews: every retryPeriod on files; every renewDeadline / 3 (at least retryPeriod) on Kubernetes. */

  /** Starts two members and SIGTERMs the leader just after one of its exchanges started; returns what happened. */
  async function terminateMidExchange(env: Record<string, string>, shutdownTimeout: string) {
    const args = ['--shutdown-timeout', shutdownTimeout];
    h.start('m1', { routes: LONG_EXCHANGE, env, args });
    h.start('m2', { routes: LONG_EXCHANGE, env, args });
    const first = await waitFor(async () => (await h.entries()).find((e) => e.what === 'start'), { timeout: 15_000 + ACQUIRE_DELAY, message: 'a first exchange' });
    const victim = first.member;
    const follower = [...h.members.keys()].find((id) => id !== victim)!;
    await waitFor(() => h.members.get(follower)!.output.includes(`member ${victim} is now leader of lock1`), { message: `${follower} to see ${victim} lead` });
    // SIGTERM lands at the beginning of a fresh exchange, with almost all of it still to run; waiting
    // for one whole exchange first lets the startup's load settle.
    const since = h.now();
    const ended = await waitFor(async () => (await h.entries()).find((e) => e.what === 'end' && e.member === victim && e.at > since), {
      timeout: 30_000,
      message: `${victim} to finish an exchange`,
    });
    const started = await waitFor(async () => (await h.entries()).find((e) => e.what === 'start' && e.member === victim && e.at > ended.at), {
      timeout: 15_000,
      interval: 5,
      message: `${victim} to start another exchange`,
    });
    const termAt = h.now();
    const code = await h.terminate(victim);
    const exitedAt = h.now();
    const followerStart = await waitFor(async () => (await h.entries()).find((e) => e.what === 'start' && e.member === follower && e.at > termAt), {
      timeout: 15_000 + LEASE + ACQUIRE_DELAY,
      message: `${follower} to start an exchange`,
    });
    const all = await h.entries();
    const victimEnd = all.find((e) => e.what === 'end' && e.member === victim && e.at > started.at);
    return { victim, follower, started, termAt, exitedAt, code, followerStart, victimEnd, all };
  }

  const handoverBound = 1000 + ACQUIRE_DELAY;
  it(`SIGTERM mid-exchange: the exchange runs to its end before the lock is released, and the follower starts within ${handoverBound} ms of that end`, async () => {
    // ConfigMap mode's follower waits acquireDelay after taking the lock: the exchange outlasts that, so a
    // release at the signal would show as an overlap there too.
    const exchangeMs = 1500 + ACQUIRE_DELAY;
    const run = await terminateMidExchange({ EXCHANGE_MS: String(exchangeMs) }, '10s');
    expect(run.code).to.equal(0);
    expect(run.victimEnd, `${run.victim} finished its exchange`).not.to.equal(undefined);
    expect(h.msSince(run.started.at, run.victimEnd!.at)).to.be.at.least(exchangeMs - 1);
    expect(run.followerStart.at > run.victimEnd!.at, `${run.follower} started before ${run.victim}'s exchange ended`).to.equal(true);
    expect(h.msSince(run.victimEnd!.at, run.followerStart.at)).to.be.below(handoverBound);
    assertNoOverlapAtHandover(run.all, run.victim, run.followerStart);
    expect(h.members.get(run.victim)!.output).to.contain('Shutting down: waiting up to 10s for 1 exchange(s) in flight (long: 1)');
  });

  // The victim still led when its drain timed out (else its term would have ended earlier, by lapse), so
  // its last successful renewal began at most renewDeadline before; a follower takes over no earlier than
  // leaseDuration after it saw that renewal. This holds however late renewals come on a busy machine; a
  // release (an instant handover) would fail it. MARGIN allows for the records' and notifications' latencies.
  // On the servers that elect natively, the server expires the session itself, a lease after the last
  // keep-alive, which comes every retryPeriod.
  const elector = h.target.cluster === 'file' || h.target.cluster === 'kubernetes';
  const expiryFloor = elector ? LEASE - RENEW - MARGIN : LEASE - h.RETRY - MARGIN;
  it(`a drain that times out: the member exits without releasing, and the follower starts no earlier than ${expiryFloor} ms after the term ended`, async () => {
    const shutdownMs = 1000;
    const run = await terminateMidExchange({ EXCHANGE_MS: '8000', HONOUR_SIGNAL: '1' }, `${shutdownMs}ms`);
    expect(run.code).to.equal(0);
    // The term ended when the shutdown timeout passed, not at the signal: the exchange saw its signal abort then.
    const aborted = run.all.find((e) => e.what === 'aborted' && e.member === run.victim && e.at > run.started.at);
    expect(aborted, `${run.victim}'s exchange saw the term end`).not.to.equal(undefined);
    expect(h.msSince(run.termAt, aborted!.at)).to.be.at.least(shutdownMs - 1);
    expect(h.members.get(run.victim)!.output).to.contain('did not release lock1');
    expect(h.msSince(aborted!.at, run.followerStart.at)).to.be.at.least(expiryFloor);
    // …and not much later than the lease (plus ConfigMap mode's acquireDelay) after the victim exited.
    expect(h.msSince(run.exitedAt, run.followerStart.at)).to.be.below(LEASE + ACQUIRE_DELAY + RETRIES + MARGIN);
    assertNoOverlapAtHandover(run.all, run.victim, run.followerStart);
  });

  it(`a route file's singleton service has stopped before its lock is released: the follower starts it within ${handoverBound} ms after`, async () => {
    const env = { SERVICE_STOP_MS: '1500' };
    h.start('m1', { routes: SLOW_STOPPING_SERVICE, env });
    h.start('m2', { routes: SLOW_STOPPING_SERVICE, env });
    const first = await waitFor(async () => (await h.entries()).find((e) => e.what === 'service-start'), { timeout: 15_000 + ACQUIRE_DELAY, message: 'the service to start' });
    const victim = first.member;
    const follower = [...h.members.keys()].find((id) => id !== victim)!;
    await waitFor(() => h.members.get(follower)!.output.includes(`member ${victim} is now leader of lock3`), { message: `${follower} to see ${victim} lead` });
    const termAt = h.now();
    expect(await h.terminate(victim)).to.equal(0);
    const started = await waitFor(async () => (await h.entries()).find((e) => e.what === 'service-start' && e.member === follower && e.at > termAt), {
      timeout: 15_000 + LEASE + ACQUIRE_DELAY,
      message: `${follower} to start the service`,
    });
    const stopped = (await h.entries()).find((e) => e.what === 'service-stop-end' && e.member === victim);
    expect(stopped, `${victim} finished stopping its service`).not.to.equal(undefined);
    expect(started.at > stopped!.at, `${follower} started the service while ${victim} was still stopping it`).to.equal(true);
    expect(h.msSince(stopped!.at, started.at)).to.be.below(handoverBound);
  });
});
