import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { CLUSTER_SERVICE, MasterComponent } from '../../../lib/components/master/master-component.ts';
import type { MasterConsumer } from '../../../lib/components/master/master-consumer.ts';
import { ElectorClusterService } from '../../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../../lib/cluster/election/timings.ts';
import { defaultErrorHandler } from '../../../lib/dsl/error-handling.ts';
import { RedeliveryAbortedError } from '../../../lib/engine/error-handling.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { HandFired } from '../../support/hand-fired.ts';
import { FakeScheduler } from '../../support/fake-scheduler.ts';
import { waitFor } from '../../support/wait.ts';

const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });

describe('master: redelivery and leadership', () => {
  let context: Context | undefined;
  let store: MemoryLockStore;
  afterEach(async () => {
    store?.heal();
    await context?.stop();
    context = undefined;
  });

  it('ends a redelivery wait the moment leadership lapses, and redelivers again once leadership is back', async () => {
    store = new MemoryLockStore();
    const clock = new FakeScheduler(); // never advanced before the lapse: only the lost leadership can end that wait
    const hand = new HandFired();
    const capture = captureLogger();
    const cluster = new ElectorClusterService({ kind: 'memory', memberId: 'a', store, timings, logger: capture.logger });
    context = new Context({ logger: capture.logger, scheduler: clock, components: { hand, master: new MasterComponent({ backOffDelay: 20, backOffMaxAttempts: 3 }) } });
    context.addService(CLUSTER_SERVICE, cluster);
    let calls = 0;
    await context.addRoutes((r) =>
      r
        .from('master:lock1:hand:x')
        .errorHandler(defaultErrorHandler({ maximumRedeliveries: 3, redeliveryDelay: '1h' }))
        .process((ex) => {
          calls += 1;
          if (ex.body === 'always') throw new Error('downstream unavailable');
          if (calls === 2) throw new Error('first try of the second term fails');
        }),
    );
    await context.start();
    await waitFor(() => hand.fire !== undefined, { message: 'the delegate consumer started on the leader' });

    const pending = hand.fire!('always');
    await waitFor(() => clock.pending === 1, { message: 'the exchange waits for its first redelivery' });
    store.hang(); // renewals stop: leadership lapses after renewDeadline
    const exchange = await pending;
    expect(exchange.exception).to.be.instanceOf(RedeliveryAbortedError);
    expect(exchange.exception?.message).to.contain('Member a no longer leads lock1').and.to.contain('after 1 attempt(s)');
    expect(calls).to.equal(1);
    expect(clock.pending).to.equal(0);
    const consumer = context.routes[0]!.consumer as MasterConsumer;
    await waitFor(() => !consumer.isMaster, { message: 'the delegate stopped' });

    store.heal();
    await waitFor(() => consumer.isMaster && hand.fire !== undefined, { timeout: 5000, message: 'leadership and the delegate are back' });
    const again = hand.fire!('once');
    await waitFor(() => clock.pending === 1, { message: 'the new term redelivers' });
    clock.fireNext();
    const recovered = await again;
    expect(recovered.exception).to.equal(undefined);
    expect(calls).to.equal(3);
  });
});
