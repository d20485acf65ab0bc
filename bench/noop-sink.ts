import { EndpointSupport, ProducerSupport } from '../lib/spi/endpoint-support.ts';
import type { Component } from '../lib/spi/component.ts';

/** A component whose producers do nothing, so a bench's figures are the engine's and steps' own cost. */
export const noopSinkComponent: Component = {
  createEndpoint: (uri, context) =>
    new (class extends EndpointSupport {
      override createProducer() {
        return new (class extends ProducerSupport {
          process() {}
        })(this);
      }
    })(uri, context),
};
