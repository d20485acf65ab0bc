import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { CLUSTER_SERVICE, MasterComponent } from '../../../lib/components/master/master-component.ts';
import { MasterHeader } from '../../../lib/components/master/headers.ts';
import { ElectorClusterService } from '../../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../../lib/cluster/election/timings.ts';
import { deadLetterChannel } from '../../../lib/dsl/error-handling.ts';
import { LeadershipLostError } from '../../../lib/errors.ts';
import type { Processor } from '../../../lib/spi/processor.ts';
import { Exchange } from '../../../lib/exchange/index.ts';
import type { LeadershipTerm } from '../../../lib/cluster/cluster-service.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { HandFired } from '../../support/hand-fired.ts';
import { waitFor } from '../../support/wait.ts';

const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });

/** A step that waits until the test lets it go on, so the test can end the term while an exchange is inside it. */
class Latch {
  entered = false;
  #release!: () => void;
  readonly #released = new Promise<void>((resolve) => (this.#release = resolve));
  readonly step: Processor = async () => {
    this.entered = true;
    await this.#released;
  };
  release(): void {
    this.#release();
  }
}

describe('master: fencing between steps', () => {
  let context: Context | undefined;
  // The elector's monotonic clock, which the test moves forward to play a pause (SIGSTOP, a long GC):
  // on resume, the leader's renewDeadline has passed before any of its timers has run.
  let skew = 0;
  afterEach(async () => {
    await context?.stop();
    context = undefined;
    skew = 0;
  });

  async function start(routes: Parameters<Context['addRoutes']>[0]) {
    const hand = new HandFired();
    const capture = captureLogger();
    const cluster = new ElectorClusterService({ kind: 'memory', memberId: 'a', store: new MemoryLockStore(), timings, logger: capture.logger, elector: { now: () => performance.now() + skew } });
    context = new Context({ logger: capture.logger, components: { hand, master: new MasterComponent({ backOffDelay: 20, backOffMaxAttempts: 3 }) } });
    context.addService(CLUSTER_SERVICE, cluster);
    await context.addRoutes(routes);
    await context.start();
    await waitFor(() => hand.fire !== undefined, { message: 'the delegate consumer started on the leader' });
    const view = cluster.view('lock1');
    const term = view.term!;
    await view.close();
    return { hand, term, capture };
  }

  /** A pause past renewDeadline, as the leader sees it once it runs again. */
  const pausePastRenewDeadline = () => {
    skew += timings.leaseDuration * 10;
  };

  it('stops an exchange whose term ended mid-route before its next step, with LeadershipLostError; no error handler takes it and the consumer sees it failed', async () => {
    const latch = new Latch();
    const after: string[] = [];
    const { hand, term, capture } = await start((r) => {
      r.from('master:lock1:hand:x')
        .errorHandler(deadLetterChannel('direct:dlq', { maximumRedeliveries: 3, redeliveryDelay: 0 }))
        .process(latch.step)
        .process(() => void after.push('next step'));
      r.from('direct:dlq').process(() => void after.push('dead letter'));
    });
    const pending = hand.fire!('work');
    await waitFor(() => latch.entered, { message: 'the exchange to be inside its first step' });
    pausePastRenewDeadline();
    latch.release();
    const exchange = await pending;

    expect(exchange.exception).to.be.instanceOf(LeadershipLostError);
    expect(exchange.exception!.message).to.match(/^Member a no longer leads lock1 \(term \d+\): .*; exchange \S+ stopped before its next step$/);
    expect((exchange.exception as LeadershipLostError).token).to.equal(term.token);
    expect(after, 'steps run after the term ended').to.deep.equal([]);
    expect(term.signal.aborted).to.equal(true);
    expect(exchange.headers.get(MasterHeader.FencingToken)).to.equal(term.token);
    const warning = capture.lines.find((l) => l.message.includes(`Exchange ${exchange.id} on route`));
    expect(warning?.level).to.equal('warn');
    expect(warning?.message).to.contain('stopped before its next step');
  });

  it('fences a direct: call made within the exchange, and the copies split, multicast, wireTap and onCompletion make, which carry the term and its token', async () => {
    const latch = new Latch();
    const seen: Array<{ where: string; term: LeadershipTerm | undefined; token: unknown }> = [];
    const note = (where: string) => (ex: Exchange) => void seen.push({ where, term: ex.term, token: ex.headers.get(MasterHeader.FencingToken) });
    const { hand, term } = await start((r) => {
      r.from('master:lock1:hand:x')
        .onCompletion()
        .process(note('onCompletion'))
        .end()
        .wireTap('direct:tap')
        .split((ex: Exchange) => ex.body)
        .process(note('split'))
        .end()
        .multicast()
        .process(note('multicast'))
        .end()
        .to('direct:sub')
        .process(note('after the call'));
      r.from('direct:tap').process(note('wireTap'));
      r.from('direct:sub').process(note('sub route')).process(latch.step).process(note('sub route, next step'));
      r.from('direct:other').process(note('non-master route'));
    });
    const pending = hand.fire!(['item']);
    await waitFor(() => latch.entered && seen.some((s) => s.where === 'wireTap'), { message: 'the exchange inside the direct: route and the tap done' });
    const copies = seen.map((s) => s.where);
    expect(copies).to.include.members(['wireTap', 'split', 'multicast', 'sub route']);
    for (const s of seen) {
      expect(s.term, s.where).to.equal(term);
      expect(s.token, s.where).to.equal(term.token);
    }
    pausePastRenewDeadline();
    latch.release();
    const exchange = await pending;
    expect(exchange.exception).to.be.instanceOf(LeadershipLostError);
    expect(seen.map((s) => s.where)).not.to.include.members(['sub route, next step', 'after the call']);
    // The onCompletion copy shares the ended term: its steps do not run either.
    expect(seen.map((s) => s.where)).not.to.include('onCompletion');

    const plain = await context!.createProducerTemplate().send('direct:other', new Exchange({ body: 1 }));
    expect(plain.exception).to.equal(undefined);
    expect(seen.at(-1)).to.deep.equal({ where: 'non-master route', term: undefined, token: undefined });
  });

  it('does not redeliver a step that failed after the term ended, nor hand the failure to the dead-letter channel', async () => {
    const latch = new Latch();
    let attempts = 0;
    const deadLetters: unknown[] = [];
    const { hand } = await start((r) => {
      r.from('master:lock1:hand:x')
        .errorHandler(deadLetterChannel('direct:dlq', { maximumRedeliveries: 3, redeliveryDelay: 0 }))
        .process(async () => {
          attempts += 1;
          await latch.step(new Exchange());
          throw new Error('downstream unavailable');
        });
      r.from('direct:dlq').process((ex) => void deadLetters.push(ex.body));
    });
    const pending = hand.fire!('work');
    await waitFor(() => latch.entered, { message: 'the exchange to be inside its step' });
    pausePastRenewDeadline();
    latch.release();
    const exchange = await pending;
    expect(exchange.exception).to.be.instanceOf(LeadershipLostError);
    expect(exchange.exception!.message).to.contain('was not redelivered');
    expect((exchange.exception!.cause as Error).message).to.equal('downstream unavailable');
    expect(attempts).to.equal(1);
    expect(deadLetters).to.deep.equal([]);
  });
});
