import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { RouteBuildError } from '../../../lib/errors.ts';
import { Exchange } from '../../../lib/exchange/index.ts';
import { ThrottlerRejectedError } from '../../../lib/dsl/steps/throttle.ts';
import { startContextStoppedAfterEach } from '../../support/context.ts';
import { waitFor } from '../../support/wait.ts';

describe('throttle', () => {
  const start = startContextStoppedAfterEach();

  it('lets the first n through at once and holds the rest', async () => {
    const passed: unknown[] = [];
    const { context, template } = await start((r) => r.from('direct:in').throttle(2, { period: '1h' }).process((ex) => void passed.push(ex.body)), {
      shutdownTimeout: 50,
    });
    const sends = [1, 2, 3, 4].map((body) => template.send('direct:in', new Exchange({ body })));
    const settled = await Promise.all(sends.slice(0, 2));
    expect(settled.map((ex) => ex.exception)).to.deep.equal([undefined, undefined]);
    await waitFor(() => context.routes[0]!.inflight === 2);
    expect(passed).to.deep.equal([1, 2]);
  });

  it('lets at most n through in any period, the waiting ones in arrival order', async () => {
    const period = 100;
    const passed: Array<[unknown, number]> = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .throttle(2, { period })
        .process((ex) => void passed.push([ex.body, performance.now()])),
    );
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((body) => template.send('direct:in', new Exchange({ body }))));
    expect(results.map((ex) => ex.exception)).to.deep.equal(new Array(6).fill(undefined));
    expect(passed.map(([body]) => body)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    // Each passage takes the slot of the one two before it, which must be a period old by then
    // (less a little for the gap between the throttle letting it through and this step recording it).
    for (let i = 2; i < passed.length; i += 1) {
      expect(passed[i]![1] - passed[i - 2]![1], `exchange ${i + 1} after exchange ${i - 1}`).to.be.at.least(period - 5);
    }
  });

  it('takes a limit as large as wanted without reserving memory for it', async () => {
    const { template } = await start((r) => r.from('direct:in').throttle(Number.MAX_SAFE_INTEGER, { period: '1m' }).setBody('passed'));
    const results = await Promise.all([1, 2, 3].map((body) => template.send('direct:in', new Exchange({ body }))));
    expect(results.map((ex) => [ex.body, ex.exception])).to.deep.equal([
      ['passed', undefined],
      ['passed', undefined],
      ['passed', undefined],
    ]);
  });

  it('with rejectExecution fails an exchange over the limit at once instead of making it wait', async () => {
    const { template } = await start((r) => r.from('direct:in').throttle(1, { period: '1h', rejectExecution: true }).setBody('passed'));
    const first = await template.send('direct:in', new Exchange({ body: 'a' }));
    const second = await template.send('direct:in', new Exchange({ body: 'b' }));
    expect(first.body).to.equal('passed');
    expect(second.exception).to.be.instanceOf(ThrottlerRejectedError);
    expect(second.exception?.message).to.equal('throttle(1 per 60m): exceeded the maximum; rejected because rejectExecution is set');
    expect(second.body).to.equal('b');
  });

  it('fails the waiting exchanges, without letting them through, when the route stops', async () => {
    const passed: unknown[] = [];
    const { context, template, lines } = await start(
      (r) => r.from('direct:in').routeId('throttled').throttle(1, { period: '1h' }).process((ex) => void passed.push(ex.body)),
      { shutdownTimeout: 50 },
    );
    const sends = ['a', 'b', 'c'].map((body) => template.send('direct:in', new Exchange({ body })));
    await waitFor(() => context.routes[0]!.inflight === 2);
    await context.stop();
    const results = await Promise.all(sends);
    expect(passed).to.deep.equal(['a']);
    expect(results[0]!.exception).to.equal(undefined);
    for (const waited of results.slice(1)) {
      expect(waited.exception).to.be.instanceOf(ThrottlerRejectedError);
      expect(waited.exception?.message).to.contain('the route stopped while the exchange waited for its turn');
    }
    expect(lines.some((l) => l.message.includes('Route throttled still had 2 exchange(s) in flight'))).to.equal(true);
  });

  it('rejects a non-positive maximum, a bad period and unknown options, naming the value', async () => {
    for (const [define, expected] of [
      [(r: any) => r.from('direct:x').throttle(0), 'the maximum number of exchanges per period must be a positive whole number, got 0'],
      [(r: any) => r.from('direct:x').throttle(2.5), 'got 2.5'],
      [(r: any) => r.from('direct:x').throttle('10'), 'got "10"'],
      [(r: any) => r.from('direct:x').throttle(5, { period: 'soon' }), 'period "soon" is not a positive duration'],
      [(r: any) => r.from('direct:x').throttle(5, { period: 0 }), 'period 0 is not a positive duration'],
      [(r: any) => r.from('direct:x').throttle(5, { timePeriodMillis: 10 }), 'unknown option(s) timePeriodMillis; valid options: period, rejectExecution'],
      [(r: any) => r.from('direct:x').throttle(5, { rejectExecution: 1 }), 'rejectExecution must be true or false, got 1'],
    ] as const) {
      await new Context().addRoutes(define).then(
        () => expect.fail('should have thrown'),
        (err: Error) => {
          expect(err).to.be.instanceOf(RouteBuildError);
          expect(err.message).to.contain('Route from(direct:x)').and.to.contain('throttle(): ').and.to.contain(expected);
        },
      );
    }
  });
});
