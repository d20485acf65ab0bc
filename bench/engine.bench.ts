import { Context } from '../lib/engine/context.ts';
import { Exchange } from '../lib/exchange/index.ts';
import type { RouteDefinition } from '../lib/dsl/route-definition.ts';
import { fmt, median, opsPerSecond, printTable } from './measure.ts';
import { noopSinkComponent } from './noop-sink.ts';
import { createMetrics } from '../lib/health/metrics.ts';

const COUNT = 200_000;
const RUNS = 5;
const PAIRS = 20;
const PAIR_COUNT = 50_000;

/**
 * Exchanges per second through direct → process → filter → setHeader → a no-op sink, against the
 * same work written as a chain of async functions, measured alternately in the same process.
 */
export async function run(): Promise<void> {
  const context = new Context({ components: { sink: noopSinkComponent } });
  // Metrics on (as with --health-port) against off: two contexts built alike, with the same one route.
  const twin = async (metrics: boolean) => {
    const c = new Context({ components: { sink: noopSinkComponent } });
    if (metrics) await createMetrics({ context: c });
    await c.addRoutes((r) => {
      r.from('direct:bench')
        .process((ex) => {
          ex.body = (ex.body as number) + 1;
        })
        .filter((ex) => (ex.body as number) % 2 === 0)
        .setHeader('even', (ex: Exchange) => ex.body)
        .to('sink:out')
        .end();
    });
    await c.start();
    return c;
  };
  const metered = await twin(true);
  const unmetered = await twin(false);
  const meteredTemplate = metered.createProducerTemplate();
  const unmeteredTemplate = unmetered.createProducerTemplate();
  await context.addRoutes((r) => {
    const steps = (route: RouteDefinition) =>
      route
        .process((ex) => {
          ex.body = (ex.body as number) + 1;
        })
        .filter((ex) => (ex.body as number) % 2 === 0)
        .setHeader('even', (ex: Exchange) => ex.body)
        .to('sink:out')
        .end();
    steps(r.from('direct:bench'));
    // The same steps with an onException clause: every step then runs inside a redelivery channel.
    steps(r.from('direct:guarded').onException(RangeError, { handled: true }).end());
  });
  await context.start();
  const template = context.createProducerTemplate();

  const handWritten: Array<(ex: Exchange) => Promise<void>> = [
    async (ex) => {
      ex.body = (ex.body as number) + 1;
    },
    async (ex) => {
      if ((ex.body as number) % 2 === 0) {
        ex.headers.set('even', ex.body);
        await noopSink(ex);
      }
    },
  ];
  async function noopSink(_ex: Exchange) {}
  async function chain(ex: Exchange) {
    for (const step of handWritten) await step(ex);
  }

  const engine: number[] = [];
  const guarded: number[] = [];
  const baseline: number[] = [];
  const withMetrics: number[] = [];
  const withoutMetrics: number[] = [];
  for (let runIndex = 0; runIndex < RUNS + 1; runIndex += 1) {
    const e = await opsPerSecond(COUNT, (i) => template.send('direct:bench', new Exchange({ body: i })));
    const g = await opsPerSecond(COUNT, (i) => template.send('direct:guarded', new Exchange({ body: i })));
    const b = await opsPerSecond(COUNT, (i) => chain(new Exchange({ body: i })));
    if (runIndex === 0) continue; // warm-up
    engine.push(e);
    guarded.push(g);
    baseline.push(b);
  }
  // Metrics on and off in short adjacent pairs, alternating which goes first, so the load of a shared
  // machine drifting between runs cancels out of each pair's ratio; and per CPU second of this
  // process, so time spent waiting for a core while other processes run does not count.
  const pairRatios: number[] = [];
  const meteredRun = () => opsPerCpuSecond(PAIR_COUNT, (i) => meteredTemplate.send('direct:bench', new Exchange({ body: i })));
  const unmeteredRun = () => opsPerCpuSecond(PAIR_COUNT, (i) => unmeteredTemplate.send('direct:bench', new Exchange({ body: i })));
  for (let pair = 0; pair < PAIRS + 1; pair += 1) {
    const [m, u] = pair % 2 === 0 ? [await meteredRun(), await unmeteredRun()] : [await unmeteredRun(), await meteredRun()].reverse();
    if (pair === 0) continue; // warm-up
    withMetrics.push(m!);
    withoutMetrics.push(u!);
    pairRatios.push(m! / u!);
  }
  await context.stop();
  await metered.stop();
  await unmetered.stop();
  const m = median(withMetrics);
  const u = median(withoutMetrics);
  const e = median(engine);
  const g = median(guarded);
  const b = median(baseline);
  printTable('Route engine throughput (direct → process → filter → setHeader → sink)', [
    {
      name: 'exchanges/s',
      value: fmt(e),
      baseline: `${fmt(b)} (hand-written async chain)`,
      ratio: (e / b).toFixed(2),
      note: `median of ${RUNS} runs × ${fmt(COUNT)} exchanges; aim ≥ 0.4`,
    },
    {
      name: 'exchanges/s with onException',
      value: fmt(g),
      baseline: `${fmt(b)} (hand-written async chain)`,
      ratio: (g / b).toFixed(2),
      note: 'the same route with an onException clause, so each step runs in a redelivery channel',
    },
    {
      name: 'exchanges per CPU second with metrics on',
      value: fmt(m),
      baseline: `${fmt(u)} (the same route, metrics off, per CPU second)`,
      ratio: median(pairRatios).toFixed(3),
      note: `Prometheus metrics as with --health-port (a sampled duration histogram); median ratio of ${PAIRS} adjacent pairs × ${fmt(PAIR_COUNT)}; aim ≥ 0.95`,
    },
  ]);
}

/** Like opsPerSecond, per second of this process's CPU time (user + system). */
async function opsPerCpuSecond(count: number, fn: (i: number) => unknown): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < count; i += 1) {
    const r = fn(i);
    if (r instanceof Promise) await r;
  }
  const used = process.cpuUsage(start);
  return count / ((used.user + used.system) / 1e6);
}
