import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { RouteBuildError } from '../../../lib/errors.ts';
import { Exchange } from '../../../lib/exchange/index.ts';
import type { RouteBuilder } from '../../../lib/dsl/route-definition.ts';
import { gatedSink } from '../../support/gated-sink.ts';
import { startContextStoppedAfterEach } from '../../support/context.ts';
import { waitFor } from '../../support/wait.ts';

describe('wireTap', () => {
  const start = startContextStoppedAfterEach();

  async function startWithSink(routes: (r: RouteBuilder) => void, shutdownTimeout?: number) {
    const sink = gatedSink();
    return { sink, ...(await start(routes, { components: { gated: sink.component }, shutdownTimeout })) };
  }

  it('sends a copy without waiting for it; the original goes on unchanged', async () => {
    const { sink, template } = await startWithSink((r) => r.from('direct:in').setHeader('before', true).wireTap('gated:audit').setBody('after the tap'));
    const original = await template.send('direct:in', new Exchange({ body: 'order 1' }));
    // The original is done while the tap is still held at the gate.
    expect(original.body).to.equal('after the tap');
    expect(original.exception).to.equal(undefined);
    await waitFor(() => sink.arrived.length === 1);
    expect(sink.delivered).to.have.length(0);
    sink.open();
    await waitFor(() => sink.delivered.length === 1);
    const tap = sink.delivered[0]!;
    expect(tap).to.not.equal(original);
    expect(tap.id).to.not.equal(original.id);
    expect(tap.body).to.equal('order 1');
    expect(tap.headers.get('before')).to.equal(true);
    expect(tap.pattern).to.equal('InOnly');
  });

  it('a change the tapped route makes does not reach the original', async () => {
    const started = await start((r) => {
      r.from('direct:in').wireTap('direct:tap').setHeader('seen', '${body}');
      r.from('direct:tap').setBody('changed by the tap').setHeader('tapped', true);
    });
    const original = await started.template.send('direct:in', new Exchange({ body: 'original' }));
    expect(original.body).to.equal('original');
    expect(original.headers.get('seen')).to.equal('original');
    expect(original.headers.has('tapped')).to.equal(false);
  });

  it('logs a failing tap and never fails the original', async () => {
    const started = await start((r) => {
      r.from('direct:in').routeId('main').wireTap('direct:tap').wireTap('direct:nobody?block=false').setBody('done');
      r.from('direct:tap').process(() => {
        throw new Error('audit store down');
      });
    });
    const original = await started.template.send('direct:in', new Exchange({ body: 'x' }));
    expect(original.exception).to.equal(undefined);
    expect(original.body).to.equal('done');
    const warnings = await waitFor(() => {
      const found = started.lines.filter((l) => l.message.startsWith('wireTap('));
      return found.length === 2 && found;
    });
    expect(warnings.map((l) => [l.level, l.meta.route])).to.deep.equal([
      ['warn', 'main'],
      ['warn', 'main'],
    ]);
    const text = warnings.map((l) => l.message).join('\n');
    expect(text).to.contain('wireTap(direct:tap) failed').and.to.contain('audit store down');
    expect(text).to.contain('wireTap(direct:nobody?block=false) failed').and.to.contain('No consumers available');
    expect(text).to.contain(`tapped from ${original.id}`);
  });

  it('waits for taps still running when the route stops, before closing the producer', async () => {
    const { sink, context, template } = await startWithSink((r) => r.from('direct:in').wireTap('gated:audit'));
    await template.send('direct:in', new Exchange({ body: 'last words' }));
    await waitFor(() => sink.arrived.length === 1);
    const stopping = context.stop();
    // Later than the rest of stop() needs, so a stop that did not wait would close the producer first.
    setTimeout(sink.open, 100);
    await stopping;
    expect(sink.events).to.deep.equal(['delivered last words', 'producer stopped']);
  });

  it('gives up on a tap that outlasts the shutdown timeout and says so', async () => {
    const { sink, context, template, lines } = await startWithSink((r) => r.from('direct:in').routeId('tapper').wireTap('gated:audit'), 50);
    await template.send('direct:in', new Exchange({ body: 'stuck' }));
    await waitFor(() => sink.arrived.length === 1);
    await context.stop();
    const warning = lines.find((l) => l.message.includes('still had 1 tapped exchange(s) running'));
    expect(warning?.level).to.equal('warn');
    expect(warning?.message).to.contain('wireTap(gated:audit)').and.to.contain('50ms');
    expect(sink.events).to.deep.equal(['producer stopped']);
    sink.open();
  });

  it('rejects a malformed URI when the route is defined', async () => {
    await new Context().addRoutes((r) => r.from('direct:x').wireTap('not a uri')).then(
      () => expect.fail('should have thrown'),
      (err: Error) => {
        expect(err).to.be.instanceOf(RouteBuildError);
        expect(err.message).to.contain('wireTap()');
      },
    );
  });
});
