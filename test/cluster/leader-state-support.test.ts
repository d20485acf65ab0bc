import { expect } from 'chai';
import { LeaderStateSupport, type LeaderStateRecord, type LeaderStateUpdate } from '../../lib/cluster/leader-state-support.ts';
import { Term } from '../../lib/cluster/term.ts';
import type { LeadershipTerm } from '../../lib/cluster/cluster-service.ts';
import { ConfigurationError, LeaderStateTooLargeError, LeadershipLostError } from '../../lib/errors.ts';

// The store behind the support is a plain object here: the backends' own tests run it on real servers.
function harness(options: { maxBytes?: number } = {}) {
  const store: { state: LeaderStateRecord; writes: number; fail: number; refuse: boolean; gate?: Promise<void> } = { state: {}, writes: 0, fail: 0, refuse: false };
  let current: Term | undefined = new Term('lock1', 'a', 1, () => true);
  const support = new LeaderStateSupport({
    lock: 'lock1',
    memberId: 'a',
    currentTerm: () => current,
    read: async () => store.state,
    commit: async (term: LeadershipTerm, update: (s: LeaderStateRecord) => LeaderStateUpdate) => {
      await store.gate;
      if (store.refuse) throw new LeadershipLostError('lock1', 'a', 'the store refused', term.token);
      if (store.fail > 0) {
        store.fail -= 1;
        throw new Error('connection reset');
      }
      const { json } = update(store.state);
      store.state = JSON.parse(json) as LeaderStateRecord;
      store.writes += 1;
    },
    retryDelay: 5,
    ...options,
  });
  return { store, support, term: () => current!, setTerm: (t: Term | undefined) => (current = t) };
}

describe('leader state support (validation, bound, coalescing)', () => {
  it('stores values, reads them back, and removes a key set to undefined', async () => {
    const { store, support } = harness();
    await support.set('cursor', { since: 42 });
    expect(store.state).to.deep.equal({ cursor: { since: 42 } });
    expect(await support.get('cursor')).to.deep.equal({ since: 42 });
    await support.set('cursor', undefined);
    expect(store.state).to.deep.equal({});
    expect(await support.get('cursor')).to.equal(undefined);
  });

  it('coalesces calls made while a write is in flight into one more write, the last value winning', async () => {
    const { store, support } = harness();
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const first = support.set('n', 1);
    const later = [support.set('n', 2), support.set('n', 3), support.set('other', 'x'), support.set('n', 4)];
    open();
    await Promise.all([first, ...later]);
    expect(store.writes).to.equal(2);
    expect(store.state).to.deep.equal({ n: 4, other: 'x' });
  });

  it('refuses values that are not JSON with a ConfigurationError naming the key', async () => {
    const { support } = harness();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [Number.NaN, new Date(0), { a: undefined }, () => 1, 1n, cyclic, [1, , 3]]) {
      const err = await support.set('bad-key', bad as never).then(() => undefined, (e: unknown) => e);
      expect(err, String(bad)).to.be.instanceOf(ConfigurationError);
      expect((err as Error).message).to.contain('bad-key');
    }
  });

  it('refuses only the key that would take the state over its bound, keeping the others of the same write', async () => {
    const { store, support } = harness({ maxBytes: 100 });
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const first = support.set('a', 1);
    const small = support.set('b', 'x'.repeat(20));
    const big = support.set('c', 'y'.repeat(200));
    open();
    await first;
    await small;
    const err = await big.then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(LeaderStateTooLargeError);
    expect((err as LeaderStateTooLargeError).message).to.contain('key c');
    expect(store.state).to.deep.equal({ a: 1, b: 'x'.repeat(20) });
  });

  it('retries a write that failed for another reason while the term lasts', async () => {
    const { store, support } = harness();
    store.fail = 2;
    await support.set('n', 7);
    expect(store.state).to.deep.equal({ n: 7 });
  });

  it('rejects with LeadershipLostError when this member does not lead, its term ended or the store refused', async () => {
    const { store, support, term, setTerm } = harness();
    store.refuse = true;
    expect(await support.set('n', 1).catch((e: unknown) => e)).to.be.instanceOf(LeadershipLostError);
    store.refuse = false;
    const old = term();
    old.end('another member took the lock');
    setTerm(new Term('lock1', 'a', 2, () => true));
    const err = await support.set('n', 1, { term: old }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(LeadershipLostError);
    expect((err as Error).message).to.contain('another member took the lock');
    setTerm(undefined);
    expect(await support.set('n', 1).catch((e: unknown) => e)).to.be.instanceOf(LeadershipLostError);
    expect(store.writes).to.equal(0);
  });

  it('keeps the value as it was when set, though the caller changes its object after', async () => {
    const { store, support } = harness();
    const value = { since: 1 };
    const done = support.set('cursor', value);
    value.since = 2;
    await done;
    expect(store.state).to.deep.equal({ cursor: { since: 1 } });
  });
});
