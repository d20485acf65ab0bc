import { expect } from 'chai';
import { assignLocks, Rebalancer, type LockSight } from '../../lib/cluster/rebalance.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { Elector } from '../../lib/cluster/election/elector.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { MemoryHeartbeatBackend } from '../../lib/cluster/election/heartbeat-memory.ts';
import { HeartbeatLockStore, heartbeatCadence } from '../../lib/cluster/election/heartbeat-store.ts';
import { LockConflictError, type LockRecord, type LockStore, type VersionedRecord } from '../../lib/cluster/election/lock-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { createClusterService, resolveClusterConfig } from '../../lib/cluster/config.ts';
import type { ClusterView, HandOverEvent } from '../../lib/cluster/cluster-service.ts';
import { Context } from '../../lib/engine/context.ts';
import { CLUSTER_SERVICE, MasterComponent } from '../../lib/components/master/master-component.ts';
import { singleton } from '../../lib/cluster/singleton.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { waitFor } from '../support/wait.ts';

const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
const locks = (n: number) => Array.from({ length: n }, (_, i) => `lock${i}`);

function tally(assignment: Map<string, string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of assignment.values()) counts.set(m, (counts.get(m) ?? 0) + 1);
  return counts;
}

describe('rebalancing: the assignment', () => {
  it('gives every lock to one member and no member more than ⌈L/M⌉ nor fewer than ⌊L/M⌋', () => {
    for (const L of [1, 2, 3, 7, 10, 25, 100]) {
      for (const M of [1, 2, 3, 4, 7]) {
        const members = Array.from({ length: M }, (_, i) => `member-${i}`);
        const assignment = assignLocks(locks(L), members);
        expect(assignment.size, `${L} locks over ${M}`).to.equal(L);
        const counts = tally(assignment);
        for (const m of members) expect(counts.get(m) ?? 0, `${m}: ${L} locks over ${M}`).to.be.within(Math.floor(L / M), Math.ceil(L / M));
      }
    }
  });

  it('is the same on every member: it depends on the names, not on the order they were seen in', () => {
    const a = assignLocks(locks(10), ['m1', 'm2', 'm3']);
    const b = assignLocks([...locks(10)].reverse(), ['m3', 'm1', 'm2', 'm1']);
    expect([...b].sort()).to.deep.equal([...a].sort());
  });

  it('moves few locks when a member joins (rendezvous hashing), not a reshuffle', () => {
    const before = assignLocks(locks(100), ['m1', 'm2', 'm3']);
    const after = assignLocks(locks(100), ['m1', 'm2', 'm3', 'm4']);
    const moved = [...before].filter(([lock, m]) => after.get(lock) !== m).length;
    // 25 must move to the newcomer; a reshuffle would move about 75.
    expect(moved).to.be.at.least(25).and.at.most(45);
  });
});

describe('rebalancing: the rebalancer', () => {
  /** A host whose locks are set by the test; records the hand-overs asked for. */
  function host(me: string, sight: LockSight[]) {
    const handed: string[] = [];
    return {
      handed,
      sight,
      host: { memberId: me, sight: () => sight, handOver: async (lock: string, to: string) => void handed.push(`${lock}->${to}`) },
    };
  }

  it('hands over only what is assigned to another live member, once the membership held still for settleMs', () => {
    let now = 0;
    const names = locks(4);
    const assignment = assignLocks(names, ['a', 'b']);
    const h = host('a', names.map((lock) => ({ lock, isLeader: true, leader: 'a', members: ['a', 'b'] })));
    const r = new Rebalancer(h.host, { intervalMs: 10, settleMs: 100, graceMs: 400, logger: captureLogger().logger, now: () => now });
    r.tick();
    expect(h.handed).to.deep.equal([]);
    now = 99;
    r.tick();
    expect(h.handed).to.deep.equal([]);
    now = 100;
    r.tick();
    expect(h.handed.sort()).to.deep.equal(names.filter((l) => assignment.get(l) === 'b').map((l) => `${l}->b`).sort());
    expect(h.handed).to.have.length(2);
  });

  it('keeps a member off a lock assigned to another live member until the lock went graceMs without a leader, then keeps it there a grace', () => {
    let now = 0;
    const names = locks(4);
    const assignment = assignLocks(names, ['a', 'b']);
    const theirs = names.find((l) => assignment.get(l) === 'b')!;
    const mine = names.find((l) => assignment.get(l) === 'a')!;
    const sight: LockSight[] = names.map((lock) => ({ lock, isLeader: false, leader: undefined, members: ['a', 'b'] }));
    const h = host('a', sight);
    const r = new Rebalancer(h.host, { intervalMs: 10, settleMs: 100, graceMs: 400, logger: captureLogger().logger, now: () => now });
    expect(r.mayAcquire(mine)).to.equal(true);
    expect(r.mayAcquire(theirs)).to.equal(false);
    now = 399;
    expect(r.mayAcquire(theirs)).to.equal(false);
    now = 400;
    expect(r.mayAcquire(theirs), 'its assignee did not take it for a grace').to.equal(true);
    // It now leads it; it does not hand it back at once (that would ping-pong with an assignee that does not take it)...
    sight[names.indexOf(theirs)] = { lock: theirs, isLeader: true, leader: 'a', members: ['a', 'b'] };
    now = 799;
    r.tick();
    expect(h.handed).to.deep.equal([]);
    // ...but after a grace it tries again, and the next wait is twice as long.
    now = 801;
    r.tick();
    expect(h.handed).to.deep.equal([`${theirs}->b`]);
  });

  it('a member no longer seen alive is not waited for', () => {
    const names = locks(2);
    const sight: LockSight[] = names.map((lock) => ({ lock, isLeader: false, leader: undefined, members: ['a'] }));
    const r = new Rebalancer(host('a', sight).host, { intervalMs: 10, settleMs: 100, graceMs: 400, logger: captureLogger().logger, now: () => 0 });
    for (const lock of names) expect(r.mayAcquire(lock)).to.equal(true);
  });
});

describe('rebalancing: the elector hooks', () => {
  const electors: Elector[] = [];
  afterEach(async () => {
    for (const e of electors.splice(0)) await e.stop();
  });

  function elector(store: MemoryLockStore, memberId: string, mayAcquire?: () => boolean): Elector {
    const e = new Elector({ lock: 'lock1', memberId, store, timings, logger: captureLogger().logger, ...(mayAcquire ? { mayAcquire } : {}) });
    electors.push(e);
    return e;
  }

  it('mayAcquire keeps a member off a free lock; yield releases and goes on as a follower, and another member takes over at once', async () => {
    const store = new MemoryLockStore();
    let bMay = false;
    let aMay = true;
    const a = elector(store, 'a', () => aMay);
    const b = elector(store, 'b', () => bMay);
    b.start();
    await waitFor(() => store.reads > 0);
    a.start();
    await waitFor(() => a.isLeader);
    expect(b.isLeader).to.equal(false);
    bMay = true;
    aMay = false;
    const outcome = await a.yield();
    expect(outcome).to.equal('released');
    // b takes it on the release notification, long before a lease.
    const released = performance.now();
    await waitFor(() => b.isLeader, { timeout: timings.leaseDuration });
    expect(performance.now() - released).to.be.below(timings.leaseDuration);
    expect(a.isLeader).to.equal(false);
  });

  it('a release that loses its compare-and-swap to another lock\'s write (one ConfigMap holds them all) reads and releases again', async () => {
    const inner = new MemoryLockStore();
    let conflicts = 1;
    // Like the ConfigMap store: another lock's write moved the shared object's version, so the first release conflicts.
    const store: LockStore = {
      get: (lock, s) => inner.get(lock, s),
      create: (lock, r, s) => inner.create(lock, r, s),
      update: async (lock, r, v, s) => {
        if (r.holderIdentity === '' && conflicts > 0) {
          conflicts -= 1;
          throw new LockConflictError(lock, 'the ConfigMap changed since it was read');
        }
        return inner.update(lock, r, v, s);
      },
    };
    const a = new Elector({ lock: 'lock1', memberId: 'a', store, timings, logger: captureLogger().logger });
    electors.push(a);
    a.start();
    await waitFor(() => a.isLeader);
    expect(await a.stop()).to.equal('released');
    expect((await inner.get('lock1', AbortSignal.timeout(1000)))!.record.releasedBy).to.equal(a.instanceId);
  });

  it('a follower that may not acquire leaves a free lock free', async () => {
    const store = new MemoryLockStore();
    const b = elector(store, 'b', () => false);
    b.start();
    await waitFor(() => store.reads >= 3, { timeout: 10 * timings.retryPeriod });
    expect(b.isLeader).to.equal(false);
    expect(store.writes).to.equal(0);
  });
});

/**
 * The memory store whose notifications name only the version, as the file store's do: followers
 * then poll every retryPeriod, and each poll is a heartbeat, so every member is seen alive.
 */
class VersionOnlyStore implements LockStore {
  readonly inner = new MemoryLockStore();
  get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    return this.inner.get(lock, signal);
  }
  create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    return this.inner.create(lock, record, signal);
  }
  update(lock: string, record: LockRecord, version: string, signal: AbortSignal): Promise<VersionedRecord> {
    return this.inner.update(lock, record, version, signal);
  }
  watch(lock: string, onChange: (version?: string) => void): () => void {
    return this.inner.watch(lock, (version) => onChange(version));
  }
  heartbeat(lock: string, memberId: string): Promise<void> {
    return this.inner.heartbeat(lock, memberId);
  }
  members(lock: string): Promise<string[]> {
    return this.inner.members(lock);
  }
}

describe('rebalancing: cluster services and master routes', () => {
  const stops: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  });

  function service(store: LockStore, memberId: string, logger = captureLogger().logger): ElectorClusterService {
    const s = new ElectorClusterService({ kind: 'memory', memberId, store, timings, logger, rebalance: true });
    stops.push(() => s.stop());
    return s;
  }

  function leading(services: ElectorClusterService[], names: string[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const s of services) counts.set(s.memberId, names.filter((l) => s.isLeader(l)).length);
    return counts;
  }

  it('three members, ten locks: 3-4 each once all run, 5 each after one stops, never two leaders of a lock', async () => {
    const store = new VersionOnlyStore();
    const names = locks(10);
    const services = ['a', 'b', 'c'].map((id) => service(store, id));
    let overlap = '';
    const check = setInterval(() => {
      for (const lock of names) if (services.filter((s) => s.isLeader(lock)).length > 1) overlap = lock;
    }, 2);
    stops.push(async () => clearInterval(check));
    for (const s of services) {
      for (const lock of names) s.view(lock);
      await s.start();
      await waitFor(() => names.every((l) => services.some((x) => x.isLeader(l))), { timeout: 5000 });
    }
    await waitFor(() => [...leading(services, names).values()].every((n) => n >= 3 && n <= 4), { timeout: 10_000, message: () => JSON.stringify([...leading(services, names)]) });
    await services[2]!.stop();
    const two = services.slice(0, 2);
    await waitFor(() => [...leading(two, names).values()].every((n) => n === 5), { timeout: 10_000, message: () => JSON.stringify([...leading(two, names)]) });
    expect(overlap, `two leaders of ${overlap}`).to.equal('');
  });

  for (const renewals of ['heartbeat', 'per-lock'] as const) {
    it(`on heartbeat records (${renewals} renewals), liveness comes from the heartbeats: followers that never poll are seen, 3-4 each, then 5 each`, async () => {
      const backend = new MemoryHeartbeatBackend();
      const names = locks(10);
      const cadence = heartbeatCadence(timings);
      const services = ['a', 'b', 'c'].map((id) => {
        // Per-lock renewals have no member list of their own here: membership asks for the heartbeats.
        const store = new HeartbeatLockStore({ backend, memberId: id, instanceId: `${id}-1`, timings, interval: cadence.interval, renewals, membership: true, logger: captureLogger().logger });
        const s = new ElectorClusterService({ kind: 'memory', memberId: id, store, timings, logger: captureLogger().logger, rebalance: true, elector: { renewInterval: cadence.renewInterval } });
        stops.push(() => s.stop());
        return s;
      });
      const views = new Map<ElectorClusterService, ClusterView>();
      for (const s of services) {
        for (const lock of names) views.set(s, s.view(lock));
        await s.start();
        await waitFor(() => names.every((l) => services.some((x) => x.isLeader(l))), { timeout: 5000 });
      }
      await waitFor(() => [...leading(services, names).values()].every((n) => n >= 3 && n <= 4), { timeout: 10_000, message: () => JSON.stringify([...leading(services, names)]) });
      // The member lists too (a leader counts for the rebalancer before its heartbeat was seen changing twice).
      const listed = (s: ElectorClusterService) => views.get(s)!.members.map((m) => m.id).join();
      await waitFor(() => services.every((s) => listed(s) === 'a,b,c'), { timeout: 4 * cadence.interval + 1000, message: () => `every member to list a, b and c: ${services.map(listed).join(' | ')}` });
      await services[2]!.stop();
      const two = services.slice(0, 2);
      await waitFor(() => [...leading(two, names).values()].every((n) => n === 5), { timeout: 10_000, message: () => JSON.stringify([...leading(two, names)]) });
      await waitFor(() => two.every((s) => listed(s) === 'a,b'), { timeout: timings.leaseDuration + 1000, message: 'c to drop from the member lists' });
    });
  }

  it('a hand-over waits for the views\' listeners to drain, and is called off (leadership replayed) when one cannot', async () => {
    // A lock the assignment gives to b once b joins.
    const lock = ['lock0', 'lock1', 'lock2', 'lock3'].find((l) => assignLocks([l], ['a', 'b']).get(l) === 'b')!;
    const store = new VersionOnlyStore();
    const a = service(store, 'a');
    const view: ClusterView = a.view(lock);
    await a.start();
    await waitFor(() => view.isLeader);
    let finish: (drained: boolean) => void = () => undefined;
    const handOvers: HandOverEvent[] = [];
    view.on('handover', (event) => {
      handOvers.push(event);
      event.defer(new Promise<boolean>((resolve) => (finish = resolve)));
    });
    const replays: boolean[] = [];
    view.on('leadership', (e) => void replays.push(e.isLocal));
    await waitFor(() => replays.length === 1);
    const b = service(store, 'b');
    b.view(lock);
    await b.start();
    await waitFor(() => handOvers.length === 1, { timeout: 5000 });
    expect(handOvers[0]!.to).to.equal('b');
    // Not released while the listener drains.
    const writes = store.inner.writes;
    await waitFor(() => store.inner.writes > writes + 5);
    expect(view.isLeader).to.equal(true);
    expect(b.isLeader(lock)).to.equal(false);
    finish(false);
    await waitFor(() => replays.length === 2);
    expect(replays[1]).to.equal(true);
    expect(view.isLeader).to.equal(true);
    // Next time it drains: then b takes over at once.
    await waitFor(() => handOvers.length === 2, { timeout: 10_000 });
    finish(true);
    await waitFor(() => b.isLeader(lock), { timeout: timings.leaseDuration });
    expect(view.isLeader).to.equal(false);
  });

  it('a master route stops consuming, finishes its exchange in flight, and only then is the lock released', async () => {
    const store = new VersionOnlyStore();
    const lock = ['lock0', 'lock1', 'lock2', 'lock3'].find((l) => assignLocks([l], ['a', 'b']).get(l) === 'b')!;
    const events: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const capture = captureLogger();
    const a = service(store, 'a', capture.logger);
    const context = new Context({ logger: capture.logger, components: { master: new MasterComponent({ backOffDelay: 20, backOffMaxAttempts: 3 }) } });
    context.addService(CLUSTER_SERVICE, a);
    stops.push(() => context.stop());
    let started = 0;
    await context.addRoutes((r) =>
      r.from(`master:${lock}:timer:t?period=20&delay=0`).process(async () => {
        started += 1;
        if (started !== 1) return;
        events.push('exchange started');
        await gate;
        events.push(`exchange finished, a leads: ${a.isLeader(lock)}`);
      }),
    );
    await context.start();
    await waitFor(() => started === 1);
    const b = service(store, 'b');
    const bView = b.view(lock);
    bView.on('leadership', (e) => {
      if (e.isLocal) events.push('b leads');
    });
    await b.start();
    await waitFor(() => capture.messages().some((m) => m.includes(`hands ${lock} over to b`)), { timeout: 5000 });
    await waitFor(() => capture.messages().some((m) => m.includes('Stopping consumer')));
    expect(a.isLeader(lock)).to.equal(true);
    release();
    await waitFor(() => events.includes('b leads'), { timeout: 5000 });
    expect(events).to.deep.equal(['exchange started', 'exchange finished, a leads: true', 'b leads']);
    expect(started, 'no exchange started on a after its consumer stopped').to.equal(1);
  });
});

describe('rebalancing: singleton services', () => {
  it('a singleton service is stopped (and its stop awaited) before the lock is handed over', async () => {
    const lock = ['lock0', 'lock1', 'lock2', 'lock3'].find((l) => assignLocks([l], ['a', 'b']).get(l) === 'b')!;
    const store = new VersionOnlyStore();
    const services = ['a', 'b'].map((id) => new ElectorClusterService({ kind: 'memory', memberId: id, store, timings, logger: captureLogger().logger, rebalance: true }));
    const [a, b] = services as [ElectorClusterService, ElectorClusterService];
    const events: string[] = [];
    try {
      const handle = singleton(a, lock, {
        start: () => void events.push('a started'),
        stop: async () => {
          events.push('a stopping');
          await new Promise((resolve) => setTimeout(resolve, 100));
          events.push(`a stopped, a leads: ${a.isLeader(lock)}`);
        },
      });
      await a.start();
      await waitFor(() => handle.running);
      b.view(lock).on('leadership', (e) => {
        if (e.isLocal) events.push('b leads');
      });
      await b.start();
      await waitFor(() => events.includes('b leads'), { timeout: 5000 });
      expect(events).to.deep.equal(['a started', 'a stopping', 'a stopped, a leads: true', 'b leads']);
    } finally {
      for (const s of services) await s.stop();
    }
  });
});

describe('rebalancing: configuration', () => {
  it('is off by default, on with DROMEDARY_REBALANCE=true or the flag, and a value that is not a boolean names the variable', () => {
    expect(resolveClusterConfig({ env: {} }).rebalance).to.equal(false);
    expect(resolveClusterConfig({ env: { DROMEDARY_REBALANCE: 'true' } }).rebalance).to.equal(true);
    expect(resolveClusterConfig({ env: { DROMEDARY_REBALANCE: 'false' } }).rebalance).to.equal(false);
    expect(resolveClusterConfig({ env: { DROMEDARY_REBALANCE: 'false' }, flags: { rebalance: true } }).rebalance).to.equal(true);
    expect(() => resolveClusterConfig({ env: { DROMEDARY_REBALANCE: 'sometimes' } })).to.throw(/DROMEDARY_REBALANCE="sometimes" is not true or false/);
  });

  it('a backend that cannot rebalance says so at startup', async () => {
    const capture = captureLogger();
    const cluster = await createClusterService(resolveClusterConfig({ env: { DROMEDARY_REBALANCE: 'true' }, flags: { cluster: 'none' } }), capture.logger);
    await cluster.stop();
    expect(capture.messages().join('\n')).to.contain('Rebalancing (DROMEDARY_REBALANCE, --rebalance) is not supported by the none backend');
  });
});
