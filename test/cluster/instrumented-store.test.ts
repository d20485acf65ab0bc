import { expect } from 'chai';
import { InstrumentedLockStore } from '../../lib/cluster/election/instrumented-store.ts';
import { LockConflictError, microTime, type LockRecord } from '../../lib/cluster/election/lock-store.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { waitFor } from '../support/wait.ts';

function record(holder: string, fields: Partial<LockRecord> = {}): LockRecord {
  const now = microTime();
  return { holderIdentity: holder, holderInstance: `${holder}-1`, leaseDurationMs: 1000, acquireTime: now, renewTime: now, leaseTransitions: 0, ...fields };
}

describe('cluster store request counts (issue 13)', () => {
  it('counts each request by verb and outcome, tells listeners its duration, and keeps the optional methods the store has', async () => {
    const inner = new MemoryLockStore();
    const store = new InstrumentedLockStore(inner);
    const seen: Array<[string, string, number]> = [];
    const stop = store.onRequest((verb, outcome, seconds) => seen.push([verb, outcome, seconds]));
    const signal = new AbortController().signal;

    expect(await store.get('lock1', signal)).to.equal(undefined);
    const created = await store.create('lock1', record('a'), signal);
    await store.create('lock1', record('b'), signal).then(
      () => expect.fail('a second create must conflict'),
      (err: unknown) => expect(err).to.be.instanceOf(LockConflictError),
    );
    const renewed = await store.update('lock1', record('a'), created.version, signal);
    await store.update('lock1', record('b'), created.version, signal).catch(() => undefined); // a stale version: conflict
    inner.fail(1);
    await store.get('lock1', signal).catch(() => undefined);
    await store.update('lock1', record('', { holderInstance: 'a-1', releasedBy: 'a-1' }), renewed.version, signal);

    // A call its caller abandons counts as a timeout at once, not when (or whether) the store answers.
    inner.hang();
    const abandon = new AbortController();
    const hung = store.get('lock1', abandon.signal).catch(() => undefined);
    abandon.abort();
    await hung;
    inner.heal();

    const counts = Object.fromEntries(store.counts().map((c) => [`${c.verb} ${c.outcome}`, c.count]));
    expect(counts).to.deep.equal({ 'get ok': 1, 'create ok': 1, 'create conflict': 1, 'update ok': 1, 'update conflict': 1, 'get error': 1, 'release ok': 1, 'get timeout': 1 });
    expect(seen.map(([verb, outcome]) => `${verb} ${outcome}`)).to.deep.equal([
      'get ok',
      'create ok',
      'create conflict',
      'update ok',
      'update conflict',
      'get error',
      'release ok',
      'get timeout',
    ]);
    for (const [, , seconds] of seen) expect(seconds).to.be.at.least(0);
    stop();
    await store.get('lock1', signal);
    expect(seen).to.have.length(8);

    // The memory store watches; a store without a watch keeps none, so members do not wait for notifications.
    expect(store.watch).to.be.a('function');
    const notified: Array<string | undefined> = [];
    const unwatch = store.watch!('lock1', (version) => notified.push(version));
    await store.update('lock1', record('c'), inner.peek('lock1')!.version, signal);
    await waitFor(() => notified.length > 0, { message: 'the watch to pass the notification through' });
    unwatch();
    const bare = new InstrumentedLockStore({ get: inner.get.bind(inner), create: inner.create.bind(inner), update: inner.update.bind(inner) });
    expect(bare.watch).to.equal(undefined);
    expect(bare.members).to.equal(undefined);
    expect(bare.heartbeat).to.equal(undefined);
  });
});
