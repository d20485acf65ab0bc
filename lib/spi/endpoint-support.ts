import { ResolveEndpointError } from '../errors.ts';
import type { Exchange } from '../exchange/exchange.ts';
import type { ParsedUri } from '../uri/parse.ts';
import type { Context } from '../engine/context.ts';
import type { Consumer, Endpoint, Producer } from './component.ts';
import type { Processor } from './processor.ts';
import { ServiceSupport } from './service.ts';

/** Base for endpoints: keeps the URI and context, and refuses the direction a component does not support. */
export abstract class EndpointSupport implements Endpoint {
  readonly uri: string;
  readonly maskedUri: string;
  readonly scheme: string;
  readonly context: Context;

  constructor(parsed: ParsedUri, context: Context) {
    this.uri = parsed.template;
    this.maskedUri = parsed.masked;
    this.scheme = parsed.scheme;
    this.context = context;
  }

  createConsumer(_processor: Processor): Consumer | Promise<Consumer> {
    throw new ResolveEndpointError(this.maskedUri, `the ${this.scheme} component cannot consume: use it in to(...), not in from(...)`);
  }

  createProducer(): Producer | Promise<Producer> {
    throw new ResolveEndpointError(this.maskedUri, `the ${this.scheme} component cannot produce: use it in from(...), not in to(...)`);
  }
}

export abstract class ConsumerSupport<E extends Endpoint = Endpoint> extends ServiceSupport implements Consumer {
  readonly endpoint: E;
  protected readonly processor: Processor;

  constructor(endpoint: E, processor: Processor) {
    super();
    this.endpoint = endpoint;
    this.processor = processor;
  }
}

export abstract class ProducerSupport<E extends Endpoint = Endpoint> extends ServiceSupport implements Producer {
  readonly endpoint: E;

  constructor(endpoint: E) {
    super();
    this.endpoint = endpoint;
  }

  abstract process(exchange: Exchange): void | Promise<void>;

  protected doStart(): void {}
  protected doStop(): void {}
}
