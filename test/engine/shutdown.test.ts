import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import { CLUSTER_SERVICE, MasterComponent } from '../../lib/components/master/master-component.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import type { ClusterView } from '../../lib/cluster/cluster-service.ts';
import type { AggregationStrategy } from '../../lib/dsl/steps/split.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { Exchange } from '../../lib/exchange/index.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { startContextStoppedAfterEach } from '../support/context.ts';
import { waitFor } from '../support/wait.ts';

const groupBodies: AggregationStrategy = (aggregated, next) => {
  if (!aggregated) {
    next.body = [next.body];
    return next;
  }
  (aggregated.body as unknown[]).push(next.body);
  return aggregated;
};

/**
 * A stop must be over well before this: the tests wait for it at most half of it. The old code held
 * the stop for all of it, waiting for a direct: route that had already stopped.
 */
const SHUTDOWN_TIMEOUT = 20_000;

/** Resolves once `stopping` has; fails if that takes half the shutdown timeout or more. */
async function stoppedWellWithinTimeout(stopping: Promise<void>): Promise<void> {
  let done = false;
  void stopping.then(() => (done = true));
  await waitFor(() => done, { timeout: SHUTDOWN_TIMEOUT / 2, message: 'context.stop() to return with nothing left in flight' });
  await stopping;
}

describe('graceful shutdown: in-process routes keep serving until the work in flight has finished', () => {
  const start = startContextStoppedAfterEach();

  // The case, with a timer for the queue: three exchanges joined a group (their source already
  // considers them done), and the forced completion on stop hands the batch to direct:ship.
  for (const order of ['the direct: route defined first', 'the direct: route defined last']) {
    it(`two routes: the batch an aggregator completes on stop reaches direct:ship (${order}), and stop() does not wait out the timeout`, async () => {
      const shipped: unknown[] = [];
      let joined = 0;
      const ship = (r: RouteBuilder) => r.from('direct:ship').routeId('ship').process((ex) => void shipped.push(ex.body));
      const batcher = (r: RouteBuilder) =>
        r
          .from('timer:orders?period=10&delay=0&repeatCount=3')
          .routeId('batcher')
          .setBody((ex) => ex.getProperty('CamelTimerCounter'))
          .process(() => void (joined += 1))
          .aggregate('batch', groupBodies, { completionTimeout: '30s' })
          .to('direct:ship')
          .end();
      const { context, lines } = await start(
        (r) => {
          if (order.endsWith('first')) {
            ship(r);
            batcher(r);
          } else {
            batcher(r);
            ship(r);
          }
        },
        { shutdownTimeout: SHUTDOWN_TIMEOUT },
      );
      await waitFor(() => joined === 3 && context.route('batcher')!.inflight === 0);
      await stoppedWellWithinTimeout(context.stop());
      expect(shipped).to.deep.equal([[1, 2, 3]]);
      expect(lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.message)).to.deep.equal([]);
    });
  }

  it('three routes: a batch forced on stop goes through two direct: routes, one of them aggregating again', async () => {
    const stored: unknown[] = [];
    let joined = 0;
    const { context } = await start(
      (r) => {
        r.from('direct:store').routeId('store').process((ex) => void stored.push(ex.body));
        r.from('direct:ship')
          .routeId('ship')
          .aggregate('all', groupBodies, { completionTimeout: '30s' })
          .to('direct:store')
          .end();
        r.from('timer:orders?period=10&delay=0&repeatCount=4')
          .routeId('batcher')
          .setBody((ex) => ex.getProperty('CamelTimerCounter'))
          .process(() => void (joined += 1))
          .aggregate((ex) => Number(ex.body) % 2, groupBodies, { completionTimeout: '30s' })
          .to('direct:ship')
          .end();
      },
      { shutdownTimeout: SHUTDOWN_TIMEOUT },
    );
    await waitFor(() => joined === 4 && context.route('batcher')!.inflight === 0);
    await stoppedWellWithinTimeout(context.stop());
    // The batcher's two groups (odd, even) reach ship, whose own group is forced once nothing can call it any more.
    expect(stored).to.deep.equal([[[1, 3], [2, 4]]]);
  });

  it('three direct: routes called from code: each forced batch still finds the routes after it', async () => {
    const stored: unknown[] = [];
    const { context, template } = await start(
      (r) => {
        r.from('direct:in').aggregate('${header.k}', groupBodies, { completionTimeout: '30s' }).to('direct:ship').end();
        r.from('direct:ship').to('direct:store');
        r.from('direct:store').process((ex) => void stored.push(ex.body));
      },
      { shutdownTimeout: SHUTDOWN_TIMEOUT },
    );
    for (const [k, body] of [['a', 1], ['b', 2], ['a', 3]] as const) await template.send('direct:in', new Exchange({ body, headers: { k } }));
    await stoppedWellWithinTimeout(context.stop());
    expect(stored).to.deep.equal([[1, 3], [2]]);
  });

  it('an exchange in flight in a direct: route it called finishes before that route stops; the stop says what it waits for', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const done: string[] = [];
    const { context, lines, template } = await start(
      (r) => {
        r.from('timer:once?delay=0&repeatCount=1').routeId('caller').to('direct:slow').process(() => void done.push('caller'));
        r.from('direct:slow')
          .routeId('slow')
          .process((ex) => (ex.body === 'probe' ? undefined : gate))
          .process((ex) => void done.push(ex.body === 'probe' ? 'probe' : 'slow'));
      },
      { shutdownTimeout: SHUTDOWN_TIMEOUT },
    );
    await waitFor(() => context.route('slow')!.inflight === 1);
    const stopping = context.stop();
    await waitFor(() => lines.some((l) => l.message.startsWith('Shutting down')));
    // Still serving while the stop waits.
    await template.requestBody('direct:slow', 'probe');
    release();
    await stoppedWellWithinTimeout(stopping);
    expect(done).to.deep.equal(['probe', 'slow', 'caller']);
    const announced = lines.find((l) => l.message.startsWith('Shutting down'))!;
    expect(announced.level).to.equal('info');
    expect(announced.message).to.equal('Shutting down: waiting up to 20s for 2 exchange(s) in flight (slow: 1, caller: 1)');
  });

  it('a call into a direct: route that already stopped fails at once during the stop, naming the reason', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { context } = await start((r) => r.from('timer:once?delay=0&repeatCount=1').routeId('caller').process(() => gate), { shutdownTimeout: 200 });
    await waitFor(() => context.route('caller')!.inflight === 1);
    const stopping = context.stop();
    await waitFor(() => context.state === 'stopping');
    const producer = await context.createProducer('direct:gone');
    const ex = new Exchange({ body: 'x' });
    const error = await Promise.resolve()
      .then(() => producer.process(ex))
      .then(() => undefined, (err: Error) => err);
    expect(error?.message).to.contain('No consumers available on endpoint: direct:gone').and.to.contain('The context is stopping');
    release();
    await stopping;
  });
});

describe('graceful shutdown of a master: route: drain, then release', () => {
  const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
  const stops: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  });

  /** Member a runs the guarded route, whose one exchange waits for the test; member b only watches lock1. */
  async function members(shutdownTimeout: number) {
    const store = new MemoryLockStore();
    const capture = captureLogger();
    const a = new ElectorClusterService({ kind: 'memory', memberId: 'a', store, timings, logger: capture.logger });
    const context = new Context({ logger: capture.logger, shutdownTimeout, components: { master: new MasterComponent() } });
    context.addService(CLUSTER_SERVICE, a);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const events: string[] = [];
    let aborted: unknown;
    await context.addRoutes((r) =>
      r
        .from('master:lock1:timer:guarded?delay=0&repeatCount=1')
        .routeId('guarded')
        .process(async (ex) => {
          events.push('start');
          // Honours the term's signal, as guarded work should.
          await new Promise<void>((resolve) => {
            void gate.then(resolve);
            ex.signal?.addEventListener('abort', () => {
              aborted = ex.signal!.reason;
              resolve();
            });
          });
          events.push('end');
        }),
    );
    await context.start();
    stops.push(() => context.stop());
    await waitFor(() => events.includes('start'));
    const b = new ElectorClusterService({ kind: 'memory', memberId: 'b', store, timings, logger: capture.logger });
    await b.start();
    stops.push(() => b.stop());
    const view: ClusterView = b.view('lock1');
    view.on('leadership', (e) => {
      if (e.isLocal) events.push('b leads');
    });
    await waitFor(() => view.leader === 'a');
    return { store, context, view, events, release, aborted: () => aborted, lines: capture.lines };
  }

  it('keeps the lock, renewing it, while the exchange runs; releases it once it ended, and the follower leads at once', async () => {
    const { store, context, events, release } = await members(10_000);
    const stopping = context.stop();
    await waitFor(() => context.route('guarded')!.status === 'stopping');
    const renewed = store.peek('lock1')!.record.renewTime;
    // Several renewals later the exchange still runs and a still holds the lock.
    await waitFor(() => store.peek('lock1')!.record.renewTime !== renewed, { timeout: timings.renewDeadline + 1000 });
    expect(store.peek('lock1')!.record.holderIdentity).to.equal('a');
    expect(events).to.deep.equal(['start']);
    release();
    await stopping;
    // Released: b takes over on the store's notification, long before a lease could run out.
    await waitFor(() => events.includes('b leads'), { timeout: timings.leaseDuration / 2 });
    expect(events).to.deep.equal(['start', 'end', 'b leads']);
  });

  it('when the shutdown timeout passes first: ends the term (the exchange sees its signal abort), does not release, and the follower waits for the lease', async () => {
    const shutdownTimeout = 300;
    const { store, context, events, aborted, lines } = await members(shutdownTimeout);
    await context.stop();
    const stoppedAt = performance.now();
    expect(events).to.deep.equal(['start', 'end']);
    expect((aborted() as { code?: string }).code).to.equal('LEADERSHIP_LOST');
    expect(store.peek('lock1')!.record.holderIdentity).to.equal('a');
    expect(lines.some((l) => l.level === 'warn' && l.message.includes('leaving the lock to expire'))).to.equal(true);
    await waitFor(() => events.includes('b leads'), { timeout: timings.leaseDuration + 1000 });
    // b saw a's last renewal at most one renew interval before a stopped, and waits a lease from then.
    const renewInterval = timings.retryPeriod;
    expect(performance.now() - stoppedAt).to.be.at.least(timings.leaseDuration - renewInterval - 20);
  });
});
