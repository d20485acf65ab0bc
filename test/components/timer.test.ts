import { expect } from 'chai';
import { ExchangeProperty, type Exchange } from '../../lib/exchange/index.ts';
import type { TimerConsumer } from '../../lib/components/timer/timer-consumer.ts';
import { startContextStoppedAfterEach } from '../support/context.ts';
import { waitFor } from '../support/wait.ts';

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
});
