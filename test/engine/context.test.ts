import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import { ResolveEndpointError, RouteBuildError } from '../../lib/errors.ts';
import { ConsumerSupport, EndpointSupport, ProducerSupport } from '../../lib/spi/endpoint-support.ts';
import type { Component } from '../../lib/spi/component.ts';
import type { ParsedUri } from '../../lib/uri/parse.ts';
import type { Processor } from '../../lib/spi/processor.ts';
import { Exchange } from '../../lib/exchange/index.ts';
import { waitFor } from '../support/wait.ts';

/** A component whose consumer fires on demand and whose producer records what it got and when it stopped. */
class ManualComponent implements Component {
  readonly events: string[] = [];
  consumer: ManualConsumer | undefined;
  createEndpoint(uri: ParsedUri, context: Context) {
    const component = this;
    return new (class extends EndpointSupport {
      override createConsumer(processor: Processor) {
        component.consumer = new ManualConsumer(this, processor, component.events);
        return component.consumer;
      }
      override createProducer() {
        return new (class extends ProducerSupport {
          process(ex: Exchange) {
            component.events.push(`produce:${String(ex.body)}`);
          }
          protected override doStop() {
            component.events.push('producer stopped');
          }
        })(this);
      }
    })(uri, context);
  }
}

class ManualConsumer extends ConsumerSupport {
  readonly #events: string[];
  constructor(endpoint: EndpointSupport, processor: Processor, events: string[]) {
    super(endpoint, processor);
    this.#events = events;
  }
  fire(body: unknown) {
    return this.processor(new Exchange({ body }));
  }
  protected doStart() {
    this.#events.push('consumer started');
  }
  protected doStop() {
    this.#events.push('consumer stopped');
  }
}

describe('Context', () => {
  it('fails on an unknown scheme, listing the available components', async () => {
    const context = new Context();
    await context.addRoutes((r) => r.from('nope:x').log('x'));
    const err = await context.start().then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(RouteBuildError);
    expect(err!.message).to.contain('no component found with scheme "nope"').and.to.match(/Available components: .*direct.*log.*master.*timer/);
    expect(context.state).to.equal('stopped');
  });

  it('fails on an unknown endpoint option with the route, the option and the valid names', async () => {
    const context = new Context();
    await context.addRoutes((r) => r.from('timer:tick?periodd=1000').routeId('ticker').log('x'));
    const err = await context.start().then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('Route ticker').and.to.contain('Unknown parameters=[{periodd=1000}]').and.to.contain('Valid options for timer');
  });

  it('rejects a duplicate route id, naming both definitions', async () => {
    const context = new Context();
    const err = await context
      .addRoutes((r) => {
        r.from('direct:a').routeId('same');
        r.from('direct:b').routeId('same');
      })
      .then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(RouteBuildError);
    expect(err!.message).to.match(/Duplicate route id "same": defined at .*context\.test\.ts:\d+ and at .*context\.test\.ts:\d+/);
  });

  it('names routes route1, route2… when they have no id', async () => {
    const context = new Context();
    await context.addRoutes((r) => {
      r.from('direct:a');
      r.from('direct:b').routeId('named');
      r.from('direct:c');
    });
    await context.start();
    expect(context.routes.map((r) => r.id)).to.deep.equal(['route1', 'named', 'route2']);
    await context.stop();
  });

  it('gives the same endpoint for the same URI', async () => {
    const context = new Context();
    expect(await context.endpoint('direct:x')).to.equal(await context.endpoint('direct:x'));
  });

  it('uses components registered by the application', async () => {
    const manual = new ManualComponent();
    const context = new Context({ components: { manual } });
    await context.addRoutes((r) => r.from('manual:in').to('manual:out'));
    await context.start();
    await manual.consumer!.fire('one');
    await context.stop();
    expect(manual.events).to.deep.equal(['consumer started', 'produce:one', 'consumer stopped', 'producer stopped']);
  });

  it('shuts down gracefully: consumers stop first, in-flight exchanges finish, then producers stop', async () => {
    const manual = new ManualComponent();
    const context = new Context({ components: { manual } });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await context.addRoutes((r) =>
      r
        .from('manual:in')
        .process(() => gate)
        .to('manual:out'),
    );
    await context.start();
    const inflight = manual.consumer!.fire('slow');
    await waitFor(() => context.routes[0]!.inflight === 1);
    const stopping = context.stop();
    await waitFor(() => manual.events.includes('consumer stopped'));
    expect(manual.events).not.to.include('producer stopped');
    release();
    await inflight;
    await stopping;
    expect(manual.events).to.deep.equal(['consumer started', 'consumer stopped', 'produce:slow', 'producer stopped']);
  });

  it('gives up waiting for in-flight exchanges after the shutdown timeout, and says so', async () => {
    const manual = new ManualComponent();
    const warnings: string[] = [];
    const { captureLogger } = await import('../support/capture-logger.ts');
    const capture = captureLogger();
    const context = new Context({ components: { manual }, shutdownTimeout: 50, logger: capture.logger });
    await context.addRoutes((r) => r.from('manual:in').routeId('stuck').process(() => new Promise(() => undefined)));
    await context.start();
    void manual.consumer!.fire('forever');
    await context.stop();
    warnings.push(...capture.lines.filter((l) => l.level === 'warn').map((l) => l.message));
    expect(warnings.join('\n')).to.contain('Route stuck still had 1 exchange(s) in flight after the 50ms shutdown timeout');
  });

  it('starts routes added after start at once', async () => {
    const context = new Context();
    await context.start();
    await context.addRoutes((r) => r.from('direct:late').setBody('late'));
    expect(await context.createProducerTemplate().requestBody('direct:late', null)).to.equal('late');
    await context.stop();
  });

  it('producer templates throw the failure of the exchange from sendBody/requestBody', async () => {
    const context = new Context();
    await context.addRoutes((r) => r.from('direct:fail').process(() => {
      throw new Error('nope');
    }));
    await context.start();
    const template = context.createProducerTemplate();
    await template.sendBody('direct:fail', 1).then(() => expect.fail('should throw'), (e: Error) => expect(e.message).to.equal('nope'));
    const ex = await template.send('direct:fail', 1);
    expect(ex.exception?.message).to.equal('nope');
    await context.stop();
  });

  it('reports endpoint errors for URIs it cannot parse', async () => {
    await new Context().endpoint('not a uri').then(() => expect.fail('should throw'), (e: Error) => expect(e).to.be.instanceOf(ResolveEndpointError));
  });
});
