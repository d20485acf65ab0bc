import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { CLUSTER_SERVICE } from '../../../lib/components/master/master-component.ts';
import type { MasterConsumer } from '../../../lib/components/master/master-consumer.ts';
import { ElectorClusterService } from '../../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../../lib/cluster/election/timings.ts';
import { ConsumerSupport, EndpointSupport } from '../../../lib/spi/endpoint-support.ts';
import type { Component } from '../../../lib/spi/component.ts';
import type { Processor } from '../../../lib/spi/processor.ts';
import { Exchange } from '../../../lib/exchange/index.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';
import type { LeaderStateSlot } from '../../../lib/spi/leader-state.ts';
import { LeadershipLostError } from '../../../lib/errors.ts';

const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });

/** A delegate whose consumer can be made to fail its first starts, and fired by hand. */
class FlakyComponent implements Component {
  failStarts = 0;
  /** Whether its consumers resume from leader state (Consumer.resumeFrom), and the slot each was given. */
  resumable = false;
  slots: LeaderStateSlot[] = [];
  starts = 0;
  stops = 0;
  consumer: { fire: (body: unknown) => Promise<Exchange> } | undefined;
  createEndpoint(uri: Parameters<Component['createEndpoint']>[0], context: Context) {
    const component = this;
    return new (class extends EndpointSupport {
      override createConsumer(processor: Processor) {
        const consumer = new (class extends ConsumerSupport {
          protected doStart() {
            component.starts += 1;
            if (component.failStarts > 0) {
              component.failStarts -= 1;
              throw new Error('delegate not ready');
            }
            component.consumer = {
              fire: async (body) => {
                const ex = new Exchange({ body });
                await processor(ex);
                return ex;
              },
            };
          }
          protected doStop() {
            component.stops += 1;
          }
        })(this, processor);
        if (component.resumable) Object.assign(consumer, { resumeFrom: (slot: LeaderStateSlot) => void component.slots.push(slot) });
        return consumer;
      }
    })(uri, context);
  }
}

describe('master: component', () => {
  const contexts: Context[] = [];
  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.stop().catch(() => undefined);
  });

  async function context(
    routes: Parameters<Context['addRoutes']>[0],
    options: { store?: MemoryLockStore; member?: string; flaky?: FlakyComponent; backOffDelay?: number; failStateReads?: number } = {},
  ) {
    const capture = captureLogger();
    const cluster = new ElectorClusterService({ kind: 'memory', memberId: options.member ?? 'a', store: options.store ?? new MemoryLockStore(), timings, logger: capture.logger });
    if (options.failStateReads) failStateReads(cluster, options.failStateReads);
    const { MasterComponent } = await import('../../../lib/components/master/master-component.ts');
    const c = new Context({ logger: capture.logger, components: { flaky: options.flaky ?? new FlakyComponent(), master: new MasterComponent({ backOffDelay: options.backOffDelay ?? 20, backOffMaxAttempts: 3 }) } });
    c.addService(CLUSTER_SERVICE, cluster);
    contexts.push(c);
    await c.addRoutes(routes);
    return { context: c, cluster, ...capture };
  }

  it('rejects URIs without a lock or a delegate, naming the expected syntax', async () => {
    for (const uri of ['master:lock1', 'master::timer:x', 'master:lock1:']) {
      const { context: c } = await context((r) => r.from(uri).log('x'));
      const err = await c.start().then(() => undefined, (e: Error) => e);
      expect(err?.message, uri).to.contain('Wrong uri syntax : master:namespace:uri');
    }
  });

  it('is consumer-only', async () => {
    const { context: c } = await context((r) => r.from('direct:in').to('master:lock1:timer:x'));
    const err = await c.start().then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('Cannot produce from this endpoint: master: is consumer-only');
  });

  it('fails clearly when the context has no cluster service', async () => {
    const c = new Context();
    contexts.push(c);
    await c.addRoutes((r) => r.from('master:lock1:timer:x').log('x'));
    const err = await c.start().then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('No cluster service found').and.to.contain('--cluster');
  });

  it('checks the delegate URI at startup on every member, leader or not', async () => {
    const { context: c } = await context((r) => r.from('master:lock1:timer:x?periodd=5').log('x'));
    const err = await c.start().then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('Unknown parameters=[{periodd=5}]');
  });

  it('hands the query string to the delegate and starts it only on the leader', async () => {
    const store = new MemoryLockStore();
    const seen: string[] = [];
    const a = await context((r) => r.from('master:lock1:timer:t?period=10&delay=0').process(() => void seen.push('a')), { store, member: 'a' });
    const b = await context((r) => r.from('master:lock1:timer:t?period=10&delay=0').process(() => void seen.push('b')), { store, member: 'b' });
    await a.context.start();
    await waitFor(() => seen.includes('a'));
    await b.context.start();
    const n = seen.length;
    await waitFor(() => seen.length >= n + 10);
    expect(seen.slice(n).every((m) => m === 'a')).to.equal(true);
    await a.context.stop();
    await waitFor(() => seen.at(-1) === 'b');
  });

  it('retries a failing delegate start with backoff while leading, then gives up with an error naming the leader', async () => {
    const flaky = new FlakyComponent();
    flaky.failStarts = 2;
    const ok = await context((r) => r.from('master:lock1:flaky:x').log('x'), { flaky });
    await ok.context.start();
    await waitFor(() => flaky.consumer !== undefined);
    expect(flaky.starts).to.equal(3);
    expect(ok.messages().join('\n')).to.contain('Attempt #2 to start consumer flaky:x failed: delegate not ready. Retrying in 20ms');

    const never = new FlakyComponent();
    never.failStarts = 99;
    const bad = await context((r) => r.from('master:lock9:flaky:y').log('x'), { flaky: never });
    await bad.context.start();
    await waitFor(() => bad.lines.some((l) => l.level === 'error'));
    expect(never.starts).to.equal(3);
    expect(bad.lines.find((l) => l.level === 'error')!.message).to.contain('holds the leadership of lock9 but is not consuming from flaky:y');
  });

  it('refuses exchanges at the gate once leadership has lapsed, and stops the delegate', async () => {
    const store = new MemoryLockStore();
    const flaky = new FlakyComponent();
    const delivered: unknown[] = [];
    const { context: c } = await context((r) => r.from('master:lock1:flaky:x').process((ex) => void delivered.push(ex.body)), { store, flaky });
    await c.start();
    await waitFor(() => flaky.consumer !== undefined);
    const ok = await flaky.consumer!.fire(1);
    expect(ok.exception).to.equal(undefined);
    store.hang(); // renewals stop; leadership lapses after renewDeadline
    const consumer = c.routes[0]!.consumer as MasterConsumer;
    await waitFor(() => !c.service<ElectorClusterService>(CLUSTER_SERVICE)!.isLeader('lock1'), { timeout: 2000 });
    const refused = await flaky.consumer!.fire(2);
    expect(refused.exception?.message).to.contain('not the leader of lock1');
    expect(delivered).to.deep.equal([1]);
    await waitFor(() => !consumer.isMaster && flaky.stops >= 1);
    store.heal();
  });

  describe('leader state for resumable delegates (issue 14)', () => {
    it('gives a resumable delegate its key (the delegate URI, masked) of the leader state: what earlier leaders saved, and saves refused once the term ended', async () => {
      const store = new MemoryLockStore();
      const flaky = new FlakyComponent();
      flaky.resumable = true;
      const a = await context((r) => r.from('master:lock1:flaky:x?password=s3cret').log('x'), { store, member: 'a', flaky });
      await a.context.start();
      await waitFor(() => flaky.slots.length === 1 && flaky.consumer !== undefined);
      const first = flaky.slots[0]!;
      expect(first.key).to.equal('flaky:x?password=xxxxxx');
      expect(first.saved).to.equal(undefined);
      await first.save({ cursor: 7 });
      await a.context.stop();
      await expectLost(first.save({ cursor: 8 }));

      const b = await context((r) => r.from('master:lock1:flaky:x?password=s3cret').log('x'), { store, member: 'b', flaky });
      await b.context.start();
      await waitFor(() => flaky.slots.length === 2);
      expect(flaky.slots[1]!.saved).to.deep.equal({ cursor: 7 });
    });

    it('refuses a save once leadership lapsed (the store hung), though the delegate has not stopped yet', async () => {
      const store = new MemoryLockStore();
      const flaky = new FlakyComponent();
      flaky.resumable = true;
      const { context: c } = await context((r) => r.from('master:lock1:flaky:x').log('x'), { store, flaky });
      await c.start();
      await waitFor(() => flaky.slots.length === 1);
      store.hang();
      await waitFor(() => !c.service<ElectorClusterService>(CLUSTER_SERVICE)!.isLeader('lock1'), { timeout: 2000 });
      await expectLost(flaky.slots[0]!.save({ cursor: 1 }));
      store.heal();
    });

    it('a failed read of the leader state is a failed start attempt, retried with the back-off', async () => {
      const flaky = new FlakyComponent();
      flaky.resumable = true;
      const { context: c, messages } = await context((r) => r.from('master:lock1:flaky:x').log('x'), { flaky, failStateReads: 2 });
      await c.start();
      await waitFor(() => flaky.consumer !== undefined);
      expect(flaky.slots).to.have.length(1);
      expect(flaky.starts, 'the delegate starts only once its state was read').to.equal(1);
      expect(messages().join('\n')).to.contain('Attempt #2 to start consumer flaky:x failed: store unreachable. Retrying in 20ms');
    });

    it('reads nothing for a delegate that cannot resume', async () => {
      const flaky = new FlakyComponent();
      const { context: c, cluster } = await context((r) => r.from('master:lock1:flaky:x').log('x'), { flaky, failStateReads: 99 });
      await c.start();
      await waitFor(() => flaky.consumer !== undefined);
      expect(flaky.starts).to.equal(1);
      expect(cluster.isLeader('lock1')).to.equal(true);
    });
  });
});

async function expectLost(save: Promise<void>): Promise<void> {
  const err = await save.then(() => undefined, (e: unknown) => e);
  expect(err).to.be.instanceOf(LeadershipLostError);
}

/** Makes the first `count` reads of the leader state through this service's views fail, as an unreachable store would. */
function failStateReads(cluster: ElectorClusterService, count: number): void {
  let left = count;
  const view = cluster.view.bind(cluster);
  cluster.view = (lock: string) => {
    const v = view(lock);
    const state = v.state;
    Object.defineProperty(v, 'state', {
      value: {
        get: async (key: string) => {
          if (left > 0) {
            left -= 1;
            throw new Error('store unreachable');
          }
          return state.get(key);
        },
        set: state.set,
      },
    });
    return v;
  };
}
