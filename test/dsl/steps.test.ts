import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import { RouteBuildError } from '../../lib/errors.ts';
import { Exchange, ExchangeProperty } from '../../lib/exchange/index.ts';
import { startContextStoppedAfterEach } from '../support/context.ts';

describe('DSL steps', () => {
  const start = startContextStoppedAfterEach();

  async function run(define: Parameters<typeof start>[0], body?: unknown, headers?: Record<string, unknown>) {
    const started = await start(define);
    const exchange = await started.template.send('direct:in', new Exchange({ body, headers }));
    return { exchange, ...started };
  }

  it('log writes a Simple message under the route id, at the given level', async () => {
    const { lines } = await run((r) => r.from('direct:in').routeId('greeter').log('Hello ${body}').log('warn', 'careful ${header.who}'), 'Ann', { who: 'Bob' });
    const mine = lines.filter((l) => l.meta.route === 'greeter' && !l.message.startsWith('Started'));
    expect(mine.map((l) => [l.level, l.message])).to.deep.equal([
      ['info', 'Hello Ann'],
      ['warn', 'careful Bob'],
    ]);
  });

  it('log masks secrets in what it writes', async () => {
    const { lines } = await run((r) => r.from('direct:in').log('calling ${body}'), 'http://u:pw@host/x?token=t');
    expect(lines.map((l) => l.message).join('\n')).to.contain('calling http://u:xxxxxx@host/x?token=xxxxxx');
  });

  it('log cuts a long message after 10,000 characters, as the log: component cuts a body, and says what it cut', async () => {
    const body = 'x'.repeat(20 * 1024 * 1024);
    const { lines } = await run((r) => r.from('direct:in').routeId('big').log('got ${body}'), body);
    const [line] = lines.filter((l) => l.meta.route === 'big' && l.message.startsWith('got '));
    expect(line!.message).to.equal(`got ${'x'.repeat(9_996)}... [Message clipped after 10000 chars, total length is ${body.length + 4}]`);
  });

  it('setBody, transform, setHeader, setProperty and removeHeader take Simple templates, functions and constants', async () => {
    const { exchange } = await run(
      (r) =>
        r
          .from('direct:in')
          .setHeader('n', '${body.n}')
          .setProperty('double', (ex) => (ex.body as { n: number }).n * 2)
          .setBody('n is ${header.n}')
          .transform(async (ex) => `${ex.body as string}!`)
          .setHeader('constant', 42)
          .setHeader('gone', 'x')
          .removeHeader('GONE'),
      { n: 21 },
    );
    expect(exchange.exception).to.equal(undefined);
    expect(exchange.body).to.equal('n is 21!');
    expect(exchange.headers.get('n')).to.equal(21);
    expect(exchange.headers.get('constant')).to.equal(42);
    expect(exchange.headers.has('gone')).to.equal(false);
    expect(exchange.getProperty('double')).to.equal(42);
  });

  it('process runs functions and Camel-style processor objects, sync and async', async () => {
    const { exchange } = await run(
      (r) =>
        r
          .from('direct:in')
          .process((ex) => {
            ex.body = (ex.body as number) + 1;
          })
          .process({ process: async (ex) => void (ex.body = (ex.body as number) * 10) }),
      1,
    );
    expect(exchange.body).to.equal(20);
  });

  it('filter runs its block only for matching exchanges, and the route continues after end()', async () => {
    const seen: string[] = [];
    const define = (r: Parameters<Parameters<typeof start>[0]>[0]) =>
      r
        .from('direct:in')
        .filter("${header.type} == 'order'")
        .process((ex) => void seen.push(`order:${String(ex.body)}`))
        .end()
        .process((ex) => void seen.push(`after:${String(ex.body)}`));
    const started = await start(define);
    const a = await started.template.send('direct:in', new Exchange({ body: 'a', headers: { type: 'order' } }));
    await started.template.send('direct:in', new Exchange({ body: 'b', headers: { type: 'other' } }));
    expect(seen).to.deep.equal(['order:a', 'after:a', 'after:b']);
    expect(a.getProperty(ExchangeProperty.Filtered)).to.equal(true);
  });

  it('choice routes to the first matching when, else otherwise, then continues after end()', async () => {
    const started = await start((r) =>
      r
        .from('direct:in')
        .choice()
        .when('${body} > 100')
        .setHeader('size', 'big')
        .when((ex) => (ex.body as number) > 10)
        .setHeader('size', 'medium')
        .otherwise()
        .setHeader('size', 'small')
        .end()
        .setHeader('done', true),
    );
    const sizes = [];
    for (const n of [500, 50, 5]) {
      const ex = await started.template.send('direct:in', new Exchange({ body: n }));
      expect(ex.headers.get('done')).to.equal(true);
      sizes.push(ex.headers.get('size'));
    }
    expect(sizes).to.deep.equal(['big', 'medium', 'small']);
  });

  it('split makes one sub-exchange per item with index, size and complete properties', async () => {
    const parts: Array<[unknown, unknown, unknown, unknown]> = [];
    const { exchange } = await run(
      (r) =>
        r
          .from('direct:in')
          .split('${body.items}')
          .process((ex) =>
            void parts.push([
              ex.body,
              ex.getProperty(ExchangeProperty.SplitIndex),
              ex.getProperty(ExchangeProperty.SplitSize),
              ex.getProperty(ExchangeProperty.SplitComplete),
            ]),
          )
          .end()
          .setHeader('after', true),
      { items: ['a', 'b', 'c'] },
    );
    expect(parts).to.deep.equal([
      ['a', 0, 3, false],
      ['b', 1, 3, false],
      ['c', 2, 3, true],
    ]);
    expect(exchange.body).to.deep.equal({ items: ['a', 'b', 'c'] });
    expect(exchange.headers.get('after')).to.equal(true);
  });

  it('split splits strings on commas and aggregates when given a strategy', async () => {
    const { exchange } = await run(
      (r) =>
        r
          .from('direct:in')
          .split('${body}', {
            aggregationStrategy: (agg, next) => {
              if (agg) agg.body = `${agg.body as string}+${next.body as string}`;
              return agg ?? next;
            },
          })
          .process((ex) => void (ex.body = String(ex.body).toUpperCase()))
          .end(),
      'x,y,z',
    );
    expect(exchange.body).to.equal('X+Y+Z');
  });

  it('split finishes the other items after a failure, then fails the parent with it', async () => {
    const seen: unknown[] = [];
    const { exchange } = await run(
      (r) =>
        r
          .from('direct:in')
          .split('${body}')
          .process((ex) => {
            if (ex.body === 2) throw new Error('bad item 2');
            seen.push(ex.body);
          })
          .end()
          .setHeader('after', true),
      [1, 2, 3],
    );
    expect(seen).to.deep.equal([1, 3]);
    expect(exchange.exception?.message).to.equal('bad item 2');
    expect(exchange.headers.has('after')).to.equal(false);
  });

  it('marshal().json() and unmarshal().json() round-trip the body', async () => {
    const { exchange } = await run(
      (r) =>
        r
          .from('direct:in')
          .marshal()
          .json()
          .setHeader('text', '${body}')
          .unmarshal()
          .json(),
      { a: [1, 2] },
    );
    expect(exchange.headers.get('text')).to.equal('{"a":[1,2]}');
    expect(exchange.body).to.deep.equal({ a: [1, 2] });
  });

  it('unmarshal().json() fails the exchange with a clear error on malformed JSON', async () => {
    const { exchange } = await run((r) => r.from('direct:in').unmarshal().json(), '{"a":');
    expect(exchange.exception?.message).to.match(/Cannot unmarshal the body as JSON: .* \(body starts with "\{\\"a\\":"\)/);
  });

  it('delay waits the given duration before the next step', async () => {
    const { exchange } = await run((r) => r.from('direct:in').setProperty('t0', () => performance.now()).delay('30ms').setProperty('t1', () => performance.now()));
    expect((exchange.getProperty('t1') as number) - (exchange.getProperty('t0') as number)).to.be.at.least(29);
  });

  it('stop() ends the exchange successfully and skips the rest', async () => {
    const { exchange } = await run((r) => r.from('direct:in').setBody('a').stop().setBody('b'));
    expect(exchange.body).to.equal('a');
    expect(exchange.exception).to.equal(undefined);
  });

  it('a failing step stops the route, and the failure stays on the exchange and is logged with route and exchange id', async () => {
    const { exchange, lines } = await run((r) =>
      r
        .from('direct:in')
        .routeId('failing')
        .process(() => {
          throw new TypeError('boom');
        })
        .setBody('never'),
    );
    expect(exchange.exception).to.be.instanceOf(TypeError);
    expect(exchange.body).to.equal(undefined);
    const error = lines.find((l) => l.level === 'error');
    expect(error?.message).to.contain('failing').and.to.contain(exchange.id).and.to.contain('TypeError: boom').and.to.contain('direct:in');
  });

  it('toD sends to a URI computed per exchange', async () => {
    const started = await start((r) => {
      r.from('direct:in').toD('direct:${header.target}');
      r.from('direct:a').setBody('went to a');
      r.from('direct:b').setBody('went to b');
    });
    expect(await started.template.requestBody('direct:in', null, { target: 'a' })).to.equal('went to a');
    expect(await started.template.requestBody('direct:in', null, { target: 'b' })).to.equal('went to b');
  });

  describe('build-time errors', () => {
    it('a malformed Simple expression fails when the route is defined, naming the route and the expression', () => {
      const c = new Context();
      return c
        .addRoutes((r) => r.from('direct:x').routeId('bad-route').setBody('${body.'))
        .then(
          () => expect.fail('should have thrown'),
          (err: Error) => {
            expect(err).to.be.instanceOf(RouteBuildError);
            expect(err.message).to.contain('bad-route').and.to.contain('setBody').and.to.contain('${body.');
            expect(err.message).to.match(/steps\.test\.ts:\d+/);
          },
        );
    });

    it('a malformed predicate fails too', async () => {
      await new Context().addRoutes((r) => r.from('direct:x').filter('${header.a} ==')).then(
        () => expect.fail('should have thrown'),
        (err: Error) => expect(err).to.be.instanceOf(RouteBuildError),
      );
    });

    it('when() outside choice(), otherwise() first, and an extra end() are errors', async () => {
      const c = new Context();
      for (const define of [
        (r: any) => r.from('direct:x').when('true'),
        (r: any) => r.from('direct:x').choice().otherwise(),
        (r: any) => r.from('direct:x').end(),
        (r: any) => r.from('direct:x').choice().log('x'),
        (r: any) => r.from('direct:x').choice().when('true').split('${body}').otherwise(),
      ]) {
        await c.addRoutes(define).then(
          () => expect.fail('should have thrown'),
          (err: Error) => expect(err).to.be.instanceOf(RouteBuildError),
        );
      }
    });

    it('an extra end() names every block it could have closed', async () => {
      const c = new Context();
      await c.addRoutes((r) => r.from('direct:x').idempotentConsumer('${body}').end().end()).then(
        () => expect.fail('should have thrown'),
        (err: Error) => expect(err.message).to.contain('end() has no open block to close').and.contain('doTry()').and.contain('aggregate()'),
      );
    });

    it('endChoice() returns to the choice from inside a nested block', async () => {
      const started = await start((r) =>
        r.from('direct:in').choice().when('${body} == 1').split('${body}').setHeader('inner', true).endChoice().otherwise().setHeader('other', true).end(),
      );
      const ex = await started.template.send('direct:in', new Exchange({ body: 2 }));
      expect(ex.headers.get('other')).to.equal(true);
    });
  });
});
