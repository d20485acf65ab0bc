import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRouteFiles } from '../../lib/cli/route-loader.ts';
import type { ClusterService } from '../../lib/cluster/cluster-service.ts';
import { Context } from '../../lib/engine/context.ts';
import { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { DEFAULT_REDELIVERY, deadLetterChannel, defaultErrorHandler, type RedeliveryPolicy } from '../../lib/dsl/error-handling.ts';
import { errorHandler as topLevelErrorHandler, onException as topLevelOnException, takePendingErrorHandling } from '../../lib/dsl/global-routes.ts';
import { applyJitter, ErrorHeader, ErrorProperty, nextRedeliveryDelay, RedeliveryAbortedError } from '../../lib/engine/error-handling.ts';
import { RouteBuildError } from '../../lib/errors.ts';
import { Exchange, ExchangeProperty } from '../../lib/exchange/index.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { FakeScheduler } from '../support/fake-scheduler.ts';
import { waitFor } from '../support/wait.ts';

class PaymentError extends Error {
  override name = 'PaymentError';
}
class CardDeclinedError extends PaymentError {
  override name = 'CardDeclinedError';
}

describe('error handling', () => {
  let context: Context | undefined;
  afterEach(async () => {
    await context?.stop();
    context = undefined;
    takePendingErrorHandling();
  });

  async function start(routes: (r: RouteBuilder) => void, options: { scheduler?: FakeScheduler; configure?: (c: Context) => void } = {}) {
    const capture = captureLogger();
    context = new Context({ logger: capture.logger, scheduler: options.scheduler, shutdownTimeout: 2000 });
    options.configure?.(context);
    await context.addRoutes(routes);
    await context.start();
    const template = context.createProducerTemplate();
    const send = (body?: unknown, headers?: Record<string, unknown>) => template.send('direct:in', new Exchange({ body, headers }));
    return { context, template, send, ...capture };
  }

  /** Fires each redelivery timer as soon as the engine asks for it, `count` times. */
  async function fireTimers(clock: FakeScheduler, count: number) {
    for (let i = 0; i < count; i += 1) {
      await waitFor(() => clock.pending === 1, { message: `redelivery timer #${i + 1} scheduled` });
      clock.fireNext();
    }
  }

  describe('default error handler', () => {
    it('logs the failure once with the route, the exchange id and the endpoint, masking secrets, and leaves the exchange failed', async () => {
      const { send, lines } = await start((r) =>
        r
          .from('direct:in')
          .routeId('orders')
          .process(() => {
            throw new Error('cannot reach http://svc:s3cret@api.example/orders');
          }),
      );
      const exchange = await send('x');
      expect(exchange.exception?.message).to.contain('cannot reach');
      const errors = lines.filter((l) => l.level === 'error');
      expect(errors).to.have.length(1);
      expect(errors[0]!.message).to.contain(`(ExchangeId: ${exchange.id}) on route orders from direct:in.`).and.to.contain('Exhausted after delivery attempt: 1');
      expect(errors[0]!.message).to.contain('svc:xxxxxx@').and.not.to.contain('s3cret');
    });

    it('hands the error to a direct: caller, and a calling route neither redelivers nor handles it again', async () => {
      let calls = 0;
      let callerClause = 0;
      const { template } = await start((r) => {
        r.from('direct:in')
          .errorHandler(defaultErrorHandler({ maximumRedeliveries: 3, redeliveryDelay: 0 }))
          .onException(Error)
          .process(() => void callerClause++)
          .end()
          .to('direct:inner');
        r.from('direct:inner').process(() => {
          calls += 1;
          throw new TypeError('inner broke');
        });
      });
      const err = await template.sendBody('direct:in', 'x').then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(TypeError);
      expect(calls).to.equal(1);
      expect(callerClause).to.equal(0);
    });
  });

  describe('redelivery policy', () => {
    it('has Camel defaults and computes the nominal sequence with back-off and its cap', () => {
      expect(DEFAULT_REDELIVERY).to.include({ maximumRedeliveries: 0, redeliveryDelay: 1000, backOffMultiplier: 2, maximumRedeliveryDelay: 60_000, useExponentialBackOff: false });
      const expo: RedeliveryPolicy = { ...DEFAULT_REDELIVERY, useExponentialBackOff: true, redeliveryDelay: 10_000 };
      const seq: number[] = [];
      let d = 0;
      for (let i = 0; i < 5; i += 1) seq.push((d = nextRedeliveryDelay(expo, d)));
      expect(seq).to.deep.equal([10_000, 20_000, 40_000, 60_000, 60_000]);
    });

    it('redelivers the failed step, not the route, with exponential waits on the injected clock, and counter headers', async () => {
      const clock = new FakeScheduler();
      let before = 0;
      const attempts: Array<{ at: number; counter: unknown; redelivered: unknown; max: unknown }> = [];
      const { send } = await start(
        (r) =>
          r
            .from('direct:in')
            .errorHandler(defaultErrorHandler({ maximumRedeliveries: 3, redeliveryDelay: '1s', backOffMultiplier: 2 }))
            .process(() => void before++)
            .process((ex) => {
              attempts.push({
                at: clock.now(),
                counter: ex.headers.get(ErrorHeader.RedeliveryCounter),
                redelivered: ex.headers.get(ErrorHeader.Redelivered),
                max: ex.headers.get(ErrorHeader.RedeliveryMaxCounter),
              });
              throw new Error('still down');
            }),
        { scheduler: clock },
      );
      const sent = send('x');
      await fireTimers(clock, 3);
      const exchange = await sent;
      expect(clock.requested).to.deep.equal([1000, 2000, 4000]);
      expect(attempts.map((a) => a.at)).to.deep.equal([0, 1000, 3000, 7000]);
      expect(attempts.map((a) => a.counter)).to.deep.equal([undefined, 1, 2, 3]);
      expect(attempts.map((a) => a.redelivered)).to.deep.equal([undefined, true, true, true]);
      expect(attempts.at(-1)!.max).to.equal(3);
      expect(before).to.equal(1);
      expect(exchange.exception?.message).to.equal('still down');
    });

    it('waits redeliveryDelay each time without back-off, capped by maximumRedeliveryDelay, and succeeds when the step recovers', async () => {
      const clock = new FakeScheduler();
      let n = 0;
      const { send, lines } = await start(
        (r) =>
          r
            .from('direct:in')
            .errorHandler(defaultErrorHandler({ maximumRedeliveries: 5, redeliveryDelay: 5000, maximumRedeliveryDelay: 3000 }))
            .process((ex) => {
              n += 1;
              if (n < 3) throw new Error('flaky');
              ex.body = 'ok';
            }),
        { scheduler: clock },
      );
      const sent = send('x');
      await fireTimers(clock, 2);
      const exchange = await sent;
      expect(clock.requested).to.deep.equal([3000, 3000]);
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.body).to.equal('ok');
      expect(lines.filter((l) => l.level === 'error')).to.have.length(0);
    });

    it('keeps each jittered wait within ± jitter of the nominal one', async () => {
      const seen = new Set<number>();
      for (let i = 0; i < 2000; i += 1) {
        const d = applyJitter(1000, 0.2);
        expect(d).to.be.within(800, 1200);
        seen.add(Math.round(d / 100));
      }
      expect(seen.size, 'jitter spreads the waits').to.be.greaterThan(2);
      expect(applyJitter(1000, 0.2, () => 0)).to.equal(800);
      expect(applyJitter(1000, 0.2, () => 1)).to.equal(1200);

      const clock = new FakeScheduler();
      const { send } = await start(
        (r) =>
          r
            .from('direct:in')
            .errorHandler(defaultErrorHandler({ maximumRedeliveries: 20, redeliveryDelay: 1000, jitter: 0.15 }))
            .process(() => {
              throw new Error('x');
            }),
        { scheduler: clock },
      );
      const sent = send();
      await fireTimers(clock, 20);
      await sent;
      expect(clock.requested).to.have.length(20);
      for (const d of clock.requested) expect(d).to.be.within(850, 1150);
    });

    it('redelivers only the error types in retryOn, and while retryWhile holds', async () => {
      const clock = new FakeScheduler();
      let typeErrors = 0;
      let rangeErrors = 0;
      let whileCalls = 0;
      const { template } = await start(
        (r) => {
          r.from('direct:typed')
            .errorHandler(defaultErrorHandler({ maximumRedeliveries: 2, redeliveryDelay: 10, retryOn: [TypeError] }))
            .process((ex) => {
              if (ex.body === 'type') {
                typeErrors += 1;
                throw new TypeError('t');
              }
              rangeErrors += 1;
              throw new RangeError('r');
            });
          r.from('direct:while')
            .errorHandler(defaultErrorHandler({ redeliveryDelay: 10, retryWhile: (ex) => (ex.headers.get<number>(ErrorHeader.RedeliveryCounter) ?? 0) < 4 }))
            .process(() => {
              whileCalls += 1;
              throw new Error('w');
            });
        },
        { scheduler: clock },
      );
      const typed = template.send('direct:typed', 'type');
      await fireTimers(clock, 2);
      expect((await typed).exception).to.be.instanceOf(TypeError);
      expect((await template.send('direct:typed', 'range')).exception).to.be.instanceOf(RangeError);
      expect([typeErrors, rangeErrors]).to.deep.equal([3, 1]);
      const w = template.send('direct:while', 'x');
      await fireTimers(clock, 4);
      await w;
      expect(whileCalls).to.equal(5);
    });

    it('stops a redelivery wait at once when the context stops, failing the exchange with RedeliveryAbortedError', async () => {
      const clock = new FakeScheduler(); // never advanced: only the stop can end the wait
      let calls = 0;
      const started = await start(
        (r) =>
          r
            .from('direct:in')
            .routeId('patient')
            .errorHandler(defaultErrorHandler({ maximumRedeliveries: 5, redeliveryDelay: '1h' }))
            .process(() => {
              calls += 1;
              throw new Error('down');
            }),
        { scheduler: clock },
      );
      const sent = started.send('x');
      await waitFor(() => clock.pending === 1);
      await started.context.stop();
      context = undefined;
      const exchange = await sent;
      expect(exchange.exception).to.be.instanceOf(RedeliveryAbortedError);
      expect(exchange.exception?.message).to.contain('the route is stopping').and.to.contain('Last error: Error: down');
      expect((exchange.exception as Error).cause).to.be.instanceOf(Error);
      expect(calls).to.equal(1);
      expect(clock.pending).to.equal(0);
    });

    it('rejects bad options with the valid ones named', () => {
      expect(() => defaultErrorHandler({ maximumRedeliveris: 3 } as never)).to.throw(RouteBuildError, /unknown option "maximumRedeliveris".*maximumRedeliveries/);
      expect(() => defaultErrorHandler({ redeliveryDelay: 'soon' })).to.throw(RouteBuildError, /redeliveryDelay "soon" is not a duration/);
      expect(() => defaultErrorHandler({ jitter: 2 })).to.throw(RouteBuildError, /jitter must be a fraction/);
      expect(() => deadLetterChannel('')).to.throw(RouteBuildError, /URI of the dead-letter endpoint/);
    });
  });

  describe('onException', () => {
    it('handled: runs its steps with the caught exception, stops the route, and the exchange is not failed', async () => {
      let after = 0;
      const { send, lines } = await start((r) =>
        r
          .from('direct:in')
          .onException(PaymentError, { handled: true })
          .setBody('refused: ${exception.message}')
          .end()
          .process(() => {
            throw new CardDeclinedError('card 42 declined');
          })
          .process(() => void after++),
      );
      const exchange = await send('order');
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.body).to.equal('refused: card 42 declined');
      expect(exchange.getProperty(ExchangeProperty.ExceptionCaught)).to.be.instanceOf(CardDeclinedError);
      expect(exchange.getProperty(ExchangeProperty.FailureRouteId)).to.equal('route1');
      expect(exchange.getProperty(ErrorProperty.ErrorHandlerHandled)).to.equal(true);
      expect(after).to.equal(0);
      expect(lines.filter((l) => l.level === 'error')).to.have.length(0);
    });

    it('handled in a route called through direct: ends routing for the caller too, which gets the clause reply and no error', async () => {
      const { template } = await start((r) => {
        r.from('direct:in').to('direct:inner').setBody('caller went on');
        r.from('direct:inner')
          .onException(Error, { handled: true })
          .setBody('handled inside')
          .end()
          .process(() => {
            throw new Error('inner');
          });
      });
      expect(await template.requestBody('direct:in', 'x')).to.equal('handled inside');
    });

    it('continued: the route resumes with the step after the failed one', async () => {
      const { send } = await start((r) =>
        r
          .from('direct:in')
          .onException(RangeError, { continued: true })
          .end()
          .setHeader('a', 1)
          .process(() => {
            throw new RangeError('ignored');
          })
          .setHeader('b', 2),
      );
      const exchange = await send();
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.headers.get('b')).to.equal(2);
    });

    it('neither handled nor continued: its steps run and the exchange stays failed', async () => {
      const seen: string[] = [];
      const { send } = await start((r) =>
        r
          .from('direct:in')
          .onException(Error)
          .process((ex) => void seen.push(String(ex.getProperty<Error>(ExchangeProperty.ExceptionCaught)?.message)))
          .end()
          .process(() => {
            throw new Error('bad');
          }),
      );
      const exchange = await send();
      expect(seen).to.deep.equal(['bad']);
      expect(exchange.exception?.message).to.equal('bad');
    });

    it('picks the closest type, the route clause before the context one, and matches causes from the innermost out', async () => {
      const { template } = await start(
        (r) => {
          r.from('direct:in')
            .onException(Error, { handled: true })
            .setBody('route Error')
            .end()
            .onException(PaymentError, { handled: true })
            .setBody('route PaymentError')
            .end()
            .process((ex) => {
              if (ex.body === 'declined') throw new CardDeclinedError('d');
              if (ex.body === 'wrapped') throw new Error('outer', { cause: new PaymentError('inner') });
              throw new TypeError('t');
            });
        },
        {
          configure: (c) => {
            c.onException(CardDeclinedError, { handled: true }).setBody('context CardDeclinedError');
            c.onException(TypeError, { handled: true }).setBody('context TypeError');
          },
        },
      );
      expect(await template.requestBody('direct:in', 'declined')).to.equal('context CardDeclinedError');
      expect(await template.requestBody('direct:in', 'wrapped')).to.equal('route PaymentError');
      expect(await template.requestBody('direct:in', 'other')).to.equal('context TypeError');
    });

    it('takes conditions and onWhen, and route files declare context-level clauses with a top-level onException()', async () => {
      topLevelOnException((error) => error.message.startsWith('timeout'), { handled: true }).setBody('timed out');
      const { template } = await start(
        (r) =>
          r
            .from('direct:in')
            .onException(Error, { handled: true, onWhen: '${header.tenant} == "vip"' })
            .setBody('vip treatment')
            .end()
            .process((ex) => {
              throw new Error(String(ex.body));
            }),
        { configure: (c) => c.errorHandling.adopt(takePendingErrorHandling()) },
      );
      expect(await template.requestBody('direct:in', 'timeout after 5s')).to.equal('timed out');
      expect(await template.requestBody('direct:in', 'boom', { tenant: 'vip' })).to.equal('vip treatment');
      const err = await template.requestBody('direct:in', 'boom').then(() => undefined, (e: Error) => e);
      expect(err?.message).to.equal('boom');
    });

    it('errorHandler() refuses what is not a handler, on a route, on the context and at the top level of a route file', () => {
      // deadLetterChannel itself, not called: a slip that would otherwise leave failures unhandled without a word.
      const uncalled = deadLetterChannel as never;
      expect(() => new RouteBuilder().from('direct:x').errorHandler(uncalled)).to.throw(RouteBuildError, /errorHandler\(\): give defaultErrorHandler\(\{ \.\.\. \}\) or deadLetterChannel\(uri, \{ \.\.\. \}\)/);
      expect(() => new Context().errorHandler(uncalled)).to.throw(RouteBuildError, /errorHandler\(\): give defaultErrorHandler\(\{ \.\.\. \}\) or deadLetterChannel\(uri, \{ \.\.\. \}\)/);
      expect(() => topLevelErrorHandler(uncalled)).to.throw(RouteBuildError, /errorHandler\(\): give defaultErrorHandler\(\{ \.\.\. \}\) or deadLetterChannel\(uri, \{ \.\.\. \}\)/);
      expect(takePendingErrorHandling().errorHandler).to.equal(undefined);
    });

    it('route files declare context-level error handling with top-level errorHandler(), onException() and onCompletion(), and a completion copy runs no completions itself', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dromedary-errors-'));
      try {
        const lib = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
        const file = join(dir, 'orders.mts');
        await writeFile(
          file,
          [
            `import { from, errorHandler, onException, onCompletion, defaultErrorHandler } from ${JSON.stringify(lib)};`,
            `errorHandler(defaultErrorHandler({ maximumRedeliveries: 1, redeliveryDelay: 0 }));`,
            `onException(RangeError, { handled: true }).setBody('handled by the file: \${exception.message}');`,
            `onCompletion({ onCompleteOnly: true }).setHeader('x', 1).to('direct:audit');`,
            `let n = 0;`,
            `from('direct:in').process(() => { n += 1; throw new RangeError('attempt ' + n); });`,
          ].join('\n'),
        );
        const audited: unknown[] = [];
        const capture = captureLogger();
        context = new Context({ logger: capture.logger });
        const routes = await loadRouteFiles([file], { context, cluster: {} as ClusterService });
        await context.addRoutes(routes);
        await context.addRoutes((r) => r.from('direct:audit').process((ex) => void audited.push(ex.body)));
        await context.start();
        const reply = await context.createProducerTemplate().requestBody('direct:in', 'x');
        expect(reply).to.equal('handled by the file: attempt 2');
        expect(audited).to.deep.equal(['handled by the file: attempt 2']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('has its own redelivery policy, inheriting the rest from the error handler', async () => {
      const clock = new FakeScheduler();
      let calls = 0;
      const { send } = await start(
        (r) =>
          r
            .from('direct:in')
            .errorHandler(defaultErrorHandler({ maximumRedeliveries: 1, redeliveryDelay: 700 }))
            .onException(PaymentError, { maximumRedeliveries: 3, handled: true })
            .setBody('gave up')
            .end()
            .process(() => {
              calls += 1;
              throw new PaymentError('p');
            }),
        { scheduler: clock },
      );
      const sent = send();
      await fireTimers(clock, 3);
      const exchange = await sent;
      expect(calls).to.equal(4);
      expect(clock.requested).to.deep.equal([700, 700, 700]);
      expect(exchange.body).to.equal('gave up');
    });

    it('an error inside its steps fails the exchange with the new error, keeps the original, logs it, and does not loop', async () => {
      let clauseRuns = 0;
      const { send, lines } = await start((r) =>
        r
          .from('direct:in')
          .routeId('fragile')
          .onException(Error, { handled: true, maximumRedeliveries: 2, redeliveryDelay: 0 })
          .process(() => {
            clauseRuns += 1;
            throw new Error('the error handler broke too');
          })
          .end()
          .process(() => {
            throw new Error('original');
          }),
      );
      const exchange = await send();
      expect(clauseRuns).to.equal(1);
      expect(exchange.exception?.message).to.equal('the error handler broke too');
      expect(exchange.getProperty<Error>(ExchangeProperty.ExceptionCaught)?.message).to.equal('original');
      const logged = lines.filter((l) => l.level === 'error').map((l) => l.message);
      expect(logged[0]).to.contain('Error in the error handler onException(Error) of route fragile').and.to.contain('The original failure was Error: original');
    });

    it('is refused inside a block, and with both handled and continued', () => {
      const r = new RouteBuilder();
      expect(() => r.from('direct:x').filter('${body} == 1').onException(Error)).to.throw(RouteBuildError, /onException\(\) belongs to the route, not inside filter\(\)/);
      expect(() => r.from('direct:x').onException(Error, { handled: true, continued: true })).to.throw(RouteBuildError, /handled and continued exclude each other/);
      expect(() => r.from('direct:x').onException('Error' as never)).to.throw(RouteBuildError, /neither an error class nor a function/);
      expect(() => new Context().onException(Error).onException(TypeError)).to.throw(RouteBuildError, /onException\(\) cannot be used inside onException\(Error\)/);
    });

    it("points a context-level clause's build error at the user's line, not at the library", () => {
      const ctx = new Context();
      expect(() => ctx.onException(Error).onException(TypeError)).to.throw(RouteBuildError, /onException\(Error\) at test[\\/]engine[\\/]error-handling\.test\.ts:\d+:/);
      expect(() => ctx.onCompletion().onCompletion()).to.throw(RouteBuildError, /onCompletion\(\) at test[\\/]engine[\\/]error-handling\.test\.ts:\d+:/);
    });
  });

  describe('deadLetterChannel', () => {
    it('sends the failed exchange with the error message and type in headers, the original message if asked, and handles it', async () => {
      const dead: Exchange[] = [];
      const clock = new FakeScheduler();
      const { send, lines } = await start(
        (r) => {
          r.from('direct:in')
            .routeId('orders')
            .errorHandler(deadLetterChannel('direct:dead', { useOriginalMessage: true, maximumRedeliveries: 1, redeliveryDelay: 50 }))
            .setBody('changed')
            .setHeader('step', 'late')
            .process(() => {
              throw new CardDeclinedError('declined by bank');
            });
          r.from('direct:dead').process((ex) => void dead.push(ex));
        },
        { scheduler: clock },
      );
      const sent = send({ order: 7 }, { step: 'early' });
      await fireTimers(clock, 1);
      const exchange = await sent;
      expect(exchange.exception).to.equal(undefined);
      expect(dead).to.have.length(1);
      expect(dead[0]!.body).to.deep.equal({ order: 7 });
      expect(dead[0]!.headers.get('step')).to.equal('early');
      expect(dead[0]!.headers.get(ErrorHeader.ExceptionMessage)).to.equal('declined by bank');
      expect(dead[0]!.headers.get(ErrorHeader.ExceptionType)).to.equal('CardDeclinedError');
      expect(dead[0]!.headers.get(ErrorHeader.FailureRouteId)).to.equal('orders');
      expect(lines.find((l) => l.level === 'warn' && l.message.includes('moved to dead letter endpoint direct:dead after 2 delivery attempt(s)'))).to.not.equal(undefined);
      expect(lines.filter((l) => l.level === 'error')).to.have.length(0);
    });

    it('a failing dead-letter endpoint fails the exchange with its error, once, without looping', async () => {
      let deadCalls = 0;
      const { send, lines } = await start((r) => {
        r.from('direct:in')
          .errorHandler(deadLetterChannel('direct:dead'))
          .process(() => {
            throw new Error('original');
          });
        r.from('direct:dead').process(() => {
          deadCalls += 1;
          throw new Error('dead letter store full');
        });
      });
      const exchange = await send();
      expect(deadCalls).to.equal(1);
      expect(exchange.exception?.message).to.equal('dead letter store full');
      expect(exchange.getProperty<Error>(ExchangeProperty.ExceptionCaught)?.message).to.equal('original');
      expect(lines.some((l) => l.level === 'error' && l.message.includes('Error in the error handler deadLetterChannel(direct:dead)'))).to.equal(true);
    });

    it('can be the context-wide handler', async () => {
      const dead: unknown[] = [];
      const { send } = await start(
        (r) => {
          r.from('direct:in').process(() => {
            throw new Error('x');
          });
          r.from('direct:dead').process((ex) => void dead.push(ex.body));
        },
        { configure: (c) => c.errorHandler(deadLetterChannel('direct:dead')) },
      );
      await send('lost');
      expect(dead).to.deep.equal(['lost']);
    });
  });

  describe('inside a split', () => {
    it('handled: onException and redelivery act on the failing item only; the other items and the parent go on', async () => {
      const clock = new FakeScheduler();
      const tries: Record<string, number> = {};
      const done: unknown[] = [];
      const { send } = await start(
        (r) =>
          r
            .from('direct:in')
            .onException(RangeError, { handled: true, maximumRedeliveries: 2, redeliveryDelay: 100 })
            .process((ex) => void done.push(`handled ${String(ex.body)} after ${String(ex.headers.get(ErrorHeader.RedeliveryCounter))}`))
            .end()
            .split('${body}')
            .process((ex) => {
              const item = String(ex.body);
              tries[item] = (tries[item] ?? 0) + 1;
              if (item === 'b') throw new RangeError('b is out of range');
            })
            .process((ex) => void done.push(ex.body))
            .end()
            .setHeader('after', true),
        { scheduler: clock },
      );
      const sent = send(['a', 'b', 'c']);
      await fireTimers(clock, 2);
      const exchange = await sent;
      expect(tries).to.deep.equal({ a: 1, b: 3, c: 1 });
      expect(done).to.deep.equal(['a', 'handled b after 2', 'c']);
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.headers.get('after')).to.equal(true);
    });

    it('not handled: the item fails after its redeliveries, and the parent fails with the same error, handled no second time', async () => {
      const clock = new FakeScheduler();
      let clauseRuns = 0;
      let bTries = 0;
      const { send, lines } = await start(
        (r) =>
          r
            .from('direct:in')
            .errorHandler(defaultErrorHandler({ maximumRedeliveries: 1, redeliveryDelay: 100 }))
            .onException(RangeError)
            .process(() => void clauseRuns++)
            .end()
            .split('${body}')
            .process((ex) => {
              if (ex.body === 'b') {
                bTries += 1;
                throw new RangeError('b is out of range');
              }
            })
            .end()
            .setHeader('after', true),
        { scheduler: clock },
      );
      const sent = send(['a', 'b', 'c']);
      await fireTimers(clock, 1);
      const exchange = await sent;
      expect(bTries).to.equal(2);
      expect(clauseRuns).to.equal(1);
      expect(exchange.exception?.message).to.equal('b is out of range');
      expect(exchange.headers.get('after')).to.equal(undefined);
      expect(clock.requested).to.deep.equal([100]);
      expect(lines.filter((l) => l.level === 'error')).to.have.length(1);
    });
  });

  describe('doTry / doCatch / doFinally', () => {
    it('catches by the first matching doCatch, runs doFinally, and goes on', async () => {
      const { template } = await start((r) =>
        r
          .from('direct:in')
          .doTry()
          .process((ex) => {
            if (ex.body === 'range') throw new RangeError('r');
            if (ex.body === 'card') throw new CardDeclinedError('c');
          })
          .setHeader('tried', true)
          .doCatch(RangeError, TypeError)
          .setHeader('caught', 'range or type: ${exception.message}')
          .doCatch(PaymentError)
          .setHeader('caught', 'payment')
          .doFinally()
          .setHeader('finally', true)
          .end()
          .setHeader('after', true),
      );
      const range = await template.send('direct:in', 'range');
      expect(range.exception).to.equal(undefined);
      expect(range.headers.get('caught')).to.equal('range or type: r');
      expect(range.headers.get('tried')).to.equal(undefined);
      expect(range.headers.get('finally')).to.equal(true);
      expect(range.headers.get('after')).to.equal(true);
      expect((await template.send('direct:in', 'card')).headers.get('caught')).to.equal('payment');
      const ok = await template.send('direct:in', 'fine');
      expect([ok.headers.get('tried'), ok.headers.get('caught'), ok.headers.get('finally')]).to.deep.equal([true, undefined, true]);
    });

    it('lets an uncaught failure through after doFinally, and a failure in doCatch fails the exchange', async () => {
      const { template } = await start((r) =>
        r
          .from('direct:in')
          .doTry()
          .process((ex) => {
            throw ex.body === 'type' ? new TypeError('t') : new SyntaxError('s');
          })
          .doCatch(TypeError)
          .process(() => {
            throw new Error('catch broke');
          })
          .doFinally()
          .setHeader('finally', true)
          .end()
          .setHeader('after', true),
      );
      const uncaught = await template.send('direct:in', 'syntax');
      expect(uncaught.exception).to.be.instanceOf(SyntaxError);
      expect(uncaught.headers.get('finally')).to.equal(true);
      expect(uncaught.headers.get('after')).to.equal(undefined);
      const broken = await template.send('direct:in', 'type');
      expect(broken.exception?.message).to.equal('catch broke');
      expect(broken.headers.get('finally')).to.equal(true);
    });

    it('is checked as it is written', () => {
      const r = new RouteBuilder();
      expect(() => r.from('direct:x').doCatch(Error)).to.throw(RouteBuildError, /doCatch\(\) must follow doTry\(\)/);
      expect(() => r.from('direct:x').doTry().filter('${body} == 1').doCatch(Error)).to.throw(RouteBuildError, /innermost open block is filter\(\)/);
      expect(() => r.from('direct:x').doTry().doFinally().doCatch(Error)).to.throw(RouteBuildError, /cannot follow doFinally/);
      expect(() => r.from('direct:x').doTry().doFinally().doFinally()).to.throw(RouteBuildError, /only one doFinally/);
    });
  });

  describe('onCompletion', () => {
    it('runs after each exchange on a copy, with only-on-success and only-on-failure variants', async () => {
      const seen: string[] = [];
      const { template } = await start((r) =>
        r
          .from('direct:in')
          .onCompletion()
          .process((ex) => void seen.push(`always ${String(ex.body)}`))
          .setBody('changed by the completion')
          .end()
          .onCompletion({ onCompleteOnly: true })
          .process((ex) => void seen.push(`success ${String(ex.body)}`))
          .end()
          .onCompletion({ onFailureOnly: true })
          .process((ex) => void seen.push(`failure ${String(ex.body)}: ${ex.getProperty<Error>(ExchangeProperty.ExceptionCaught)!.message}`))
          .end()
          .process((ex) => {
            if (ex.body === 'bad') throw new Error('nope');
          }),
      );
      const good = await template.send('direct:in', 'good');
      expect(good.body).to.equal('good');
      await template.send('direct:in', 'bad');
      expect(seen).to.deep.equal(['always good', 'success good', 'always bad', 'failure bad: nope']);
    });

    it("runs a context-level completion once per exchange, where the exchange started, and a route's own where the route ends", async () => {
      const seen: string[] = [];
      const { template } = await start(
        (r) => {
          r.from('direct:in').setBody('in').to('direct:inner').setBody('back in');
          r.from('direct:inner')
            .onCompletion()
            .process((ex) => void seen.push(`inner's own: ${String(ex.body)}`))
            .end()
            .setBody('inner');
        },
        { configure: (c) => c.onCompletion().process((ex) => void seen.push(`context: ${String(ex.body)}`)) },
      );
      await template.send('direct:in', 'x');
      expect(seen).to.deep.equal(["inner's own: inner", 'context: back in']);
    });

    it('a failing completion is logged and does not change the outcome', async () => {
      const { send, lines } = await start((r) =>
        r
          .from('direct:in')
          .onCompletion()
          .process(() => {
            throw new Error('audit down');
          })
          .end()
          .setBody('done'),
      );
      const exchange = await send();
      expect(exchange.exception).to.equal(undefined);
      expect(exchange.body).to.equal('done');
      expect(lines.some((l) => l.level === 'error' && l.message.includes('onCompletion() of route route1 failed') && l.message.includes('audit down'))).to.equal(true);
    });
  });
});
