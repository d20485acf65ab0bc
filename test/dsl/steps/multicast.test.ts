import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { RouteBuildError } from '../../../lib/errors.ts';
import { Exchange, ExchangeProperty } from '../../../lib/exchange/index.ts';
import type { AggregationStrategy } from '../../../lib/dsl/steps/split.ts';
import { startContextStoppedAfterEach } from '../../support/context.ts';
import { waitFor } from '../../support/wait.ts';

const concatBodies: AggregationStrategy = (aggregated, next) => {
  if (!aggregated) return next;
  aggregated.body = `${String(aggregated.body)}+${String(next.body)}`;
  return aggregated;
};

describe('multicast', () => {
  const start = startContextStoppedAfterEach();

  it('sends a copy to each destination in turn; the original then takes the last reply', async () => {
    const seen: unknown[] = [];
    const record = (name: string) => (ex: Exchange) =>
      void seen.push([name, ex.body, ex.getProperty(ExchangeProperty.MulticastIndex), ex.getProperty(ExchangeProperty.MulticastComplete)]);
    const originals: Exchange[] = [];
    const { template } = await start((r) => {
      r.from('direct:in').process((ex) => void originals.push(ex)).multicast(['direct:a', 'direct:b']).setHeader('after', true);
      r.from('direct:a').process(record('a')).setBody('reply from a');
      r.from('direct:b').process(record('b')).setBody('reply from b').setHeader('fromB', 1);
    });
    const result = await template.send('direct:in', new Exchange({ body: 'order' }));
    expect(seen).to.deep.equal([
      ['a', 'order', 0, false],
      ['b', 'order', 1, true],
    ]);
    expect(result).to.equal(originals[0]);
    expect(result.exception).to.equal(undefined);
    expect(result.body).to.equal('reply from b');
    expect(result.headers.get('fromB')).to.equal(1);
    expect(result.headers.get('after')).to.equal(true);
    expect(result.properties.has(ExchangeProperty.MulticastIndex)).to.equal(false);
  });

  it('as a block, each step until end() is one destination, and the strategy combines the replies', async () => {
    const { template } = await start((r) => {
      r.from('direct:in')
        .multicast({ aggregationStrategy: concatBodies })
        .to('direct:a')
        .process((ex) => void (ex.body = `${String(ex.body)}-processed`))
        .setBody('constant')
        .end()
        .setHeader('after', '${body}');
      r.from('direct:a').setBody('${body}-from-a');
    });
    const result = await template.send('direct:in', new Exchange({ body: 'x' }));
    expect(result.body).to.equal('x-from-a+x-processed+constant');
    expect(result.headers.get('after')).to.equal('x-from-a+x-processed+constant');
  });

  it('with parallelProcessing every destination runs at once, and replies are combined in written order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const { template } = await start((r) => {
      r.from('direct:in').multicast(['direct:slow', 'direct:fast'], { parallelProcessing: true, aggregationStrategy: concatBodies });
      r.from('direct:slow').process(async (ex) => {
        started.push('slow');
        await gate;
        ex.body = 'slow';
      });
      r.from('direct:fast').process((ex) => {
        started.push('fast');
        ex.body = 'fast';
      });
    });
    const sending = template.send('direct:in', new Exchange({ body: 'x' }));
    // fast has run while slow is still held: they were sent together.
    await waitFor(() => started.length === 2);
    release();
    const result = await sending;
    expect(result.body).to.equal('slow+fast');
  });

  it('a failed destination does not stop the others; the first failure then fails the original', async () => {
    const reached: string[] = [];
    const { template } = await start((r) => {
      r.from('direct:in').multicast(['direct:ok', 'direct:bad', 'direct:worse', 'direct:last']);
      r.from('direct:ok').process(() => void reached.push('ok')).setBody('ok reply');
      r.from('direct:bad').process(() => {
        reached.push('bad');
        throw new Error('bad failed');
      });
      r.from('direct:worse').process(() => {
        reached.push('worse');
        throw new Error('worse failed');
      });
      r.from('direct:last').process(() => void reached.push('last')).setBody('last reply');
    });
    const result = await template.send('direct:in', new Exchange({ body: 'x' }));
    expect(reached).to.deep.equal(['ok', 'bad', 'worse', 'last']);
    expect(result.exception?.message).to.equal('bad failed');
    // The successful replies are still combined: the default keeps the last one.
    expect(result.body).to.equal('last reply');
  });

  it('a strategy sees the failed replies too, and decides whether they fail the original', async () => {
    const seenFailures: string[] = [];
    const remedy: AggregationStrategy = (aggregated, next) => {
      if (next.exception) {
        seenFailures.push(next.exception.message);
        next.exception = undefined;
        next.body = 'fallback';
      }
      return concatBodies(aggregated, next);
    };
    const keepFailure: AggregationStrategy = (aggregated, next) => (aggregated?.exception ? aggregated : next);
    const { template } = await start((r) => {
      r.from('direct:remedied').multicast(['direct:ok', 'direct:bad'], { aggregationStrategy: remedy });
      r.from('direct:kept').multicast(['direct:bad', 'direct:ok'], { aggregationStrategy: keepFailure });
      r.from('direct:ok').setBody('ok');
      r.from('direct:bad').process(() => {
        throw new Error('bad failed');
      });
    });
    const remedied = await template.send('direct:remedied', new Exchange({ body: 'x' }));
    expect(seenFailures).to.deep.equal(['bad failed']);
    expect(remedied.exception).to.equal(undefined);
    expect(remedied.body).to.equal('ok+fallback');
    const kept = await template.send('direct:kept', new Exchange({ body: 'x' }));
    expect(kept.exception?.message).to.equal('bad failed');
  });

  it('with stopOnException no destination after the failed one is called', async () => {
    const reached: string[] = [];
    const { template } = await start((r) => {
      r.from('direct:in').multicast({ stopOnException: true }).to('direct:bad').to('direct:after').end().setHeader('after', true);
      r.from('direct:bad').process(() => {
        reached.push('bad');
        throw new Error('bad failed');
      });
      r.from('direct:after').process(() => void reached.push('after'));
    });
    const result = await template.send('direct:in', new Exchange({ body: 'x' }));
    expect(reached).to.deep.equal(['bad']);
    expect(result.exception?.message).to.equal('bad failed');
    expect(result.headers.has('after')).to.equal(false);
    expect(result.body).to.equal('x');
  });

  it('in parallel, the failure reported is the first in written order, after all destinations finished', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const finished: string[] = [];
    const { template } = await start((r) => {
      r.from('direct:in').multicast(['direct:first', 'direct:second'], { parallelProcessing: true });
      r.from('direct:first').process(async () => {
        await gate;
        finished.push('first');
        throw new Error('first failed');
      });
      r.from('direct:second').process(() => {
        finished.push('second');
        throw new Error('second failed');
      });
    });
    const sending = template.send('direct:in', new Exchange({ body: 'x' }));
    await waitFor(() => finished.length === 1);
    release();
    const result = await sending;
    expect(finished).to.deep.equal(['second', 'first']);
    expect(result.exception?.message).to.equal('first failed');
  });

  it('rejects no destinations, unknown options and a strategy that is not a function, naming the route', async () => {
    for (const [define, expected] of [
      [(r: any) => r.from('direct:x').multicast([]), /multicast\(\): multicast\(\) needs at least one destination URI/],
      [(r: any) => r.from('direct:x').multicast(['direct:a'], { parallel: true }), /unknown option\(s\) parallel; valid options: parallelProcessing/],
      [(r: any) => r.from('direct:x').multicast({ aggregationStrategy: 'latest' }), /aggregationStrategy must be a function/],
      [(r: any) => r.from('direct:x').multicast(['direct:a'], { parallelProcessing: 'true' }), /parallelProcessing must be true or false, got "true"/],
      [(r: any) => r.from('direct:x').multicast(['direct:a', 'bad uri']), /multicast\(\)/],
      [(r: any) => r.from('direct:x').multicast('direct:a', 'direct:b'), /takes its URIs as an array: multicast\(\['direct:a', …\]\)/],
      [(r: any) => r.from('direct:x').multicast('http://u:secret@host/x'), /multicast\(\['http:\/\/u:xxxxxx@host\/x', …\]\)/],
    ] as const) {
      await new Context().addRoutes(define).then(
        () => expect.fail('should have thrown'),
        (err: Error) => {
          expect(err).to.be.instanceOf(RouteBuildError);
          expect(err.message).to.contain('Route from(direct:x)');
          expect(err.message).to.match(expected);
        },
      );
    }
  });

  it('an empty multicast block fails when the route starts, naming the route and the fix', async () => {
    const c = new Context();
    await c.addRoutes((r) => r.from('direct:x').routeId('empty').multicast().end());
    await c.start().then(
      () => expect.fail('should have thrown'),
      (err: Error) => {
        expect(err).to.be.instanceOf(RouteBuildError);
        expect(err.message).to.contain('Route empty').and.to.contain('multicast() has no destinations');
      },
    );
    await c.stop();
  });
});
