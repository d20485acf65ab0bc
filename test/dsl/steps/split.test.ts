import { expect } from 'chai';
import { deadLetterChannel } from '../../../lib/dsl/error-handling.ts';
import type { AggregationStrategy } from '../../../lib/dsl/steps/split.ts';
import { Exchange, ExchangeProperty } from '../../../lib/exchange/index.ts';
import { startContextStoppedAfterEach } from '../../support/context.ts';

class BadItem extends Error {
  override name = 'BadItem';
}

/** Fails the items named in `bad`; records the others. */
function failing(bad: readonly string[], seen: string[]) {
  return (ex: Exchange) => {
    const item = String(ex.body);
    if (bad.includes(item)) throw new BadItem(`bad item ${item}`);
    seen.push(item);
  };
}

/** Joins bodies with '+'; records what it was given as [index, body, failure message]. */
function joining(calls: Array<[unknown, unknown, string | undefined]>): AggregationStrategy {
  return (aggregated, next) => {
    calls.push([next.getProperty(ExchangeProperty.SplitIndex), next.body, next.exception?.message]);
    if (!aggregated) return next;
    aggregated.body = `${String(aggregated.body)}+${String(next.body)}`;
    return aggregated;
  };
}

describe('split step: failures, stopOnException and the aggregation strategy (Camel semantics)', () => {
  const start = startContextStoppedAfterEach();

  async function send(routes: Parameters<typeof start>[0], body: unknown) {
    const started = await start(routes);
    const exchange = await started.template.send('direct:in', new Exchange({ body }));
    return { exchange, ...started };
  }

  describe('stopOnException', () => {
    it('stops at an item whose failure an onException(handled) clause handled; the parent takes its reply and ends routing, not failed', async () => {
      const seen: string[] = [];
      const { exchange } = await send(
        (r) =>
          r
            .from('direct:in')
            .onException(BadItem, { handled: true })
            .setBody('handled ${body}')
            .end()
            .split('${body}', { stopOnException: true })
            .process(failing(['b'], seen))
            .end()
            .setHeader('after', true),
        'a,b,c',
      );
      expect(seen).to.deep.equal(['a']);
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.body).to.equal('handled b');
      expect(exchange.getProperty(ExchangeProperty.ExceptionCaught)).to.be.instanceOf(BadItem);
      expect(exchange.headers.has('after')).to.equal(false);
    });

    it('stops at an item a dead-letter channel took (handled too)', async () => {
      const seen: string[] = [];
      const dead: unknown[] = [];
      const { exchange } = await send((r) => {
        r.from('direct:dlq').process((ex) => void dead.push(ex.body));
        r.from('direct:in')
          .errorHandler(deadLetterChannel('direct:dlq'))
          .split('${body}', { stopOnException: true })
          .process(failing(['b'], seen))
          .end()
          .setHeader('after', true);
      }, 'a,b,c');
      expect(seen).to.deep.equal(['a']);
      expect(dead).to.deep.equal(['b']);
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.headers.has('after')).to.equal(false);
    });

    it('stops at a failed item: the parent fails with its error and keeps its own message; the strategy never sees the failed item', async () => {
      const seen: string[] = [];
      const calls: Array<[unknown, unknown, string | undefined]> = [];
      const completes: unknown[] = [];
      const { exchange } = await send(
        (r) =>
          r
            .from('direct:in')
            .split('${body}', { stopOnException: true, aggregationStrategy: joining(calls) })
            .process((ex) => void completes.push(ex.getProperty(ExchangeProperty.SplitComplete)))
            .process(failing(['b'], seen))
            .end()
            .setHeader('after', true),
        'a,b,c',
      );
      expect(seen).to.deep.equal(['a']);
      expect(calls).to.deep.equal([[0, 'a', undefined]]);
      // The split stopped before its last item: no item was marked complete.
      expect(completes).to.deep.equal([false, false]);
      expect(exchange.exception).to.be.instanceOf(BadItem);
      expect(exchange.exception?.message).to.equal('bad item b');
      expect(exchange.body).to.equal('a,b,c');
      expect(exchange.headers.has('after')).to.equal(false);
    });
  });

  describe('aggregationStrategy', () => {
    it('receives a failed item with its exception, and may clear it: the split goes on and the parent is not failed', async () => {
      const calls: Array<[unknown, unknown, string | undefined]> = [];
      const remedy: AggregationStrategy = (aggregated, next) => {
        if (next.exception) {
          next.exception = undefined;
          next.body = `skipped ${String(next.body)}`;
        }
        return joining(calls)(aggregated, next);
      };
      const seen: string[] = [];
      const { exchange, lines } = await send(
        (r) =>
          r
            .from('direct:in')
            .split('${body}', { aggregationStrategy: remedy })
            .process(failing(['b'], seen))
            .end()
            .setHeader('after', true),
        'a,b,c',
      );
      expect(seen).to.deep.equal(['a', 'c']);
      expect(calls).to.deep.equal([
        [0, 'a', undefined],
        [1, 'skipped b', undefined],
        [2, 'c', undefined],
      ]);
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.body).to.equal('a+skipped b+c');
      expect(exchange.headers.get('after')).to.equal(true);
      expect(lines.filter((l) => l.level === 'error')).to.deep.equal([]);
    });

    it('sees the failure on the item; an aggregated exchange that keeps it fails the parent', async () => {
      const calls: Array<[unknown, unknown, string | undefined]> = [];
      const { exchange } = await send(
        (r) =>
          r
            .from('direct:in')
            .split('${body}', { aggregationStrategy: joining(calls) })
            .process(failing(['a'], []))
            .end()
            .setHeader('after', true),
        'a,b',
      );
      expect(calls).to.deep.equal([
        [0, 'a', 'bad item a'],
        [1, 'b', undefined],
      ]);
      expect(exchange.exception?.message).to.equal('bad item a');
      expect(exchange.body).to.equal('a+b');
      expect(exchange.headers.has('after')).to.equal(false);
    });
  });

  describe('without a strategy (Camel UseOriginalAggregationStrategy)', () => {
    it('finishes every item, keeps the parent message, and fails the parent with the last failure', async () => {
      const seen: string[] = [];
      const { exchange } = await send(
        (r) =>
          r
            .from('direct:in')
            .split('${body}')
            .process(failing(['b', 'd'], seen))
            .setBody('changed')
            .end(),
        'a,b,c,d,e',
      );
      expect(seen).to.deep.equal(['a', 'c', 'e']);
      expect(exchange.body).to.equal('a,b,c,d,e');
      expect(exchange.exception?.message).to.equal('bad item d');
    });

    it('an item a clause handled leaves the parent going on, with CamelExceptionCaught set', async () => {
      const { exchange } = await send(
        (r) =>
          r
            .from('direct:in')
            .onException(BadItem, { handled: true })
            .end()
            .split('${body}')
            .process(failing(['b'], []))
            .end()
            .setHeader('after', true),
        'a,b,c',
      );
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.headers.get('after')).to.equal(true);
      expect((exchange.getProperty(ExchangeProperty.ExceptionCaught) as Error).message).to.equal('bad item b');
    });
  });
});
