import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { RouteBuildError } from '../../../lib/errors.ts';
import { Exchange, ExchangeProperty } from '../../../lib/exchange/index.ts';
import type { AggregationStrategy } from '../../../lib/dsl/steps/split.ts';
import { InvalidCorrelationKeyError } from '../../../lib/dsl/steps/aggregate.ts';
import { gatedSink } from '../../support/gated-sink.ts';
import { startContextStoppedAfterEach } from '../../support/context.ts';
import { waitFor } from '../../support/wait.ts';

/** Collects the bodies into an array, as Camel's GroupedBodyAggregationStrategy does. */
const groupBodies: AggregationStrategy = (aggregated, next) => {
  if (!aggregated) {
    next.body = [next.body];
    return next;
  }
  (aggregated.body as unknown[]).push(next.body);
  return aggregated;
};

interface Completed {
  body: unknown;
  size: unknown;
  by: unknown;
  key: unknown;
}

function completedOf(ex: Exchange): Completed {
  return {
    body: ex.body,
    size: ex.getProperty(ExchangeProperty.AggregatedSize),
    by: ex.getProperty(ExchangeProperty.AggregatedCompletedBy),
    key: ex.getProperty(ExchangeProperty.AggregatedCorrelationKey),
  };
}

describe('aggregate', () => {
  const start = startContextStoppedAfterEach();

  it('completes a group on completionSize; the aggregated exchange runs the block, the incoming ones go on after end()', async () => {
    const completed: Completed[] = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .aggregate('${header.order}', groupBodies, { completionSize: 3 })
        .process((ex) => void completed.push(completedOf(ex)))
        .end()
        .setHeader('after', true),
    );
    const incoming: Exchange[] = [];
    for (const [order, body] of [['A', 1], ['B', 10], ['A', 2], ['A', 3], ['B', 20]] as const) {
      incoming.push(await template.send('direct:in', new Exchange({ body, headers: { order } })));
    }
    expect(completed).to.deep.equal([{ body: [1, 2, 3], size: 3, by: 'size', key: 'A' }]);
    expect(incoming.map((ex) => [ex.body, ex.headers.get('after'), ex.exception])).to.deep.equal([
      [1, true, undefined],
      [10, true, undefined],
      [2, true, undefined],
      [3, true, undefined],
      [20, true, undefined],
    ]);
  });

  it('completes each key on its own completionTimeout, and with both conditions whichever comes first', async () => {
    const completed: Completed[] = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .aggregate((ex) => ex.headers.get('k'), groupBodies, { completionSize: 2, completionTimeout: 50 })
        .process((ex) => void completed.push(completedOf(ex)))
        .end(),
    );
    await template.send('direct:in', new Exchange({ body: 'x1', headers: { k: 'X' } }));
    await template.send('direct:in', new Exchange({ body: 'y1', headers: { k: 'Y' } }));
    await template.send('direct:in', new Exchange({ body: 'x2', headers: { k: 'X' } }));
    expect(completed).to.deep.equal([{ body: ['x1', 'x2'], size: 2, by: 'size', key: 'X' }]);
    await waitFor(() => completed.length === 2);
    expect(completed[1]).to.deep.equal({ body: ['y1'], size: 1, by: 'timeout', key: 'Y' });
  });

  it('the timeout counts from the last exchange of the group, not the first', async () => {
    const timeout = 150;
    const completed: Array<Completed & { at: number }> = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .aggregate('${header.k}', groupBodies, { completionTimeout: timeout })
        .process((ex) => void completed.push({ ...completedOf(ex), at: performance.now() }))
        .end(),
    );
    await template.send('direct:in', new Exchange({ body: 1, headers: { k: 'K' } }));
    const firstJoined = performance.now();
    // The second exchange joins well into the first one's timeout, so the two readings differ.
    await waitFor(() => performance.now() - firstJoined >= timeout / 2, { interval: 5 });
    await template.send('direct:in', new Exchange({ body: 2, headers: { k: 'K' } }));
    const lastJoined = performance.now();
    await waitFor(() => completed.length === 1);
    expect(completed[0]).to.include({ size: 2, by: 'timeout', key: 'K' });
    expect(completed[0]!.body).to.deep.equal([1, 2]);
    expect(completed[0]!.at - lastJoined).to.be.at.least(timeout - 5);
  });

  it('completes on completionPredicate, checked on the aggregated exchange', async () => {
    const completed: Completed[] = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .aggregate('${header.k}', groupBodies, { completionPredicate: (ex) => (ex.body as unknown[]).includes('end') })
        .process((ex) => void completed.push(completedOf(ex)))
        .end(),
    );
    for (const body of ['a', 'b', 'end', 'c']) await template.send('direct:in', new Exchange({ body, headers: { k: 1 } }));
    expect(completed).to.deep.equal([{ body: ['a', 'b', 'end'], size: 3, by: 'predicate', key: '1' }]);
  });

  it('completes the incomplete groups when the route stops, while its producers still work', async () => {
    const sink = gatedSink();
    sink.open();
    const { context, template } = await start(
      (r) =>
        r
          .from('direct:in')
          .aggregate('${header.k}', groupBodies, { completionSize: 10, completionTimeout: '1h' })
          .setBody('${body}')
          .to('gated:out')
          .end(),
      { components: { gated: sink.component } },
    );
    await template.send('direct:in', new Exchange({ body: 'a1', headers: { k: 'a' } }));
    await template.send('direct:in', new Exchange({ body: 'b1', headers: { k: 'b' } }));
    await template.send('direct:in', new Exchange({ body: 'a2', headers: { k: 'a' } }));
    expect(sink.delivered).to.have.length(0);
    await context.stop();
    expect(sink.events).to.deep.equal(['delivered a1,a2', 'delivered b1', 'producer stopped']);
    expect(sink.delivered.map(completedOf).map(({ size, by, key }) => [size, by, key])).to.deep.equal([
      [2, 'force', 'a'],
      [1, 'force', 'b'],
    ]);
  });

  it('completes each group once on stop, even when a late exchange completes one of them while the others are being completed', async () => {
    const sink = gatedSink();
    const { context, template } = await start(
      (r) =>
        r
          .from('direct:in')
          // The late exchange is still waiting here when the drain times out; the stop's abort lets it on.
          .delay((ex) => (ex.headers.get('late') ? 3_600_000 : 0))
          .aggregate('${header.k}', groupBodies, { completionSize: 10 })
          .setBody('${body}')
          .to('gated:out')
          .end(),
      // The drain waits all of it for the late exchange; the stop hook then has as long again to finish
      // the groups, a wide margin over the test's own step of opening the gate.
      { components: { gated: sink.component }, shutdownTimeout: 1000 },
    );
    await template.send('direct:in', new Exchange({ body: 'a1', headers: { k: 'a' } }));
    await template.send('direct:in', new Exchange({ body: 'b1', headers: { k: 'b' } }));
    const late = template.send('direct:in', new Exchange({ body: 'b2', headers: { k: 'b', late: true } }));
    await waitFor(() => context.routes[0]!.inflight === 1);
    const stopping = context.stop();
    // Group a is being completed by the stop (held at the gate) when the late exchange completes group b.
    await waitFor(() => sink.arrived.length === 2);
    sink.open();
    await stopping;
    await late;
    expect(sink.events).to.deep.equal(['delivered a1', 'delivered b1,b2', 'producer stopped']);
  });

  it('a group completed on stop can still wire-tap: the tap is waited for before its producer closes', async () => {
    const sink = gatedSink();
    const { context, template } = await start(
      (r) => r.from('direct:in').aggregate('${header.k}', groupBodies, { completionSize: 10 }).wireTap('gated:audit').end(),
      { components: { gated: sink.component } },
    );
    await template.send('direct:in', new Exchange({ body: 'only', headers: { k: 'k' } }));
    const stopping = context.stop();
    await waitFor(() => sink.arrived.length === 1);
    sink.open();
    await stopping;
    expect(sink.events).to.deep.equal(['delivered only', 'producer stopped']);
    expect(sink.delivered[0]!.getProperty(ExchangeProperty.AggregatedCompletedBy)).to.equal('force');
  });

  it('with forceCompletionOnStop: false drops the incomplete groups on stop, logging an error for each', async () => {
    const completed: Completed[] = [];
    const { context, template, lines } = await start((r) =>
      r
        .from('direct:in')
        .routeId('batcher')
        .aggregate('${header.k}', groupBodies, { completionSize: 10, forceCompletionOnStop: false })
        .process((ex) => void completed.push(completedOf(ex)))
        .end(),
    );
    for (const [k, body] of [['a', 1], ['a', 2], ['b', 3]]) await template.send('direct:in', new Exchange({ body, headers: { k } }));
    await context.stop();
    expect(completed).to.deep.equal([]);
    const dropped = lines.filter((l) => l.message.includes('discarded the incomplete group'));
    expect(dropped.map((l) => [l.level, l.meta.route, l.meta.correlationKey, l.meta.size])).to.deep.equal([
      ['error', 'batcher', 'a', 2],
      ['error', 'batcher', 'b', 1],
    ]);
    expect(dropped[0]!.message).to.contain('correlation key a (2 exchange(s))').and.to.contain('forceCompletionOnStop is false');
  });

  it('with forceCompletionOnStop: false discards a group of late exchanges once, though each of them awaited the predicate', async () => {
    let predicateCalls = 0;
    let openPredicate!: () => void;
    const predicateGate = new Promise<void>((resolve) => (openPredicate = resolve));
    const { context, template, lines } = await start(
      (r) =>
        r
          .from('direct:in')
          // The late exchanges are still waiting here when the drain times out; the stop's abort lets them on.
          .delay(3_600_000)
          .aggregate('${header.k}', groupBodies, {
            completionPredicate: async () => {
              predicateCalls += 1;
              await predicateGate;
              return false;
            },
            forceCompletionOnStop: false,
          })
          .end(),
      { shutdownTimeout: 300 },
    );
    const late = ['x', 'y'].map((body) => template.send('direct:in', new Exchange({ body, headers: { k: 'a' } })));
    await waitFor(() => context.routes[0]!.inflight === 2);
    const stopping = context.stop();
    await waitFor(() => predicateCalls === 2);
    openPredicate();
    await Promise.all([stopping, ...late]);
    const dropped = lines.filter((l) => l.message.includes('discarded the incomplete group'));
    expect(dropped.map((l) => [l.meta.correlationKey, l.meta.size])).to.deep.equal([['a', 2]]);
  });

  it('arms no timeout for a group another exchange completed while the predicate was awaited, so none outlives the stop', async () => {
    const completed: Completed[] = [];
    let openPredicate!: () => void;
    const predicateGate = new Promise<void>((resolve) => (openPredicate = resolve));
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const { context, template } = await start((r) =>
      r
        .from('direct:in')
        .aggregate('${header.k}', groupBodies, {
          completionSize: 2,
          completionTimeout: '1h',
          completionPredicate: async (ex) => {
            if ((ex.body as unknown[]).length === 1) await predicateGate;
            return false;
          },
        })
        .process((ex) => void completed.push(completedOf(ex)))
        .end(),
    );
    const before = timers();
    const first = template.send('direct:in', new Exchange({ body: 1, headers: { k: 'a' } }));
    await template.send('direct:in', new Exchange({ body: 2, headers: { k: 'a' } }));
    openPredicate();
    await first;
    await context.stop();
    expect(completed).to.deep.equal([{ body: [1, 2], size: 2, by: 'size', key: 'a' }]);
    expect(timers()).to.equal(before);
  });

  it('fails an incoming exchange without a correlation key, or whose strategy throws, and leaves its group as it was', async () => {
    const completed: Completed[] = [];
    const strategy: AggregationStrategy = (aggregated, next) => {
      if (next.body === 'poison') throw new Error('cannot aggregate poison');
      return groupBodies(aggregated, next);
    };
    const { context, template, lines } = await start((r) =>
      r
        .from('direct:in')
        .aggregate('${header.k}', strategy, { completionSize: 2 })
        .process((ex) => void completed.push(completedOf(ex)))
        .end()
        .setHeader('after', true),
    );
    const noKey = await template.send('direct:in', new Exchange({ body: 'lost' }));
    expect(noKey.exception).to.be.instanceOf(InvalidCorrelationKeyError);
    expect(noKey.exception?.message).to.contain('${header.k}').and.to.contain(noKey.id);
    expect(noKey.headers.has('after')).to.equal(false);
    await template.send('direct:in', new Exchange({ body: 'ok1', headers: { k: 'g' } }));
    const poison = await template.send('direct:in', new Exchange({ body: 'poison', headers: { k: 'g' } }));
    expect(poison.exception?.message).to.equal('cannot aggregate poison');
    await template.send('direct:in', new Exchange({ body: 'ok2', headers: { k: 'g' } }));
    expect(completed).to.deep.equal([{ body: ['ok1', 'ok2'], size: 2, by: 'size', key: 'g' }]);
    // A poison message first in its group leaves no half-made group for the stop to complete.
    const first = await template.send('direct:in', new Exchange({ body: 'poison', headers: { k: 'fresh' } }));
    expect(first.exception?.message).to.equal('cannot aggregate poison');
    await context.stop();
    expect(completed).to.have.length(1);
    // The three failed incoming exchanges are logged; the stop itself has nothing to complain about.
    const complaints = lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.message);
    expect(complaints).to.have.length(3);
    expect(complaints.every((m) => m.startsWith('Failed delivery'))).to.equal(true);
  });

  it('logs a failure of the aggregated exchange, which has no caller; the incoming exchange is not failed by it', async () => {
    const { template, lines } = await start((r) =>
      r
        .from('direct:in')
        .routeId('agg')
        .aggregate('${header.k}', groupBodies, { completionSize: 2 })
        .process(() => {
          throw new Error('batch insert failed');
        })
        .end(),
    );
    await template.send('direct:in', new Exchange({ body: 1, headers: { k: 'k' } }));
    const completing = await template.send('direct:in', new Exchange({ body: 2, headers: { k: 'k' } }));
    expect(completing.exception).to.equal(undefined);
    const failure = lines.find((l) => l.level === 'error' && l.message.includes('batch insert failed'));
    expect(failure?.meta.route).to.equal('agg');
  });

  it('rejects a bad size, timeout, strategy, unknown options and no completion condition, naming the value', async () => {
    const strategy = groupBodies;
    for (const [define, expected] of [
      [(r: any) => r.from('direct:x').aggregate('${header.k}', strategy, { completionSize: 0 }), 'completionSize must be a positive whole number, got 0'],
      [(r: any) => r.from('direct:x').aggregate('${header.k}', strategy, { completionSize: -3 }), 'got -3'],
      [(r: any) => r.from('direct:x').aggregate('${header.k}', strategy, { completionTimeout: 'later' }), 'completionTimeout "later" is not a positive duration'],
      [(r: any) => r.from('direct:x').aggregate('${header.k}', strategy, { completionTimeout: -1 }), 'completionTimeout -1 is not a positive duration'],
      [(r: any) => r.from('direct:x').aggregate('${header.k}', strategy), 'needs a completion condition: completionSize, completionTimeout and/or completionPredicate'],
      [(r: any) => r.from('direct:x').aggregate('${header.k}', strategy, { completionSize: 2, eagerCheck: true }), 'unknown option(s) eagerCheck'],
      [(r: any) => r.from('direct:x').aggregate('${header.k}', undefined, { completionSize: 2 }), 'needs an aggregation strategy'],
      [(r: any) => r.from('direct:x').aggregate('${header.k}', strategy, { completionSize: 2, forceCompletionOnStop: 'no' }), 'forceCompletionOnStop must be true or false, got "no"'],
      [(r: any) => r.from('direct:x').aggregate('${header.', strategy, { completionSize: 2 }), '${header.'],
    ] as const) {
      await new Context().addRoutes(define).then(
        () => expect.fail(`should have thrown: ${expected}`),
        (err: Error) => {
          expect(err).to.be.instanceOf(RouteBuildError);
          expect(err.message).to.contain('Route from(direct:x)').and.to.contain('aggregate(): ').and.to.contain(expected);
        },
      );
    }
  });
});
