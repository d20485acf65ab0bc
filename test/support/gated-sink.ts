import type { Component } from '../../lib/spi/component.ts';
import type { Exchange } from '../../lib/exchange/exchange.ts';
import { EndpointSupport, ProducerSupport } from '../../lib/spi/endpoint-support.ts';

/**
 * A `gated:` producer whose deliveries wait until the test opens the gate, standing in for a slow
 * remote endpoint (an HTTP call, a broker publish). It records each delivery and its own stops, in
 * order, so a test can tell whether a message arrived before the producer was closed.
 */
export function gatedSink() {
  const events: string[] = [];
  const delivered: Exchange[] = [];
  const arrived: Exchange[] = [];
  let open!: () => void;
  let opened = new Promise<void>((resolve) => (open = resolve));
  const component: Component = {
    createEndpoint: (uri, context) =>
      new (class extends EndpointSupport {
        override createProducer() {
          return new (class extends ProducerSupport {
            async process(exchange: Exchange) {
              arrived.push(exchange);
              await opened;
              if (exchange.headers.get('fail')) throw new Error(`gated sink refused ${String(exchange.body)}`);
              delivered.push(exchange);
              events.push(`delivered ${String(exchange.body)}`);
            }
            protected override doStop() {
              events.push('producer stopped');
            }
          })(this);
        }
      })(uri, context),
  };
  return {
    component,
    events,
    arrived,
    delivered,
    open: () => open(),
    /** Closes the gate again for the next deliveries. */
    close: () => {
      opened = new Promise<void>((resolve) => (open = resolve));
    },
  };
}
