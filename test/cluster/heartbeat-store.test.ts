import { expect } from 'chai';
import { Elector } from '../../lib/cluster/election/elector.ts';
import { HeartbeatLockStore, heartbeatCadence } from '../../lib/cluster/election/heartbeat-store.ts';
import { MemoryHeartbeatBackend } from '../../lib/cluster/election/heartbeat-memory.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { resolveRenewals } from '../../lib/cluster/election/heartbeat-config.ts';
import { ConfigurationError } from '../../lib/errors.ts';
import type { LockRecord } from '../../lib/cluster/election/lock-store.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { recordLeadership } from '../support/leadership-intervals.ts';
import { waitFor } from '../support/wait.ts';

const timings = validateTimings({ leaseDuration: 1200, renewDeadline: 800, retryPeriod: 100 });
const cadence = heartbeatCadence(timings);

/** Passes a window of time: what these tests measure is what happens during it. */
const windowOf = (ms: number) => {
  const end = performance.now() + ms;
  return waitFor(() => performance.now() >= end, { timeout: ms + 5000, interval: 10 });
};

describe('heartbeat mode: renewals independent of the number of locks', () => {
  const electors: Elector[] = [];
  const stores: HeartbeatLockStore[] = [];
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.stop()));
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  function member(backend: MemoryHeartbeatBackend, memberId: string, instanceId = `${memberId}-instance`) {
    const store = new HeartbeatLockStore({ backend, memberId, instanceId, timings, interval: cadence.interval, logger: captureLogger().logger });
    stores.push(store);
    const elect = (lock: string) => {
      const e = new Elector({ lock, memberId, instanceId, store, timings, renewInterval: cadence.renewInterval, logger: captureLogger().logger });
      electors.push(e);
      return e;
    };
    return { store, elect };
  }

  it('DROMEDARY_RENEWALS is heartbeat or per-lock (heartbeat by default); anything else is refused naming both', () => {
    expect(resolveRenewals({})).to.equal('heartbeat');
    expect(resolveRenewals({ DROMEDARY_RENEWALS: ' Heartbeat ' })).to.equal('heartbeat');
    expect(resolveRenewals({ DROMEDARY_RENEWALS: 'per-lock' })).to.equal('per-lock');
    expect(() => resolveRenewals({ DROMEDARY_RENEWALS: 'sometimes' })).to.throw(ConfigurationError, /DROMEDARY_RENEWALS="sometimes" is not a renewal mode: use heartbeat .* or per-lock/);
  });

  for (const count of [10, 100]) {
    it(`an idle leader of ${count} locks writes one heartbeat per round and no lock record`, async () => {
      const backend = new MemoryHeartbeatBackend();
      const a = member(backend, 'a');
      const leaders = Array.from({ length: count }, (_, i) => a.elect(`lock${i}`));
      leaders.forEach((e) => e.start());
      await waitFor(() => leaders.every((e) => e.isLeader), { message: `a to lead all ${count} locks` });
      // A follower on every lock, which must keep waiting.
      const b = member(backend, 'b');
      const followers = Array.from({ length: count }, (_, i) => b.elect(`lock${i}`));
      followers.forEach((e) => e.start());
      await waitFor(() => followers.every((e) => e.leader === 'a'), { message: 'b to see a lead every lock' });
      const rounds = 10;
      const [writes, beats, listings, leaderBeats] = [backend.writes, backend.heartbeatWrites, backend.heldReads, a.store.heartbeatWrites];
      await windowOf(rounds * cadence.interval);
      expect(backend.writes - writes, 'lock record writes').to.equal(0);
      // At most one heartbeat write and one listing per round, plus one at each edge of the window (a busy machine runs fewer).
      expect(a.store.heartbeatWrites - leaderBeats, "the leader's heartbeat writes").to.be.within(1, rounds + 2);
      // The follower's heartbeat (the member list) goes on every leaseDuration / 3, whatever the locks.
      const followerBeats = backend.heartbeatWrites - beats - (a.store.heartbeatWrites - leaderBeats);
      expect(followerBeats, "the follower's heartbeat writes").to.be.within(1, Math.ceil((rounds * cadence.interval) / (timings.leaseDuration / 3)) + 1);
      expect(backend.heldReads - listings, 'listings of the held locks').to.be.within(1, rounds + 2);
      expect(leaders.every((e) => e.isLeader)).to.equal(true);
      expect(followers.some((e) => e.isLeader)).to.equal(false);
    });
  }

  it('an idle leader of one lock renews its record alone, and writes its heartbeat (the member list) only every third of a lease', async () => {
    const backend = new MemoryHeartbeatBackend();
    const a = member(backend, 'a');
    const leader = a.elect('lock0');
    leader.start();
    await waitFor(() => leader.isLeader);
    const rounds = 10;
    const [writes, beats, listings] = [backend.writes, backend.heartbeatWrites, backend.heldReads];
    await windowOf(rounds * cadence.interval);
    const window = rounds * cadence.interval;
    // A heartbeat round (a heartbeat write and a listing) once leaseDuration / 3 passed since the last, every other round a record write.
    const heartbeatRounds = Math.ceil(window / (timings.leaseDuration / 3)) + 1;
    expect(backend.heartbeatWrites - beats, 'heartbeat writes').to.be.within(1, heartbeatRounds);
    expect(backend.heldReads - listings, 'listings').to.equal(backend.heartbeatWrites - beats);
    expect(backend.writes - writes, 'lock record writes').to.be.within(1, rounds + 2 - (backend.heartbeatWrites - beats));
    expect(leader.isLeader).to.equal(true);
  });

  it('a dead holder (no more heartbeats) is taken over a lease after its last heartbeat, and a graceful one at once', async () => {
    const backend = new MemoryHeartbeatBackend();
    const a = member(backend, 'a');
    const b = member(backend, 'b');
    const [la, lb] = [a.elect('lock1'), b.elect('lock1')];
    const [la2, lb2] = [a.elect('lock2'), b.elect('lock2')];
    const leadership = recordLeadership([la, lb]);
    la.start();
    la2.start();
    await waitFor(() => la.isLeader && la2.isLeader);
    lb.start();
    lb2.start();
    await waitFor(() => lb.leader === 'a' && lb2.leader === 'a');
    // lock2: a graceful stop releases at once.
    await la2.stop();
    await waitFor(() => lb2.isLeader, { timeout: 4 * timings.retryPeriod + 200, message: 'b to take lock2 at once' });
    // lock1: a's process stops heartbeating (its store closes without releasing).
    la.keepUntilExpiry();
    const stoppedAt = performance.now();
    await la.stop();
    await a.store.close();
    await waitFor(() => lb.isLeader, { timeout: timings.leaseDuration + cadence.interval + 4 * timings.retryPeriod + 500, message: 'b to take lock1 after a lease' });
    expect(performance.now() - stoppedAt).to.be.at.least(timings.leaseDuration - cadence.interval);
    leadership.assertNoOverlap(2);
  });

  it('a heartbeat landing between a follower\'s observation and its takeover: the follower puts the record back, and never leads beside the holder', async () => {
    const backend = new MemoryHeartbeatBackend();
    // The old holder, written as its store would: a record naming its heartbeat, listed there.
    const key = backend.heartbeatKey('old', 'old-instance');
    const beat = (n: number) => backend.writeHeartbeat(key, { member: 'old', instance: 'old-instance', renewTime: new Date(Date.now() + n).toISOString(), locks: ['lock1'] });
    await beat(0);
    const held: LockRecord = { holderIdentity: 'old', holderInstance: 'old-instance', heartbeat: key, leaseDurationMs: timings.leaseDuration, acquireTime: new Date().toISOString(), renewTime: new Date().toISOString(), leaseTransitions: 0, fencingToken: 5 };
    await backend.create('lock1', held, AbortSignal.timeout(1000));
    // The old holder's paused heartbeat lands just before the follower's compare-and-swap.
    const update = backend.update.bind(backend);
    let landed = 0;
    backend.update = async (lock, record, version, signal) => {
      if (record.holderIdentity === 'b' && landed === 0) {
        landed += 1;
        await beat(1);
      }
      return update(lock, record, version, signal);
    };
    const b = member(backend, 'b');
    const lb = b.elect('lock1');
    const leaderships: number[] = [];
    lb.on('change', ({ isLocal }) => isLocal && leaderships.push(performance.now()));
    lb.start();
    await waitFor(() => landed === 1, { timeout: timings.leaseDuration + 2000, message: 'the follower\'s takeover attempt' });
    // Put back as it was: the old holder's record, content unchanged.
    await waitFor(() => backend.peek('lock1')!.record.holderIdentity === 'old', { message: 'the record back with the old holder' });
    const { renewTime: _a, ...restored } = backend.peek('lock1')!.record;
    const { renewTime: _b, ...original } = held;
    expect(restored).to.deep.equal(original);
    expect(lb.isLeader).to.equal(false);
    expect(leaderships).to.deep.equal([]);
    // It waits a whole lease from the new heartbeat before trying again, then leads.
    const landedAt = performance.now();
    await waitFor(() => lb.isLeader, { timeout: timings.leaseDuration + 2000, message: 'b to lead once the heartbeat stays unchanged' });
    expect(performance.now() - landedAt).to.be.at.least(timings.leaseDuration - 50);
  });

  it('a paused holder whose heartbeat lands during a takeover never overlaps the follower', async () => {
    const backend = new MemoryHeartbeatBackend();
    // Every request of a can be held back, as if a were paused (SIGSTOP) in the middle of them.
    let gate: Promise<void> | undefined;
    let open: () => void = () => undefined;
    const paused = Object.create(backend) as MemoryHeartbeatBackend;
    for (const name of ['watch', 'watchHeartbeat', 'watchHeartbeats', 'heartbeatKey', 'heartbeat', 'members'] as const) {
      (paused as unknown as Record<string, unknown>)[name] = (backend[name] as (...args: unknown[]) => unknown).bind(backend);
    }
    for (const name of ['get', 'create', 'update', 'writeHeartbeat', 'readHeartbeat', 'readHeld'] as const) {
      const call = (backend[name] as (...args: unknown[]) => Promise<unknown>).bind(backend);
      (paused as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        if (gate) await gate;
        return call(...args);
      };
    }
    const update = backend.update.bind(backend);
    let attempts = 0;
    backend.update = async (lock, record, version, signal) => {
      // The held-back requests (a heartbeat among them) land just before the follower's takeover.
      if (record.holderIdentity === 'b' && gate) {
        attempts += 1;
        gate = undefined;
        open();
        await new Promise((r) => setImmediate(r));
      }
      return update(lock, record, version, signal);
    };
    const a = member(paused, 'a');
    const b = member(backend, 'b');
    const [la, lb] = [a.elect('lock1'), b.elect('lock1')];
    const leadership = recordLeadership([la, lb]);
    la.start();
    await waitFor(() => la.isLeader);
    lb.start();
    await waitFor(() => lb.leader === 'a');
    gate = new Promise<void>((resolve) => (open = resolve));
    await waitFor(() => attempts === 1, { timeout: timings.leaseDuration + 2000, message: 'the takeover attempt' });
    await windowOf(2 * timings.leaseDuration);
    leadership.assertNoOverlap(1);
  });

  it('the heartbeats are the member list: a follower that never polls is listed, and dropped a lease after its heartbeat stops', async () => {
    const backend = new MemoryHeartbeatBackend();
    const a = member(backend, 'a');
    const b = member(backend, 'b');
    const [la, lb] = [a.elect('lock1'), b.elect('lock1')];
    la.start();
    await waitFor(() => la.isLeader);
    lb.start();
    await waitFor(() => lb.leader === 'a');
    // b's heartbeat changes twice (two rounds) before a counts it: one seen once may be a dead process's.
    const seen = 3 * cadence.interval + 4 * timings.retryPeriod + 500;
    await waitFor(() => la.members.includes('b') && lb.members.includes('a'), { timeout: seen, message: 'each to list the other' });
    expect([...la.members]).to.deep.equal(['a', 'b']);
    // The memory store's notifications carry the records: over two leases b stays listed and nobody reads.
    const reads = backend.reads;
    await windowOf(2 * timings.leaseDuration);
    expect(backend.reads - reads, 'reads while following').to.equal(0);
    expect([...la.members]).to.deep.equal(['a', 'b']);
    // b's process stops taking part without removing its heartbeat (as if killed): it stops changing.
    await lb.stop();
    const stoppedAt = performance.now();
    // Listed until its heartbeat went unchanged for a lease (from its last round), checked every quarter lease.
    const bound = timings.leaseDuration + timings.leaseDuration / 4 + 500;
    await waitFor(() => !la.members.includes('b'), { timeout: bound, message: `a to drop b within ${bound}ms` });
    // Its last heartbeat came at most a third of a lease before it stopped (a follower's member-list cadence).
    expect(performance.now() - stoppedAt).to.be.at.least(timings.leaseDuration - timings.leaseDuration / 3);
    expect([...la.members]).to.deep.equal(['a']);
  });

  it('a holder whose lock record someone else edits steps down, though its heartbeat goes on', async () => {
    const backend = new MemoryHeartbeatBackend();
    const a = member(backend, 'a');
    const [la, la2, la3] = [a.elect('lock1'), a.elect('lock2'), a.elect('lock3')];
    for (const e of [la, la2, la3]) e.start();
    await waitFor(() => la.isLeader && la2.isLeader && la3.isLeader);
    const key = backend.heartbeatKey('a', 'a-instance');
    await waitFor(() => backend.peekHeartbeat(key)?.record.locks.length === 3, { message: 'a heartbeat listing all three locks' });
    backend.overwrite('lock1', { holderIdentity: 'intruder', holderInstance: 'intruder-1', heartbeat: undefined });
    await waitFor(() => !la.isLeader, { timeout: cadence.interval + 500, message: 'a to step down from lock1' });
    // A round may see the edit before the watch does: a steps down, then reads who leads now.
    await waitFor(() => la.leader === 'intruder', { timeout: 2 * timings.retryPeriod + 500, message: 'a to see the intruder lead lock1' });
    // The next heartbeats vouch for the other two only, which a still leads.
    await waitFor(() => backend.peekHeartbeat(key)!.record.locks.join() === 'lock2,lock3', { timeout: 2 * cadence.interval + 500, message: 'a heartbeat without lock1' });
    expect(la2.isLeader && la3.isLeader).to.equal(true);
  });

  it('a leader whose heartbeat round finds its record taken steps down, even without a watch', async () => {
    const backend = new MemoryHeartbeatBackend();
    backend.watch = undefined as never;
    const a = member(backend, 'a');
    const la = a.elect('lock1');
    la.start();
    await waitFor(() => la.isLeader);
    backend.overwrite('lock1', { holderIdentity: 'intruder', holderInstance: 'intruder-1', heartbeat: undefined });
    await waitFor(() => !la.isLeader, { timeout: 2 * cadence.interval + 500, message: 'a to step down at its next round' });
    expect(la.leader).to.equal('intruder');
  });
});
