import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { FileLockStore } from '../../lib/cluster/file/file-lock-store.ts';
import { leaseRecord } from '../../lib/cluster/kubernetes/lease-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { singleton, type SingletonTerm } from '../../lib/cluster/singleton.ts';
import { ConfigurationError, LeadershipLostError, LeaderStateTooLargeError } from '../../lib/errors.ts';
import { LEADER_STATE_MAX_BYTES, type JsonValue } from '../../lib/spi/leader-state.ts';
import type { ClusterView } from '../../lib/cluster/cluster-service.ts';
import type { LockRecord, LockStore, VersionedRecord } from '../../lib/cluster/election/lock-store.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { waitFor } from '../support/wait.ts';
import { PartitionableStore } from '../support/partitionable-store.ts';

// Long enough that a busy machine's stalls never lapse a term by themselves: the tests that need a
// lapse play it with the elector's clock (a pause, as SIGSTOP would make).
const timings = validateTimings({ leaseDuration: 6000, renewDeadline: 4000, retryPeriod: 300 });

/** Passes every call to a store and keeps the records of the updates that succeeded. */
class Recording implements LockStore {
  readonly inner: LockStore;
  readonly updates: LockRecord[] = [];
  readonly watch?: LockStore['watch'];
  constructor(inner: LockStore) {
    this.inner = inner;
    if (inner.watch) this.watch = (lock, onChange) => inner.watch!(lock, onChange);
  }
  get(lock: string, signal: AbortSignal) {
    return this.inner.get(lock, signal);
  }
  create(lock: string, record: LockRecord, signal: AbortSignal) {
    return this.inner.create(lock, record, signal);
  }
  async update(lock: string, record: LockRecord, version: string, signal: AbortSignal): Promise<VersionedRecord> {
    const written = await this.inner.update(lock, record, version, signal);
    this.updates.push(record);
    return written;
  }
}

describe('leader state on the elector backends (ClusterView.state)', () => {
  const services: ElectorClusterService[] = [];
  const dirs: string[] = [];
  let skew = 0;
  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    skew = 0;
  });

  async function member(id: string, store: LockStore, options: { clock?: boolean } = {}): Promise<ElectorClusterService> {
    const elector = options.clock ? { now: () => performance.now() + skew } : {};
    const service = new ElectorClusterService({ kind: 'memory', memberId: id, store, timings, logger: captureLogger().logger, elector });
    services.push(service);
    await service.start();
    return service;
  }

  async function leading(id: string, store: LockStore, options: { clock?: boolean } = {}): Promise<ClusterView> {
    const view = (await member(id, store, options)).view('lock1');
    await waitFor(() => view.isLeader, { message: `${id} to lead lock1` });
    return view;
  }

  async function rejection(promise: Promise<unknown>): Promise<unknown> {
    return promise.then(
      () => expect.fail('the call resolved'),
      (err: unknown) => err,
    );
  }

  it('the leader writes a key into the lock record; any member reads it, and renewals carry it forward', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store);
    const b = (await member('b', store)).view('lock1');
    await waitFor(() => b.leader === 'a');
    await a.state.set('cursor', { since: 42, etag: 'W/"7"' });
    expect(store.peek('lock1')!.record.state).to.deep.equal({ cursor: { since: 42, etag: 'W/"7"' } });
    expect(await a.state.get('cursor')).to.deep.equal({ since: 42, etag: 'W/"7"' });
    expect(await b.state.get('cursor')).to.deep.equal({ since: 42, etag: 'W/"7"' });
    expect(await b.state.get('other')).to.equal(undefined);
    const writes = store.writes;
    await waitFor(() => store.writes >= writes + 3, { message: 'three renewals' });
    expect(store.peek('lock1')!.record.state).to.deep.equal({ cursor: { since: 42, etag: 'W/"7"' } });
    await a.state.set('cursor', undefined);
    expect(store.peek('lock1')!.record.state).to.equal(undefined);
    expect(await b.state.get('cursor')).to.equal(undefined);
  });

  it('gives copies: changing a value after set() or after get() changes nothing stored', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store);
    const value = { ids: [1, 2] };
    const saved = a.state.set('seen', value);
    value.ids.push(3);
    await saved;
    const read = (await a.state.get('seen')) as { ids: number[] };
    read.ids.push(4);
    expect(await a.state.get('seen')).to.deep.equal({ ids: [1, 2] });
    expect(store.peek('lock1')!.record.state).to.deep.equal({ seen: { ids: [1, 2] } });
  });

  it('refuses a write whose compare-and-swap fails because someone else wrote the record: the term ends, the other writer’s state stays', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store);
    await a.state.set('cursor', 1);
    const term = a.term!;
    // As a second leader would (or `kubectl edit`): a new holder and its own state, before a's watch has told it.
    store.overwrite('lock1', { holderIdentity: 'intruder', holderInstance: 'elsewhere', fencingToken: term.token + 1, state: { cursor: 99 } });
    const err = await rejection(a.state.set('cursor', 2));
    expect(err).to.be.instanceOf(LeadershipLostError);
    expect((err as LeadershipLostError).lock).to.equal('lock1');
    expect(store.peek('lock1')!.record.state).to.deep.equal({ cursor: 99 });
    expect(term.isCurrent).to.equal(false);
    expect(a.isLeader).to.equal(false);
  });

  it('refuses a write of a term that has lapsed (a pause past renewDeadline), before any write is made', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store, { clock: true });
    const term = a.term!;
    const writes = store.writes;
    skew = timings.renewDeadline + 1;
    const err = await rejection(a.state.set('cursor', 5, { term }));
    expect(err).to.be.instanceOf(LeadershipLostError);
    expect(store.writes).to.equal(writes);
    expect(store.peek('lock1')!.record.state).to.equal(undefined);
  });

  it('refuses an ended term’s write even when the same member leads again, in a new term', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store, { clock: true });
    const old = a.term!;
    skew = timings.renewDeadline + 1;
    expect(a.isLeader).to.equal(false);
    await waitFor(() => a.term !== undefined && a.term !== old, { message: 'a new term of a' });
    expect(await rejection(a.state.set('k', 1, { term: old }))).to.be.instanceOf(LeadershipLostError);
    await a.state.set('k', 2, { term: a.term! });
    expect(await a.state.get('k')).to.equal(2);
  });

  it('refuses a write from a member that does not lead, and from a closed view', async () => {
    const store = new MemoryLockStore();
    await leading('a', store);
    const b = (await member('b', store)).view('lock1');
    await waitFor(() => b.leader === 'a');
    expect(await rejection(b.state.set('k', 1))).to.be.instanceOf(LeadershipLostError).with.property('message').that.matches(/does not lead/);
    const c = (await member('c', store)).view('lock1');
    await c.close();
    expect(await rejection(c.state.set('k', 1))).to.be.instanceOf(LeadershipLostError);
  });

  it('coalesces calls made while a write is in flight into one next write, the last value of a key winning', async () => {
    const memory = new MemoryLockStore();
    const store = new Recording(memory);
    const a = await leading('a', store);
    memory.delay(100);
    const first = a.state.set('k', 1);
    const rest = [a.state.set('k', 2), a.state.set('j', 'x'), a.state.set('k', 3), a.state.set('j', undefined), a.state.set('m', true)];
    const from = store.updates.length;
    await Promise.all([first, ...rest]);
    const carrying = store.updates.slice(from).filter((r) => r.state !== undefined);
    // The first call's write, then one write for the five calls made while it was in flight.
    expect(carrying.map((r) => r.state)).to.deep.equal([{ k: 1 }, { k: 3, m: true }]);
    expect(memory.peek('lock1')!.record.state).to.deep.equal({ k: 3, m: true });
  });

  it('keeps a change whose write failed (a store error) and writes it with the next attempt, which resolves the call', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store);
    store.fail(1);
    const saved = a.state.set('k', 'v');
    await waitFor(() => store.peek('lock1')!.record.state !== undefined, { timeout: 3 * timings.retryPeriod * timings.jitter + 2000, message: 'the retry to write the change' });
    await saved;
    expect(store.peek('lock1')!.record.state).to.deep.equal({ k: 'v' });
    expect(a.isLeader).to.equal(true);
  });

  it('bounds the whole state to LEADER_STATE_MAX_BYTES of UTF-8 JSON, refusing the write that would pass it', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store);
    // {"a":"…"} takes 8 bytes besides the text.
    const exact = 'x'.repeat(LEADER_STATE_MAX_BYTES - 8);
    await a.state.set('a', exact);
    expect(Buffer.byteLength(JSON.stringify(store.peek('lock1')!.record.state))).to.equal(LEADER_STATE_MAX_BYTES);
    const err = await rejection(a.state.set('b', 1));
    expect(err).to.be.instanceOf(LeaderStateTooLargeError);
    expect((err as LeaderStateTooLargeError).message).to.match(/lock lock1 would take 8198 bytes with key b, above its limit of 8192/);
    // Multi-byte characters count as their UTF-8 bytes: é is two.
    const twoBytes = 'é'.repeat((LEADER_STATE_MAX_BYTES - 8) / 2);
    await a.state.set('a', twoBytes);
    expect(await rejection(a.state.set('a', `${twoBytes}é`))).to.be.instanceOf(LeaderStateTooLargeError);
    expect(await rejection(a.state.set('big', 'y'.repeat(2 * LEADER_STATE_MAX_BYTES)))).to.be.instanceOf(LeaderStateTooLargeError);
    expect(store.peek('lock1')!.record.state).to.deep.equal({ a: twoBytes });
    // Making room is allowed: removing a key, then adding another.
    await a.state.set('a', undefined);
    await a.state.set('b', 1);
    expect(store.peek('lock1')!.record.state).to.deep.equal({ b: 1 });
  });

  it('counts changes still waiting to be written against the bound', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store);
    store.delay(100);
    const half = 'x'.repeat(LEADER_STATE_MAX_BYTES / 2);
    const first = a.state.set('a', half);
    const err = await rejection(a.state.set('b', half));
    expect(err).to.be.instanceOf(LeaderStateTooLargeError);
    await first;
    expect(Object.keys(store.peek('lock1')!.record.state!)).to.deep.equal(['a']);
  });

  it('refuses a value JSON cannot represent with a ConfigurationError naming the key and the part', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store);
    const cycle: Record<string, unknown> = { name: 'c' };
    cycle.self = cycle;
    const cases: Array<[unknown, RegExp]> = [
      [() => 1, /the value is a function/],
      [{ at: undefined }, /the value\.at is undefined/],
      [[1, undefined], /the value\[1\] is undefined/],
      [Number.NaN, /the value is NaN/],
      [{ n: Number.POSITIVE_INFINITY }, /the value\.n is Infinity/],
      [{ big: 10n }, /the value\.big is a BigInt, .*store it as a string/],
      [cycle, /the value\.self is a reference back .* \(a cycle\)/],
      [new Map([[1, 2]]), /the value is a Map/],
      [{ when: new Date(0) }, /the value\.when is a Date, .*toISOString/],
      [[1, , 3], /the value\[1\] is a hole in a sparse array/],
      [Symbol('s'), /the value is a symbol/],
    ];
    for (const [value, message] of cases) {
      const err = await rejection(a.state.set('cursor', value as JsonValue));
      expect(err, String(message)).to.be.instanceOf(ConfigurationError);
      expect((err as Error).message).to.match(/The leader state of lock lock1 cannot store key cursor: /);
      expect((err as Error).message).to.match(message);
    }
    // The same object twice (not a cycle) is fine.
    const shared = { x: 1 };
    await a.state.set('cursor', { a: shared, b: shared, list: [shared, null, 'é', -0.5, false] });
    expect(await a.state.get('cursor')).to.deep.equal({ a: { x: 1 }, b: { x: 1 }, list: [{ x: 1 }, null, 'é', -0.5, false] });
    expect(await rejection(a.state.set('', 1))).to.be.instanceOf(ConfigurationError);
  });

  it('rejects the calls still waiting when the term ends before they could be written', async () => {
    const store = new MemoryLockStore();
    const a = await leading('a', store, { clock: true });
    store.hang();
    const pending = a.state.set('k', 1);
    skew = timings.renewDeadline + 1;
    // Read on the monotonic clock: the term has lapsed; its end rejects what waits.
    expect(a.isLeader).to.equal(false);
    expect(await rejection(pending)).to.be.instanceOf(LeadershipLostError);
    store.heal();
  });

  it('a new leader keeps the previous holder’s state after a graceful handover: the release carries it, the takeover writes it forward', async () => {
    const store = new MemoryLockStore();
    const aService = await member('a', store, { clock: true });
    const a = aService.view('lock1');
    await waitFor(() => a.isLeader);
    await a.state.set('cursor', 7);
    const b = (await member('b', store)).view('lock1');
    await waitFor(() => b.leader === 'a');
    // Graceful: a's release carries the state, and b's takeover writes it forward.
    await aService.stop();
    await waitFor(() => b.isLeader);
    expect(await b.state.get('cursor')).to.equal(7);
    await b.state.set('cursor', 8);
    expect(store.peek('lock1')!.record).to.include({ holderIdentity: 'b' });
    expect(store.peek('lock1')!.record.state).to.deep.equal({ cursor: 8 });
  });

  it('a takeover after the leader stopped renewing keeps what it wrote last', async () => {
    const fast = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
    const memory = new MemoryLockStore();
    const cut = new PartitionableStore(memory);
    const a = new ElectorClusterService({ kind: 'memory', memberId: 'a', store: cut, timings: fast, logger: captureLogger().logger });
    const b = new ElectorClusterService({ kind: 'memory', memberId: 'b', store: memory, timings: fast, logger: captureLogger().logger });
    services.push(a, b);
    await a.start();
    const va = a.view('lock1');
    await waitFor(() => va.isLeader);
    await va.state.set('cursor', 'last-of-a');
    await b.start();
    const vb = b.view('lock1');
    cut.cut();
    await waitFor(() => vb.isLeader, { timeout: 5000 });
    expect(await vb.state.get('cursor')).to.equal('last-of-a');
    expect(memory.peek('lock1')!.record.state).to.deep.equal({ cursor: 'last-of-a' });
  });

  it('a write not awaited before stop goes out with the release', async () => {
    const store = new MemoryLockStore();
    const service = await member('a', store);
    const a = service.view('lock1');
    await waitFor(() => a.isLeader);
    store.delay(100);
    const first = a.state.set('k', 1);
    const second = a.state.set('k', 2);
    await service.stop();
    await Promise.all([first, second]);
    const { record } = store.peek('lock1')!;
    expect(record.holderIdentity).to.equal('');
    expect(record.state).to.deep.equal({ k: 2 });
  });

  it('reads work with no leader, and a deleted record has lost its state', async () => {
    const store = new MemoryLockStore();
    const service = await member('a', store);
    const a = service.view('lock1');
    await waitFor(() => a.isLeader);
    await a.state.set('k', 'v');
    await service.stop();
    const b = new ElectorClusterService({ kind: 'memory', memberId: 'b', store, timings, logger: captureLogger().logger });
    // Not started: it campaigns for nothing, and still reads.
    expect(await b.view('lock1').state.get('k')).to.equal('v');
    store.remove('lock1');
    expect(await b.view('lock1').state.get('k')).to.equal(undefined);
  });

  it('a singleton’s term is a LeadershipTerm for set(): work of the term saves its progress with it', async () => {
    const store = new MemoryLockStore();
    const cluster = await member('a', store);
    const view = cluster.view('lock1');
    const terms: SingletonTerm[] = [];
    const handle = singleton(cluster, 'lock1', { start: (term) => void terms.push(term) });
    await waitFor(() => handle.running);
    await view.state.set('cursor', 3, { term: terms[0]! });
    expect(await view.state.get('cursor')).to.equal(3);
    await handle.close();
  });

  it('the file store keeps the state in the record’s JSON, for another process’s store to read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dromedary-state-'));
    dirs.push(dir);
    const a = await leading('a', new FileLockStore(dir));
    await a.state.set('cursor', { since: 'ü-1' });
    const files = (await readdir(join(dir, 'lock1'))).filter((n) => n.endsWith('.json')).sort();
    const newest = JSON.parse(await readFile(join(dir, 'lock1', files.at(-1)!), 'utf8')) as LockRecord;
    expect(newest.state).to.deep.equal({ cursor: { since: 'ü-1' } });
    const other = new ElectorClusterService({ kind: 'file', memberId: 'b', store: new FileLockStore(dir), timings, logger: captureLogger().logger });
    expect(await other.view('lock1').state.get('cursor')).to.deep.equal({ since: 'ü-1' });
    const err = await rejection(other.view('lock1').state.set('cursor', 1));
    expect(err).to.be.instanceOf(LeadershipLostError);
  });

  it('reads a hand-edited state that is not a JSON object as no state (file record, Lease annotation)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dromedary-state-'));
    dirs.push(dir);
    const files = new FileLockStore(dir);
    const created = await files.create('edited', { holderIdentity: '', leaseDurationMs: 1000, acquireTime: '', renewTime: '', leaseTransitions: 0 }, AbortSignal.timeout(5000));
    await files.update('edited', { ...created.record, state: 'oops' as unknown as LockRecord['state'] }, created.version, AbortSignal.timeout(5000));
    expect((await files.get('edited'))!.record).not.to.have.property('state');
    for (const text of ['[1,2]', 'null', '"text"', '{not json', '']) {
      expect(leaseRecord({ metadata: { annotations: { 'dromedary.io/leader-state': text } }, spec: {} }), text).not.to.have.property('state');
    }
    expect(leaseRecord({ metadata: { annotations: { 'dromedary.io/leader-state': '{"k":[1]}' } }, spec: {} }).state).to.deep.equal({ k: [1] });
  });
});

