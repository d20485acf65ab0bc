import { Context } from '../lib/engine/context.ts';
import { Exchange } from '../lib/exchange/index.ts';
import type { AggregationStrategy } from '../lib/dsl/steps/split.ts';
import { fmt, median, opsPerSecond, printTable } from './measure.ts';
import { noopSinkComponent } from './noop-sink.ts';

const COUNT = 100_000;
const RUNS = 5;
const BATCH = 100;
const KEYS = 10;

const groupBodies: AggregationStrategy = (aggregated, next) => {
  if (!aggregated) {
    next.body = [next.body];
    return next;
  }
  (aggregated.body as unknown[]).push(next.body);
  return aggregated;
};

/**
 * The cost of the stateful steps: aggregate (10 keys, batches of 100) against the same batching
 * written by hand as an async function, and a throttle whose limit is never reached against the
 * same route without it. Alternated in one process, medians of several runs.
 */
export async function run(): Promise<void> {
  const context = new Context({ components: { sink: noopSinkComponent } });
  await context.addRoutes((r) => {
    r.from('direct:aggregate').aggregate('${header.k}', groupBodies, { completionSize: BATCH }).to('sink:out').end();
    r.from('direct:throttled').throttle(1_000_000_000, { period: '1s' }).setHeader('seen', true).to('sink:out');
    r.from('direct:plain').setHeader('seen', true).to('sink:out');
  });
  await context.start();
  const template = context.createProducerTemplate();

  const batches = new Map<string, unknown[]>();
  async function noopSink(_batch: unknown[]) {}
  async function handBatching(ex: Exchange) {
    const key = String(ex.headers.get('k'));
    const batch = batches.get(key) ?? [];
    batches.set(key, batch);
    batch.push(ex.copy().body);
    if (batch.length >= BATCH) {
      batches.delete(key);
      await noopSink(batch);
    }
  }

  const results = { aggregate: [] as number[], hand: [] as number[], throttled: [] as number[], plain: [] as number[] };
  const input = (i: number) => new Exchange({ body: i, headers: { k: i % KEYS } });
  for (let runIndex = 0; runIndex < RUNS + 1; runIndex += 1) {
    const a = await opsPerSecond(COUNT, (i) => template.send('direct:aggregate', input(i)));
    const h = await opsPerSecond(COUNT, (i) => handBatching(input(i)));
    const t = await opsPerSecond(COUNT, (i) => template.send('direct:throttled', input(i)));
    const p = await opsPerSecond(COUNT, (i) => template.send('direct:plain', input(i)));
    if (runIndex === 0) continue; // warm-up
    results.aggregate.push(a);
    results.hand.push(h);
    results.throttled.push(t);
    results.plain.push(p);
  }
  await context.stop();
  const a = median(results.aggregate);
  const h = median(results.hand);
  const t = median(results.throttled);
  const p = median(results.plain);
  printTable('Stateful EIPs: aggregate and throttle', [
    {
      name: `aggregate, ${KEYS} keys, completionSize ${BATCH} (exchanges/s)`,
      value: fmt(a),
      baseline: `${fmt(h)} (hand-written batching)`,
      ratio: (a / h).toFixed(2),
      note: `median of ${RUNS} runs × ${fmt(COUNT)} exchanges`,
    },
    {
      name: 'throttle never reached (exchanges/s)',
      value: fmt(t),
      baseline: `${fmt(p)} (the same route without throttle)`,
      ratio: (t / p).toFixed(2),
      note: `median of ${RUNS} runs × ${fmt(COUNT)} exchanges`,
    },
  ]);
}
