import type { Context } from '../../lib/engine/context.ts';
import { ConsumerSupport, EndpointSupport } from '../../lib/spi/endpoint-support.ts';
import type { Component } from '../../lib/spi/component.ts';
import type { Processor } from '../../lib/spi/processor.ts';
import { Exchange } from '../../lib/exchange/index.ts';

/**
 * A component whose consumer the test fires by hand while it runs, seeing each exchange as its consumer
 * would settle it: `fire` is set while the consumer runs (under master: only while this member leads).
 */
export class HandFired implements Component {
  fire: ((body: unknown) => Promise<Exchange>) | undefined;
  createEndpoint(uri: Parameters<Component['createEndpoint']>[0], context: Context) {
    const component = this;
    return new (class extends EndpointSupport {
      override createConsumer(processor: Processor) {
        return new (class extends ConsumerSupport {
          protected doStart() {
            component.fire = async (body) => {
              const ex = new Exchange({ body });
              await processor(ex);
              return ex;
            };
          }
          protected doStop() {
            component.fire = undefined;
          }
        })(this, processor);
      }
    })(uri, context);
  }
}
