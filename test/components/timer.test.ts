import { expect } from 'chai';
import { ExchangeProperty, type Exchange } from '../../lib/exchange/index.ts';
import type { TimerConsumer } from '../../lib/components/timer/timer-consumer.ts';
import { startContextStoppedAfterEach } from '../support/context.ts';
import { waitFor } from '../support/wait.ts';
import { Context } from '../../lib/engine/context.ts';
import { LeadershipLostError } from '../../lib/errors.ts';
import type { TimerEndpoint } from '../../lib/components/timer/timer-component.ts';
import { TIMER_SAVE_INTERVAL } from '../../lib/components/timer/timer-consumer.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { MemorySlot } from '../support/memory-slot.ts';

describe('timer component', () => {
  const start = startContextStoppedAfterEach();

  it('fires repeatCount times with an empty body and a counter, then stops scheduling', async () => {
    const seen: Exchange[] = [];
    const { context } = await start((r) => r.from('timer:t?period=5&delay=0&repeatCount=3').process((ex) => void seen.push(ex)));
    const consumer = context.routes[0]!.consumer as TimerConsumer;
    await waitFor(() => seen.length === 3 && !consumer.scheduled);
    expect(seen.map((e) => e.getProperty(ExchangeProperty.TimerCounter))).to.deep.equal([1, 2, 3]);
    expect(seen.every((e) => e.body === undefined)).to.equal(true);
    expect(consumer.fired).to.equal(3);
  });

  it('sets Camel\'s metadata properties and header with includeMetadata', async () => {
    const seen: Exchange[] = [];
    const { context } = await start((r) => r.from('timer:meta?period=5&delay=0&repeatCount=1&includeMetadata=true').process((ex) => void seen.push(ex)));
    await waitFor(() => seen.length === 1);
    const ex = seen[0]!;
    expect(ex.getProperty(ExchangeProperty.TimerName)).to.equal('meta');
    expect(ex.getProperty(ExchangeProperty.TimerPeriod)).to.equal(5);
    expect(ex.getProperty(ExchangeProperty.TimerFiredTime)).to.be.instanceOf(Date);
    expect(ex.headers.get('camelTimerFiredTime')).to.be.instanceOf(Date);
  });

  it('waits for the delay before the first fire', async () => {
    const seen: number[] = [];
    const t0 = performance.now();
    const { context } = await start((r) => r.from('timer:d?delay=60ms&period=1s').process(() => void seen.push(performance.now())));
    await waitFor(() => seen.length === 1);
    expect(seen[0]! - t0).to.be.at.least(55);
  });

  it('never overlaps exchanges: a slow exchange delays the next fire', async () => {
    const spans: Array<[number, number]> = [];
    await start((r) =>
      r
        .from('timer:slow?period=2&delay=0&repeatCount=4')
        .process(async () => {
          const start = performance.now();
          await new Promise((resolve) => setTimeout(resolve, 15));
          spans.push([start, performance.now()]);
        }),
    );
    await waitFor(() => spans.length === 4, { timeout: 5000 });
    for (let i = 1; i < spans.length; i += 1) expect(spans[i]![0]).to.be.at.least(spans[i - 1]![1]);
  });

  it('fixedRate keeps to the schedule from the start, firing late ones back to back', async () => {
    const fired: number[] = [];
    await start((r) =>
      r
        .from('timer:rate?period=20&delay=0&repeatCount=4&fixedRate=true')
        .process(async () => {
          fired.push(performance.now());
          if (fired.length === 1) await new Promise((resolve) => setTimeout(resolve, 70));
        }),
    );
    await waitFor(() => fired.length === 4, { timeout: 5000 });
    // Fires 2, 3 and 4 were due at 20, 40 and 60 ms but the first ran until ~70 ms: they catch up at once.
    expect(fired[3]! - fired[1]!).to.be.below(20);
  });

  it('rejects a timer without a name, and bad option values', async () => {
    for (const uri of ['timer:', 'timer:x?period=soon', 'timer:x?repeatCount=-1', 'timer:x?daemon=true']) {
      const { Context: Ctx } = await import('../../lib/engine/context.ts');
      const c = new Ctx();
      await c.addRoutes((r) => r.from(uri).log('x'));
      await c.start().then(() => expect.fail(`${uri} should fail`), (e: Error) => expect(e.message).to.match(/timer/));
    }
  });

  /**
   * Under master: (issue 14). The slot is a plain object here; the master: wiring and the cluster
   * store are tested with real member processes (test/cluster/members-resume.test.ts).
   */
  describe('resuming from leader state', () => {
    const consumers: TimerConsumer[] = [];
    afterEach(async () => {
      for (const c of consumers.splice(0)) await c.stop();
    });

    async function resumed(uri: string, slot: MemorySlot) {
      const capture = captureLogger();
      const context = new Context({ logger: capture.logger });
      const fired: Array<{ counter: number; header: unknown; savedBefore: unknown }> = [];
      const consumer = ((await context.endpoint(uri)) as TimerEndpoint).createConsumer((ex) => {
        fired.push({ counter: ex.getProperty(ExchangeProperty.TimerCounter) as number, header: ex.headers.get('CamelTimerCounter'), savedBefore: slot.latest });
      });
      consumer.resumeFrom(slot);
      await consumer.start();
      consumers.push(consumer);
      return { consumer, fired, ...capture };
    }

    it('continues CamelTimerCounter from the saved counter instead of restarting at 1', async () => {
      const { fired } = await resumed('timer:t?period=5&delay=0&includeMetadata=true', new MemorySlot({ counter: 41 }));
      await waitFor(() => fired.length >= 3);
      expect(fired.slice(0, 3).map((f) => [f.counter, f.header])).to.deep.equal([[42, 42], [43, 43], [44, 44]]);
    });

    it('counts repeatCount across leaders, saving each fire before its exchange runs', async () => {
      const slot = new MemorySlot({ counter: 3 });
      const { consumer, fired } = await resumed('timer:t?period=5&delay=0&repeatCount=5', slot);
      await waitFor(() => fired.length === 2 && !consumer.scheduled);
      expect(fired.map((f) => [f.counter, f.savedBefore])).to.deep.equal([[4, { counter: 4 }], [5, { counter: 5 }]]);
      // The next leader finds the count reached: no fire at all.
      const next = await resumed('timer:t?period=5&delay=0&repeatCount=5', new MemorySlot(slot.latest));
      expect(next.consumer.scheduled).to.equal(false);
      expect(next.fired).to.deep.equal([]);
    });

    it('with repeatCount, a fire it could not save does not run, so the leaders never exceed the count', async () => {
      const slot = new MemorySlot({ counter: 1 });
      slot.failWith = new Error('store unavailable');
      const { consumer, fired, lines } = await resumed('timer:t?period=5&delay=0&repeatCount=2', slot);
      await waitFor(() => lines.some((l) => l.level === 'warn' && l.message.includes('could not save its counter 2 in the leader state: store unavailable')));
      expect(fired).to.deep.equal([]);
      slot.failWith = undefined;
      await waitFor(() => fired.length === 1 && !consumer.scheduled);
      expect(fired.map((f) => f.counter)).to.deep.equal([2]);
      expect(lines.filter((l) => l.level === 'warn')).to.have.length(1);
    });

    it('without repeatCount, saves the counter at most every TIMER_SAVE_INTERVAL, and the last one when it stops (a graceful handover)', async () => {
      const slot = new MemorySlot();
      const started = performance.now();
      const { consumer, fired } = await resumed('timer:t?period=5&delay=0', slot);
      await waitFor(() => fired.length >= 20);
      await consumer.stop();
      const elapsed = performance.now() - started;
      // One at the first fire, one per interval passed, one at the stop.
      expect(slot.saves.length).to.be.at.most(2 + Math.floor(elapsed / TIMER_SAVE_INTERVAL));
      expect(slot.latest).to.deep.equal({ counter: fired.length });
      const next = await resumed('timer:t?period=5&delay=0', new MemorySlot(slot.latest));
      await waitFor(() => next.fired.length >= 1);
      expect(next.fired[0]!.counter).to.equal(fired.length + 1);
    });

    it('a lost term is not a warning when saving (the master: consumer is stopping the timer)', async () => {
      const slot = new MemorySlot();
      slot.failWith = new LeadershipLostError('lock1', 'm1', 'gone');
      const { consumer, fired, lines } = await resumed('timer:t?period=5&delay=0', slot);
      await waitFor(() => fired.length >= 3);
      await consumer.stop();
      expect(lines.filter((l) => l.level === 'warn')).to.deep.equal([]);
    });

    it('ignores a saved value it cannot read, says so, and counts from 1', async () => {
      const { fired, lines } = await resumed('timer:t?period=5&delay=0', new MemorySlot({ counter: -2 }));
      await waitFor(() => fired.length >= 1);
      expect(fired[0]!.counter).to.equal(1);
      expect(lines.some((l) => l.level === 'warn' && l.message.includes('ignores the leader state saved for it ({"counter":-2})'))).to.equal(true);
    });
  });
});
