import { expect } from 'chai';
import { Elector } from '../../lib/cluster/election/elector.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { singleton } from '../../lib/cluster/singleton.ts';
import { ConfigurationError } from '../../lib/errors.ts';
import type { LeadershipEvent } from '../../lib/cluster/cluster-service.ts';
import type { LockRecord, LockStore } from '../../lib/cluster/election/lock-store.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { waitFor } from '../support/wait.ts';
import { recordLeadership } from '../support/leadership-intervals.ts';
import { PartitionableStore } from '../support/partitionable-store.ts';

const fast = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });

describe('leader election core', () => {
  const electors: Elector[] = [];
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.stop()));
  });

  /** `a` leads, and `b` (on `followerStore`, the shared store by default) has seen that it does. */
  async function leaderAndFollower(store: LockStore, followerStore: LockStore = store) {
    const a = elector(store, 'a');
    a.start();
    await waitFor(() => a.isLeader);
    const b = elector(followerStore, 'b');
    b.start();
    await waitFor(() => b.leader === 'a');
    return { a, b };
  }

  function elector(store: LockStore, memberId: string, lock = 'lock1', extra: Partial<ConstructorParameters<typeof Elector>[0]> = {}) {
    const e = new Elector({ lock, memberId, store, timings: fast, logger: captureLogger().logger, ...extra });
    electors.push(e);
    return e;
  }

  it('validates timings the way client-go does, with a message naming the values', () => {
    expect(() => validateTimings({ leaseDuration: 10_000, renewDeadline: 10_000 })).to.throw(ConfigurationError, /leaseDuration \(10000ms\) must be greater than renewDeadline \(10000ms\)/);
    expect(() => validateTimings({ renewDeadline: 2000, retryPeriod: 2000 })).to.throw(ConfigurationError, /renewDeadline \(2000ms\) must be greater than jitter × retryPeriod/);
    expect(() => validateTimings({ retryPeriod: 0 })).to.throw(ConfigurationError, /positive/);
    expect(() => validateTimings({ jitter: 0.5 })).to.throw(ConfigurationError, /jitter must be >= 1/);
    expect(validateTimings()).to.deep.equal({ leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000, jitter: 1.2 });
  });

  it('acquires a free lock at once, creating its record', async () => {
    const store = new MemoryLockStore();
    const a = elector(store, 'a');
    a.start();
    await waitFor(() => a.isLeader);
    const { record } = store.peek('lock1')!;
    expect(record.holderIdentity).to.equal('a');
    expect(record.leaseDurationMs).to.equal(400);
    expect(record.leaseTransitions).to.equal(0);
    expect(record.renewTime).to.match(/\.\d{6}Z$/);
  });

  it('a follower waits while the lease is renewed, and knows who leads', async () => {
    const store = new MemoryLockStore();
    const { a, b } = await leaderAndFollower(store);
    const writes = store.writes;
    await waitFor(() => store.writes >= writes + 5, { message: 'the leader renews' });
    expect(b.isLeader).to.equal(false);
    expect(a.isLeader).to.equal(true);
  });

  it('makes no requests as a follower while notifications bring the leader\'s renewals, and the leader renews without reading', async () => {
    const store = new MemoryLockStore();
    const { b } = await leaderAndFollower(store);
    // Let the follower's first attempt finish: from then on it only listens.
    const settled = store.writes;
    await waitFor(() => store.writes >= settled + 3, { message: 'three renewals' });
    const reads = store.reads;
    const writes = store.writes;
    await waitFor(() => store.writes >= writes + 6, { message: 'six renewals' });
    expect(store.reads - reads).to.equal(0);
    expect(b.leader).to.equal('a');
  });

  it('takes over when the leader is cut off, judged from when the record last changed here', async () => {
    const store = new MemoryLockStore();
    const link = new PartitionableStore(store);
    const { a, b } = await leaderAndFollower(link, store);
    const cutAt = performance.now();
    link.cut();
    await waitFor(() => b.isLeader, { timeout: 3000 });
    const takeover = performance.now() - cutAt;
    // The old leader's renewDeadline ran out before the follower's lease did: never two at once.
    expect(a.isLeader).to.equal(false);
    expect(takeover).to.be.at.least(fast.leaseDuration - fast.retryPeriod);
    expect(takeover).to.be.below(fast.leaseDuration + 2 * fast.retryPeriod);
    expect(store.peek('lock1')!.record.leaseTransitions).to.equal(1);
  });

  it('steps down even when its timer fires before its own clock reaches renewDeadline (timers run on libuv\'s cached loop time)', async () => {
    const store = new MemoryLockStore();
    let skew = 0;
    const capture = captureLogger();
    const a = elector(store, 'a', 'lock1', { now: () => performance.now() - skew, logger: capture.logger });
    a.start();
    await waitFor(() => a.isLeader);
    const lost = new Promise<void>((resolve) => a.on('change', (c) => c.isLocal || resolve()));
    // Renewals hang from now on, and the clock the elector reads falls 60 ms behind the one its
    // timers were armed with: the step-down timer fires 60 ms before the deadline it was set for.
    store.hang();
    skew = 60;
    await waitFor(() => capture.messages().some((m) => m.includes('stepping down')), { timeout: 2000, message: 'the leader logs that it steps down' });
    await lost;
    expect(a.isLeader).to.equal(false);
    store.heal();
  });

  it('releases on stop so a follower takes over at once', async () => {
    const store = new MemoryLockStore();
    const { a, b } = await leaderAndFollower(store);
    const t0 = performance.now();
    await a.stop();
    expect(store.peek('lock1')!.record.holderIdentity).to.be.oneOf(['', 'b']);
    await waitFor(() => b.isLeader);
    expect(performance.now() - t0).to.be.below(fast.leaseDuration);
  });

  it('steps down by itself when renewDeadline passes without a successful renew', async () => {
    const store = new MemoryLockStore();
    const a = elector(store, 'a');
    const changes: boolean[] = [];
    a.on('change', (c) => changes.push(c.isLocal));
    a.start();
    await waitFor(() => a.isLeader);
    store.hang();
    const t0 = performance.now();
    await waitFor(() => !a.isLeader, { timeout: 2000 });
    const steppedDownAfter = performance.now() - t0;
    expect(steppedDownAfter).to.be.at.most(fast.renewDeadline + 20);
    await waitFor(() => changes.at(-1) === false, { message: 'the step-down is reported' });
    store.heal();
    await waitFor(() => a.isLeader, { timeout: 3000, message: 'leads again once the store answers' });
  });

  it('reads isLeader from the monotonic clock, so a paused leader is not leader the moment it resumes', async () => {
    const store = new MemoryLockStore();
    let offset = 0;
    const a = elector(store, 'a', 'lock1', { now: () => performance.now() + offset });
    a.start();
    await waitFor(() => a.isLeader);
    offset = fast.renewDeadline + 1; // as if the process had been stopped that long: no timer has run
    expect(a.isLeader).to.equal(false);
  });

  it('a follower kept out by a holder still valid to the protocol polls every retryPeriod once the lease ran out, not without pause', async () => {
    const store = new MemoryLockStore();
    const link = new PartitionableStore(store);
    const a = elector(link, 'a');
    a.start();
    await waitFor(() => a.isLeader);
    // As a live pod in ConfigMap mode: the holder blocks b whatever the record's age.
    const b = elector(store, 'b', 'lock1', { holderValid: () => true });
    b.start();
    await waitFor(() => b.leader === 'a');
    link.cut();
    await waitFor(() => b.leader === undefined, { timeout: 3000, message: "b's observed lease to run out" });
    const reads = store.reads;
    const since = performance.now();
    await waitFor(() => store.reads >= reads + 5, { timeout: 3000, message: 'b to keep polling' });
    // Five reads need at least four waits of retryPeriod between them.
    expect(performance.now() - since).to.be.at.least(4 * fast.retryPeriod);
    expect(b.isLeader).to.equal(false);
  });

  it('keeps polling on schedule while new versions of an unchanged record keep arriving (other locks in a shared ConfigMap)', async () => {
    const store = new MemoryLockStore();
    const link = new PartitionableStore(store);
    const a = elector(link, 'a');
    a.start();
    await waitFor(() => a.isLeader);
    const chatty = new Echoing(store);
    const b = elector(chatty, 'b', 'lock1', { holderValid: () => true });
    b.start();
    await waitFor(() => b.leader === 'a');
    link.cut();
    // New versions of the same record, more often than b polls.
    const echoes = setInterval(() => chatty.echo('lock1'), fast.retryPeriod / 3);
    try {
      await waitFor(() => b.leader === undefined, { timeout: 3000, message: "b's observed lease to run out despite the echoes" });
      const reads = store.reads;
      await waitFor(() => store.reads >= reads + 3, { timeout: 3000, message: 'b to keep polling through the echoes' });
    } finally {
      clearInterval(echoes);
    }
  });

  it('a holder whose leadership lapsed (paused past renewDeadline) waits acquireDelay again before leading', async () => {
    const store = new MemoryLockStore();
    let offset = 0;
    const acquireDelay = 300;
    const a = elector(store, 'a', 'lock1', { now: () => performance.now() + offset, acquireDelay });
    a.start();
    await waitFor(() => a.isLeader, { timeout: 3000 });
    offset = fast.renewDeadline + 1; // as if the process had been stopped that long
    const writes = store.writes;
    await waitFor(() => store.writes > writes, { message: 'the next write of the record' });
    expect(a.isLeader, 'leads again the moment its write succeeds').to.equal(false);
    await waitFor(() => a.isLeader, { timeout: 3000, message: 'leads again after acquireDelay' });
  });

  it('never lets two electors lead at once while many hammer one store', async () => {
    const store = new MemoryLockStore();
    const members = Array.from({ length: 8 }, (_, i) => elector(store, `m${i}`, 'race', { random: Math.random }));
    const leadership = recordLeadership(members);
    for (const e of members) e.start();
    // Churn: repeatedly stop the leader (gracefully or by making the store fail) and start it again.
    for (let round = 0; round < 6; round += 1) {
      const leader = await waitFor(() => members.find((m) => m.isLeader), { timeout: 3000 });
      let leaders = 0;
      for (const m of members) if (m.isLeader) leaders += 1;
      expect(leaders).to.equal(1);
      if (round % 2 === 0) {
        await leader.stop();
        leader.start();
      } else {
        store.fail(3);
      }
    }
    leadership.assertNoOverlap(3);
  });

  describe('a record someone else deleted or edited (issue 10 item 2)', () => {
    /** Every interval in which an elector reported leading, keyed by the elector itself (ids may repeat). */
    function track(electors: Elector[]) {
      const intervals: Array<{ who: Elector; from: number; to: number }> = [];
      const open = new Map<Elector, number>();
      for (const e of electors) {
        e.on('change', ({ isLocal }) => {
          if (isLocal && !open.has(e)) open.set(e, performance.now());
          else if (!isLocal && open.has(e)) {
            intervals.push({ who: e, from: open.get(e)!, to: performance.now() });
            open.delete(e);
          }
        });
      }
      const all = () => [...intervals, ...[...open].map(([who, from]) => ({ who, from, to: Infinity }))].sort((x, y) => x.from - y.from);
      return {
        all,
        assertNoOverlap() {
          const list = all();
          for (let i = 1; i < list.length; i += 1) expect(list[i]!.from, 'two electors led at once').to.be.at.least(list[i - 1]!.to);
        },
        /** When someone other than `except` started leading after `since`. */
        firstLeadAfter(since: number) {
          return list(all()).find((i) => i.from > since);
        },
      };
      function list<T>(x: T[]) {
        return x;
      }
    }

    const edits: Array<[string, (store: MemoryLockStore) => void]> = [
      ['the record is deleted (kubectl delete lease, lock files removed)', (store) => store.remove('lock1')],
      ['holderIdentity is patched to "" (no release marker)', (store) => void store.overwrite('lock1', { holderIdentity: '' })],
      ['holderIdentity is patched to the follower', (store) => void store.overwrite('lock1', { holderIdentity: 'b' })],
      ['holderIdentity is patched to a member that does not exist', (store) => void store.overwrite('lock1', { holderIdentity: 'ghost' })],
    ];
    for (const [what, edit] of edits) {
      it(`when ${what}, the leader stops at once and nobody leads for a full leaseDuration after`, async () => {
        const store = new MemoryLockStore();
        const { a, b } = await leaderAndFollower(store);
        const leadership = track([a, b]);
        const term = a.term!;
        const editedAt = performance.now();
        edit(store);
        // At once: by the notification, before the leader's next renewal (retryPeriod away).
        await waitFor(() => term.signal.aborted, { timeout: fast.retryPeriod, message: 'the leader to end its term' });
        expect(a.isLeader).to.equal(false);
        await waitFor(() => a.isLeader || b.isLeader, { timeout: 3000, message: 'someone to lead again' });
        const next = leadership.firstLeadAfter(editedAt)!;
        // The old leader may be still valid (it does not know yet) for up to renewDeadline; followers
        // wait a full lease from when they saw the edit.
        expect(next.from - editedAt).to.be.at.least(fast.leaseDuration - 5);
        leadership.assertNoOverlap();
      });
    }

    it('a paused leader whose record was emptied cannot overlap with a follower: the follower waits the lease out', async () => {
      // No notification reaches the leader (as with 100 ms of API latency, or a file store): only the
      // follower's wait keeps them apart.
      const store = new MemoryLockStore();
      const deaf = new PartitionableStore(store);
      const a = elector(deaf, 'a');
      a.start();
      await waitFor(() => a.isLeader);
      const b = elector(store, 'b');
      b.start();
      await waitFor(() => b.leader === 'a');
      const leadership = track([a, b]);
      const editedAt = performance.now();
      deaf.cut();
      store.overwrite('lock1', { holderIdentity: '' });
      await waitFor(() => b.isLeader, { timeout: 3000 });
      expect(performance.now() - editedAt).to.be.at.least(fast.leaseDuration - 5);
      leadership.assertNoOverlap();
    });

    it('a release written by the holder itself still hands over at once', async () => {
      const store = new MemoryLockStore();
      const { a, b } = await leaderAndFollower(store);
      const t0 = performance.now();
      expect(await a.stop()).to.equal('released');
      const released = store.peek('lock1')!.record;
      if (released.holderIdentity === '') expect(released.releasedBy).to.equal(a.instanceId);
      await waitFor(() => b.isLeader);
      expect(performance.now() - t0).to.be.below(fast.leaseDuration / 2);
    });

    it('a release that fails is a warning that says when the lock will be free, not a handover', async () => {
      const store = new MemoryLockStore();
      const capture = captureLogger();
      const svc = new ElectorClusterService({ kind: 'memory', memberId: 'a', store, timings: fast, logger: capture.logger });
      await svc.start();
      const view = svc.view('lock1');
      await waitFor(() => view.isLeader);
      store.fail(1);
      await svc.stop();
      const warning = capture.lines.find((l) => l.level === 'warn' && l.message.includes('could not release lock1'));
      expect(warning?.message).to.match(/followers take it over once its lease runs out, up to 400ms from its last renewal/);
      expect(capture.messages()).not.to.include('no member leads lock1 now');
    });
  });

  describe('progress while waiting (issue 13)', () => {
    it('a follower says once, at info, who holds the lock and when it takes over at the latest, and again only when the holder changes', async () => {
      const store = new MemoryLockStore();
      const link = new PartitionableStore(store);
      const a = elector(link, 'a');
      a.start();
      await waitFor(() => a.isLeader);
      // c never takes a held lock (as in ConfigMap mode while the holder's pod runs), so it stays a follower throughout.
      const capture = captureLogger();
      const c = elector(store, 'c', 'lock1', { logger: capture.logger, holderValid: () => true });
      c.start();
      await waitFor(() => c.leader === 'a');
      const renewals = store.writes;
      await waitFor(() => store.writes >= renewals + 5, { message: 'five renewals by a' });
      const waiting = () => capture.lines.filter((l) => l.message.includes(' is held by '));
      expect(waiting().map((l) => l.level)).to.deep.equal(['info']);
      const first = /^lock1 is held by a; taking over at the latest in (\d+\.\d) s if it is not renewed$/.exec(waiting()[0]!.message);
      expect(first, waiting()[0]!.message).to.not.equal(null);
      expect(Number(first![1])).to.be.within(0, fast.leaseDuration / 1000);
      expect(waiting()[0]!.meta).to.include({ lock: 'lock1', holder: 'a' });

      // a is cut off; b takes over once a's lease runs out: c names the new holder, once.
      const b = elector(store, 'b');
      b.start();
      link.cut();
      await waitFor(() => b.isLeader, { timeout: fast.leaseDuration * 2 + 1000 });
      await waitFor(() => c.leader === 'b');
      const after = store.writes;
      await waitFor(() => store.writes >= after + 5, { message: 'five renewals by b' });
      expect(waiting().map((l) => l.message.replace(/[\d.]+ s/, 'N s'))).to.deep.equal([
        'lock1 is held by a; taking over at the latest in N s if it is not renewed',
        'lock1 is held by b; taking over at the latest in N s if it is not renewed',
      ]);
    });
  });

  describe('stats for metrics (issue 13)', () => {
    it('counts terms begun, leaderships ended and changes between other leaders; the renew age only on the leader', async () => {
      const store = new MemoryLockStore();
      const link = new PartitionableStore(store);
      const a = elector(link, 'a');
      a.start();
      await waitFor(() => a.isLeader);
      // c never takes a held lock, so it only watches the leader change from a to b.
      const c = elector(store, 'c', 'lock1', { holderValid: () => true });
      const b = elector(store, 'b');
      c.start();
      b.start();
      await waitFor(() => b.leader === 'a' && c.leader === 'a');
      expect(a.stats.transitions).to.equal(1);
      expect(a.stats.lastRenewAgeMs).to.be.within(0, fast.renewDeadline);
      expect(b.stats).to.deep.equal({ transitions: 0, lastRenewAgeMs: undefined });
      expect(c.stats).to.deep.equal({ transitions: 0, lastRenewAgeMs: undefined });

      link.cut();
      await waitFor(() => b.isLeader && c.leader === 'b', { timeout: fast.leaseDuration * 2 + 1000 });
      expect(a.isLeader).to.equal(false);
      expect(a.stats).to.deep.equal({ transitions: 2, lastRenewAgeMs: undefined });
      expect(b.stats.transitions).to.equal(1);
      expect(b.stats.lastRenewAgeMs).to.be.within(0, fast.renewDeadline);
      expect(c.stats).to.deep.equal({ transitions: 1, lastRenewAgeMs: undefined });
    });
  });

  describe('instance identity (issue 10 item 3)', () => {
    it('two processes with one member id never both lead, and the follower logs an error naming both instances and the fix', async () => {
      const store = new MemoryLockStore();
      const first = captureLogger();
      const second = captureLogger();
      const x1 = elector(store, 'x', 'lock1', { logger: first.logger });
      const x2 = elector(store, 'x', 'lock1', { logger: second.logger });
      x1.start();
      x2.start();
      await waitFor(() => x1.isLeader || x2.isLeader);
      const [leader, follower, log] = x1.isLeader ? [x1, x2, second] : [x2, x1, first];
      const writes = store.writes;
      await waitFor(() => store.writes >= writes + 5, { message: 'the leader renews' });
      expect(follower.isLeader).to.equal(false);
      expect(leader.isLeader).to.equal(true);
      const error = log.lines.find((l) => l.level === 'error');
      expect(error?.message).to.contain(`Two processes use member id x: this one (instance ${follower.instanceId}) and instance ${leader.instanceId}, which leads lock1`);
      expect(error?.message).to.contain('set a distinct DROMEDARY_MEMBER_ID');
    });

    it('a member restarted under its old id waits for its dead predecessor\'s lease like any follower', async () => {
      const store = new MemoryLockStore();
      const link = new PartitionableStore(store);
      const old = elector(link, 'x');
      old.start();
      await waitFor(() => old.isLeader);
      link.cut(); // killed: it writes nothing any more
      const killedAt = performance.now();
      const capture = captureLogger();
      const restarted = elector(store, 'x', 'lock1', { logger: capture.logger });
      restarted.start();
      await waitFor(() => restarted.isLeader, { timeout: 3000 });
      expect(performance.now() - killedAt).to.be.at.least(fast.leaseDuration - fast.retryPeriod);
      expect(capture.messages().some((m) => m.includes('is held under this member id x by another process'))).to.equal(true);
      expect(capture.lines.filter((l) => l.level === 'error')).to.deep.equal([]);
    });
  });

  describe('fencing tokens (issue 10 item 6)', () => {
    it('every term of a lock has a token above every earlier term\'s: handovers, a lapse and re-acquisition by the same member, a deleted record', async () => {
      const store = new MemoryLockStore();
      let offset = 0;
      const a = elector(store, 'a', 'lock1', { now: () => performance.now() + offset });
      const tokens: number[] = [];
      const seen = new Set<unknown>();
      const note = (e: Elector) => e.on('change', () => {
        const term = e.term;
        if (term && !seen.has(term)) {
          seen.add(term);
          tokens.push(term.token);
        }
      });
      note(a);
      a.start();
      await waitFor(() => a.isLeader);
      // Paused past renewDeadline, then renewing its own record: a new term.
      offset = fast.renewDeadline + 1;
      await waitFor(() => tokens.length === 2, { timeout: 3000, message: 'a second term of a' });
      // Handed over to b.
      const b = elector(store, 'b');
      note(b);
      b.start();
      await waitFor(() => b.leader === 'a');
      await a.stop();
      await waitFor(() => b.isLeader);
      // Deleted by someone: b (which saw it) re-creates it after a lease, with a higher token.
      store.remove('lock1');
      await waitFor(() => tokens.length === 4, { timeout: 3000, message: 'a term after the deletion' });
      expect(tokens).to.have.length(4);
      for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]!).to.be.above(tokens[i - 1]!);
      expect(store.peek('lock1')!.record.fencingToken).to.equal(tokens.at(-1));
    });

    it('a record re-created by a member that never saw the old one still gets a higher token (seeded from the wall clock)', async () => {
      const store = new MemoryLockStore();
      const a = elector(store, 'a');
      a.start();
      await waitFor(() => a.isLeader);
      const old = a.term!.token;
      await a.stop();
      store.remove('lock1');
      const fresh = elector(store, 'c');
      fresh.start();
      await waitFor(() => fresh.isLeader);
      expect(fresh.term!.token).to.be.above(old);
    });

    it('a resumed old leader holds a lower token than the leader that took over', async () => {
      const store = new MemoryLockStore();
      const link = new PartitionableStore(store);
      const { a, b } = await leaderAndFollower(link, store);
      const oldTerm = a.term!;
      link.cut(); // as paused: it neither renews nor hears anything
      await waitFor(() => b.isLeader, { timeout: 3000 });
      expect(b.term!.token).to.be.above(oldTerm.token);
      expect(oldTerm.isCurrent).to.equal(false);
    });
  });

  describe('store calls', () => {
    it('elects and keeps a leader when every store call takes longer than retryPeriod (bounded by the renew deadline instead)', async () => {
      // Each call takes 200 ms, longer than retryPeriod (150 ms), the old timeout: no leader ever.
      // An acquisition (a read and a create) and the first renewal after renewInterval fit in
      // renewDeadline more than twice over, so a loaded machine's late timers do not matter.
      const timings = validateTimings({ leaseDuration: 3000, renewDeadline: 2000, retryPeriod: 150 });
      const store = new MemoryLockStore();
      store.delay(200);
      const a = elector(store, 'a', 'lock1', { timings });
      const changes: boolean[] = [];
      a.on('change', (c) => changes.push(c.isLocal));
      a.start();
      await waitFor(() => a.isLeader, { timeout: 3000 });
      const writes = store.writes;
      await waitFor(() => store.writes >= writes + 4, { timeout: 3000, message: 'four slow renewals' });
      expect(a.isLeader).to.equal(true);
      expect(changes.filter((c) => !c)).to.deep.equal([]);
      store.heal();
    });

    it('a follower whose store watch is down polls every retryPeriod, so a renewal it missed delays its takeover by at most one poll, not a lease', async () => {
      const store = new MemoryLockStore();
      const link = new PartitionableStore(store);
      const quiet = new WatchDown(store);
      const { b } = await leaderAndFollower(link, quiet);
      // Until now b has followed the renewals through the watch, without reading.
      const settled = store.writes;
      await waitFor(() => store.writes >= settled + 3, { message: 'three renewals' });
      // From now on b hears nothing and its store says its watch is down; the leader renews twice
      // more (b can only learn of that by reading), then dies.
      quiet.down();
      const writes = store.writes;
      await waitFor(() => store.writes >= writes + 2, { message: 'two renewals b did not hear of' });
      const killedAt = performance.now();
      link.cut();
      await waitFor(() => b.isLeader, { timeout: 3000 });
      // b saw the last renewal at most one poll after it was made (before killedAt), and takes over at
      // most one poll after that lease ran out; 50 ms for the timers and the store's notifications.
      expect(performance.now() - killedAt).to.be.below(fast.leaseDuration + 2 * fast.retryPeriod * fast.jitter + 50);
    });
  });

  describe('cluster service and views', () => {
    const services: ElectorClusterService[] = [];
    afterEach(async () => {
      await Promise.all(services.splice(0).map((s) => s.stop()));
    });

    function service(store: MemoryLockStore, memberId: string) {
      const capture = captureLogger();
      const s = new ElectorClusterService({ kind: 'memory', memberId, store, timings: fast, logger: capture.logger });
      services.push(s);
      return { service: s, ...capture };
    }

    it('lists another process under this member id that leads beside this one, not as this one', async () => {
      const store = new MemoryLockStore();
      const { service: first } = service(store, 'twin');
      await first.start();
      const leading = first.view('lock1');
      await waitFor(() => leading.isLeader);
      const { service: second } = service(store, 'twin');
      await second.start();
      const waiting = second.view('lock1');
      await waitFor(() => waiting.leader === 'twin');
      expect(waiting.isLeader).to.equal(false);
      expect(waiting.members).to.deep.include({ id: 'twin', isLocal: true, isLeader: false });
      expect(waiting.members).to.deep.include({ id: 'twin', isLocal: false, isLeader: true });
      expect(leading.members).to.deep.equal([{ id: 'twin', isLocal: true, isLeader: true }]);
    });

    it('tells a listener that joins late the current leadership at once', async () => {
      const store = new MemoryLockStore();
      const { service: a } = service(store, 'a');
      await a.start();
      const view = a.view('lock1');
      await waitFor(() => view.isLeader);
      const events: LeadershipEvent[] = [];
      view.on('leadership', (e) => events.push(e));
      await waitFor(() => events.length === 1);
      expect(events[0]).to.include({ lock: 'lock1', leader: 'a', isLocal: true });
      expect(events[0]!.term).to.equal(view.term);
      expect(events[0]!.term).to.include({ lock: 'lock1', memberId: 'a', isCurrent: true });
      expect(view.localMember).to.deep.equal({ id: 'a', isLocal: true, isLeader: true });
    });

    it('counts references: the lock is released only when the last view closes', async () => {
      const store = new MemoryLockStore();
      const { service: a, messages } = service(store, 'a');
      await a.start();
      const v1 = a.view('lock1');
      const v2 = a.view('lock1');
      await waitFor(() => v1.isLeader && v2.isLeader);
      await v1.close();
      expect(a.isLeader('lock1')).to.equal(true);
      await v2.close();
      expect(a.isLeader('lock1')).to.equal(false);
      expect(store.peek('lock1')!.record.holderIdentity).to.equal('');
      expect(messages()).to.include('member a is now leader of lock1 (this member)');
    });

    it('lists the members taking part', async () => {
      const store = new MemoryLockStore();
      const { service: a } = service(store, 'a');
      const { service: b } = service(store, 'b');
      await a.start();
      await b.start();
      const view = b.view('lock1');
      a.view('lock1');
      await waitFor(() => view.members.length === 2);
      expect(view.members.map((m) => [m.id, m.isLocal])).to.deep.equal([
        ['a', false],
        ['b', true],
      ]);
      expect(view.members.filter((m) => m.isLeader)).to.have.length(1);
    });

    it('runs a custom singleton service only on the leader, moving it on handover', async () => {
      const store = new MemoryLockStore();
      const log: string[] = [];
      const svc = (id: string) => ({ start: () => void log.push(`${id} start`), stop: async () => void log.push(`${id} stop`) });
      const { service: a } = service(store, 'a');
      const { service: b } = service(store, 'b');
      await a.start();
      const ha = singleton(a, 'lock2', svc('a'));
      await waitFor(() => ha.running);
      await b.start();
      const hb = singleton(b, 'lock2', svc('b'));
      await ha.close();
      await waitFor(() => hb.running);
      expect(log).to.deep.equal(['a start', 'a stop', 'b start']);
      await hb.close();
      expect(log.at(-1)).to.equal('b stop');
    });
  });
});

/** A store whose watch also announces new versions of an unchanged record, as a shared ConfigMap does. */
class Echoing implements LockStore {
  readonly #inner: MemoryLockStore;
  readonly #subscribers = new Set<(version?: string, record?: LockRecord | null) => void>();
  #echoes = 0;
  constructor(inner: MemoryLockStore) {
    this.#inner = inner;
  }
  echo(lock: string): void {
    const current = this.#inner.peek(lock);
    if (!current) return;
    this.#echoes += 1;
    for (const notify of this.#subscribers) notify(`${current.version}/echo-${this.#echoes}`, current.record);
  }
  get(lock: string, signal: AbortSignal) {
    return this.#inner.get(lock, signal);
  }
  create(lock: string, record: LockRecord, signal: AbortSignal) {
    return this.#inner.create(lock, record, signal);
  }
  update(lock: string, record: LockRecord, version: string, signal: AbortSignal) {
    return this.#inner.update(lock, record, version, signal);
  }
  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    this.#subscribers.add(onChange);
    const off = this.#inner.watch(lock, onChange);
    return () => {
      this.#subscribers.delete(onChange);
      off();
    };
  }
}

/** A store whose watch goes down on demand, as the Kubernetes stores' does: one notice, then silence, and watching() says so. */
class WatchDown implements LockStore {
  readonly #inner: MemoryLockStore;
  readonly #subscribers = new Set<(version?: string, record?: LockRecord | null) => void>();
  #down = false;
  constructor(inner: MemoryLockStore) {
    this.#inner = inner;
  }
  down(): void {
    this.#down = true;
    for (const notify of this.#subscribers) notify(undefined, undefined);
  }
  get(lock: string, signal: AbortSignal) {
    return this.#inner.get(lock, signal);
  }
  create(lock: string, record: LockRecord, signal: AbortSignal) {
    return this.#inner.create(lock, record, signal);
  }
  update(lock: string, record: LockRecord, version: string, signal: AbortSignal) {
    return this.#inner.update(lock, record, version, signal);
  }
  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    this.#subscribers.add(onChange);
    const off = this.#inner.watch(lock, (version, record) => {
      if (!this.#down) onChange(version, record);
    });
    return () => {
      this.#subscribers.delete(onChange);
      off();
    };
  }
  watching(): boolean {
    return !this.#down;
  }
}
