import { expect } from 'chai';
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileLockStore } from '../../lib/cluster/file/file-lock-store.ts';
import { LockConflictError, type LockRecord, type LockStore } from '../../lib/cluster/election/lock-store.ts';
import { Elector } from '../../lib/cluster/election/elector.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { waitFor } from '../support/wait.ts';
import { recordLeadership } from '../support/leadership-intervals.ts';

const record = (holder: string): LockRecord => ({ holderIdentity: holder, leaseDurationMs: 1000, acquireTime: 't', renewTime: 't', leaseTransitions: 0 });
const signal = new AbortController().signal;

describe('file lock store', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dromedary-filestore-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates once: a second create of the same lock conflicts', async () => {
    const store = new FileLockStore(root);
    const created = await store.create('lock1', record('a'), signal);
    expect(created.version).to.equal('1');
    await store.create('lock1', record('b'), signal).then(() => expect.fail('should conflict'), (e) => expect(e).to.be.instanceOf(LockConflictError));
    expect((await store.get('lock1', signal))!.record.holderIdentity).to.equal('a');
  });

  it('updates by compare-and-swap: of two writers of the same version exactly one wins', async () => {
    const a = new FileLockStore(root);
    const b = new FileLockStore(root);
    const v1 = await a.create('lock1', record('a'), signal);
    const results = await Promise.allSettled([a.update('lock1', record('a'), v1.version, signal), b.update('lock1', record('b'), v1.version, signal)]);
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).to.be.instanceOf(LockConflictError);
  });

  it('refuses a stale version, even one whose file was garbage-collected', async () => {
    const store = new FileLockStore(root, { keepVersions: 2 });
    let current = await store.create('lock1', record('a'), signal);
    const stale = current.version;
    for (let i = 0; i < 5; i += 1) current = await store.update('lock1', record('a'), current.version, signal);
    await store.update('lock1', record('late'), stale, signal).then(() => expect.fail('should conflict'), (e) => expect(e).to.be.instanceOf(LockConflictError));
    expect((await store.get('lock1', signal))!.record.holderIdentity).to.equal('a');
    await waitFor(async () => (await readdir(join(root, 'lock1'))).filter((n) => n.startsWith('v')).length <= 3);
  });

  it('fails an update whose record was deleted meanwhile (lock files or folder removed), publishing nothing', async () => {
    const store = new FileLockStore(root);
    let current = await store.create('lock1', record('a'), signal);
    current = await store.update('lock1', record('a'), current.version, signal);
    for (const name of await readdir(join(root, 'lock1'))) if (name.startsWith('v')) await rm(join(root, 'lock1', name));
    await store.update('lock1', record('a'), current.version, signal).then(() => expect.fail('should conflict'), (e) => expect(e).to.be.instanceOf(LockConflictError));
    expect(await store.get('lock1', signal)).to.equal(undefined);
    await rm(join(root, 'lock1'), { recursive: true });
    await store.update('lock1', record('a'), current.version, signal).then(() => expect.fail('should conflict'), (e) => expect(e).to.be.instanceOf(LockConflictError));
    expect(await store.get('lock1', signal)).to.equal(undefined);
  });

  it('refuses an update based on a version of a deleted record, when a record created again has reached the same number', async () => {
    const stale = new FileLockStore(root);
    const fresh = new FileLockStore(root);
    let read = await stale.create('lock1', record('a'), signal);
    read = await stale.update('lock1', record('a'), read.version, signal);
    read = (await stale.get('lock1', signal))!;
    expect(read.version).to.equal('2');
    await rm(join(root, 'lock1'), { recursive: true });
    // Another member never saw the old record: it starts the lock again, and renews once.
    const again = await fresh.create('lock1', record('c'), signal);
    const current = await fresh.update('lock1', record('c'), again.version, signal);
    expect(current.version).to.equal(read.version);
    await stale.update('lock1', record('a'), read.version, signal).then(
      () => expect.fail('should conflict'),
      (e) => expect(e).to.be.instanceOf(LockConflictError).with.property('message').that.matches(/created again/),
    );
    expect((await fresh.get('lock1', signal))!).to.deep.include({ version: '2' });
    expect((await fresh.get('lock1', signal))!.record.holderIdentity).to.equal('c');
    // The member that created it again goes on renewing.
    await fresh.update('lock1', record('c'), current.version, signal);
  });

  it('gives electors on the real store a fencing token per term that only increases: a paused leader\'s is below its successor\'s, and the lock folder removed does not restart them', async () => {
    const timings = validateTimings({ leaseDuration: 600, renewDeadline: 400, retryPeriod: 60 });
    const paused = new Pausable(new FileLockStore(root));
    const a = new Elector({ lock: 'lock1', memberId: 'a', store: paused, timings, logger: captureLogger().logger });
    const b = new Elector({ lock: 'lock1', memberId: 'b', store: new FileLockStore(root), timings, logger: captureLogger().logger });
    try {
      a.start();
      await waitFor(() => a.isLeader);
      b.start();
      await waitFor(() => b.leader === 'a');
      const first = a.term!;
      paused.pause(); // as SIGSTOP: a neither renews nor hears anything
      await waitFor(() => b.isLeader, { timeout: 3000 });
      const second = b.term!;
      expect(second.token).to.be.above(first.token);
      paused.resume(); // as SIGCONT
      expect(first.isCurrent).to.equal(false);
      // At one instant, as someone removing the lock folder (moved away first: a live member may be writing into it).
      await rename(join(root, 'lock1'), join(root, 'lock1.removed'));
      await waitFor(() => (a.term ?? b.term)?.token !== second.token && (a.isLeader || b.isLeader), { timeout: 5000, message: 'a term after the folder was removed' });
      expect((a.term ?? b.term)!.token).to.be.above(second.token);
    } finally {
      paused.resume();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('leaves no temporary files behind after normal writes', async () => {
    const store = new FileLockStore(root);
    let current = await store.create('lock1', record('a'), signal);
    current = await store.update('lock1', record('a'), current.version, signal);
    expect((await readdir(join(root, 'lock1'))).filter((n) => n.startsWith('.tmp'))).to.deep.equal([]);
  });

  it('keeps one leader among many electors racing on one folder, each with its own store', async () => {
    const timings = validateTimings({ leaseDuration: 600, renewDeadline: 400, retryPeriod: 60 });
    const electors = Array.from(
      { length: 10 },
      (_, i) => new Elector({ lock: 'race', memberId: `m${i}`, store: new FileLockStore(root), timings, logger: captureLogger().logger }),
    );
    const leadership = recordLeadership(electors);
    for (const e of electors) e.start();
    try {
      for (let round = 0; round < 5; round += 1) {
        const leader = await waitFor(() => electors.find((e) => e.isLeader), { timeout: 5000 });
        expect(electors.filter((e) => e.isLeader)).to.have.length(1);
        await leader.stop();
        leader.start();
      }
    } finally {
      await Promise.all(electors.map((e) => e.stop()));
    }
    leadership.assertNoOverlap(5);
  });
});

/** A member's access to its store that can be paused: calls wait (until aborted) while paused, as a stopped process's would. */
class Pausable implements LockStore {
  readonly #inner: LockStore;
  #paused = false;
  readonly #waiting = new Set<() => void>();
  constructor(inner: LockStore) {
    this.#inner = inner;
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    this.#paused = false;
    for (const go of this.#waiting) go();
    this.#waiting.clear();
  }
  async #gate(signal: AbortSignal): Promise<void> {
    if (!this.#paused) return;
    await new Promise<void>((resolve, reject) => {
      this.#waiting.add(resolve);
      signal.addEventListener('abort', () => reject(new Error('paused')), { once: true });
    });
  }
  async get(lock: string, signal: AbortSignal) {
    await this.#gate(signal);
    return this.#inner.get(lock, signal);
  }
  async create(lock: string, record: LockRecord, signal: AbortSignal) {
    await this.#gate(signal);
    return this.#inner.create(lock, record, signal);
  }
  async update(lock: string, record: LockRecord, version: string, signal: AbortSignal) {
    await this.#gate(signal);
    return this.#inner.update(lock, record, version, signal);
  }
}
