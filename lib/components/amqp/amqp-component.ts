import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { resolveOptions, type OptionValues } from '../../uri/options.ts';
import { ResolveEndpointError } from '../../errors.ts';
import type { Context } from '../../engine/context.ts';
import { Exchange } from '../../exchange/exchange.ts';
// Incoming bodies follow the same content-type rules as http responses: XML and form-urlencoded ones arrive as strings.
import { decodeBody } from '../../exchange/body-encoding.ts';
import { ConsumerSupport, EndpointSupport, ProducerSupport } from '../../spi/endpoint-support.ts';
import { isPromise, type Processor } from '../../spi/processor.ts';
import { BrokerRegistry, resolveBrokerUrl, type BrokerConnection, type BrokerOptions } from './broker.ts';
import { AmqpHeader, amqpHeaders, encodeMessageBody, incomingHeaders, messageIdOf } from './convert.ts';
import { Subscriber, type Delivery } from './subscriber.ts';
import { ensureQueueDeclarations, exchangeDeclaration, type QueueSpec } from './topology.ts';
import type { SendCounts } from './publisher.ts';
import type { Meter, MeteredEndpoint } from '../../spi/endpoint-meters.ts';

const EXCHANGE_TYPES = ['direct', 'fanout', 'topic', 'headers'] as const;

export const amqpOptions = {
  url: { type: 'string', description: 'broker URL for this endpoint; default the component url, else AMQP_URL, else amqp://localhost' },
  // consumer
  prefetch: { type: 'integer', default: 10, min: 1, description: 'unacknowledged messages in flight, handled concurrently' },
  maxRedeliveries: {
    type: 'integer',
    min: 0,
    description: 'deliveries after a failure before the message is rejected; default 0 with a dead-letter queue/exchange (straight there), else 5 (then dropped, logged)',
  },
  deadLetterQueue: { type: 'string', description: 'queue receiving rejected messages; declared and bound for you' },
  deadLetterExchange: { type: 'string', description: 'exchange receiving rejected messages; default the default exchange' },
  deadLetterExchangeType: { type: 'enum', values: EXCHANGE_TYPES, default: 'direct', description: 'type of the dead-letter exchange when declared' },
  deadLetterRoutingKey: { type: 'string', description: 'routing key of dead-lettered messages; default the dead-letter queue name' },
  queueType: { type: 'enum', values: ['classic', 'quorum'], default: 'classic', description: 'quorum queues count deliveries on the broker' },
  durable: { type: 'boolean', default: true, description: 'queue/exchange survives a broker restart' },
  autoDelete: { type: 'boolean', default: false, description: 'queue/exchange is deleted when its last consumer/binding goes' },
  // producer
  routingKey: { type: 'string', default: '', description: 'exchange producer: routing key (the CamelRabbitmqRoutingKey header overrides it)' },
  exchangeType: { type: 'enum', values: EXCHANGE_TYPES, default: 'direct', description: 'exchange producer: type used to declare the exchange' },
  contentType: { type: 'string', description: 'content type sent; default from the body: text/plain, application/json or application/octet-stream' },
  persistent: { type: 'boolean', default: true, description: 'messages survive a broker restart' },
  mandatory: { type: 'boolean', default: true, description: 'an unroutable message fails the send instead of vanishing' },
  sendTimeout: { type: 'duration', min: 1, description: 'how long a send waits for a (re)connection and the confirm; default 30s' },
  declare: { type: 'boolean', default: true, description: 'declare the queue/exchange (producers only when it is absent)' },
} as const;

export type AmqpOptions = OptionValues<typeof amqpOptions>;

export interface AmqpComponentConfig extends Partial<Omit<BrokerOptions, 'url' | 'logger'>> {
  /** The broker; default AMQP_URL, else amqp://localhost. */
  url?: string;
}

/**
 * `amqp:queue:<name>` (consumer and producer) and `amqp:exchange:<name>?routingKey=…&exchangeType=…`
 * (producer) on RabbitMQ. One connection per broker URL for the whole context, opened when the first
 * endpoint starts and closed when the last stops.
 */
export class AmqpComponent implements Component {
  readonly #config: AmqpComponentConfig;
  #registry: BrokerRegistry | undefined;

  constructor(config: AmqpComponentConfig = {}) {
    this.#config = config;
  }

  /** The registry of connections; created with the first endpoint's context logger. */
  registry(context: Context): BrokerRegistry {
    const { url: _url, ...defaults } = this.#config;
    this.#registry ??= new BrokerRegistry({ ...defaults, logger: context.logger });
    return this.#registry;
  }

  createEndpoint(uri: ParsedUri, context: Context): Endpoint {
    const colon = uri.path.indexOf(':');
    const kind = colon < 0 ? uri.path : uri.path.slice(0, colon);
    const name = colon < 0 ? '' : uri.path.slice(colon + 1);
    if (kind !== 'queue' && kind !== 'exchange') {
      throw new ResolveEndpointError(uri.masked, `expected amqp:queue:<name> or amqp:exchange:<name>, got amqp:${uri.path}`);
    }
    if (name === '' && kind === 'queue') throw new ResolveEndpointError(uri.masked, 'the queue needs a name: amqp:queue:<name>');
    const options = resolveOptions(uri.masked, 'amqp', amqpOptions, uri.params);
    let url: string;
    try {
      url = resolveBrokerUrl(options.url ?? this.#config.url);
    } catch (err) {
      throw new ResolveEndpointError(uri.masked, (err as Error).message);
    }
    if (options.deadLetterExchange === undefined && options.deadLetterQueue === undefined && options.deadLetterRoutingKey !== undefined) {
      throw new ResolveEndpointError(uri.masked, 'deadLetterRoutingKey needs deadLetterQueue or deadLetterExchange');
    }
    return new AmqpEndpoint(uri, context, { kind, name, url, options, registry: this.registry(context) });
  }

  async stop(): Promise<void> {
    await this.#registry?.closeAll();
  }
}

interface EndpointInit {
  kind: 'queue' | 'exchange';
  name: string;
  url: string;
  options: AmqpOptions;
  registry: BrokerRegistry;
}

export class AmqpEndpoint extends EndpointSupport implements MeteredEndpoint {
  readonly kind: 'queue' | 'exchange';
  readonly name: string;
  readonly url: string;
  readonly options: AmqpOptions;
  readonly registry: BrokerRegistry;
  /** What this endpoint's producers sent came to, for /metrics. */
  readonly counts: SendCounts = { published: 0, confirmed: 0, nacked: 0, failed: 0 };
  readonly meters: readonly Meter[] = [
    this.#counter('published', 'Messages an amqp endpoint handed to RabbitMQ (a message sent again after a reconnection counts once)'),
    this.#counter('confirmed', 'Messages RabbitMQ confirmed for an amqp endpoint (acked, and routed when mandatory)'),
    this.#counter('nacked', 'Messages RabbitMQ refused (nacked) for an amqp endpoint: a full queue with overflow=reject-publish, or a store failure'),
    this.#counter('failed', 'Messages of an amqp endpoint whose send failed for good: nacked, unroutable, not confirmed within sendTimeout, or the connection closed'),
  ];

  constructor(parsed: ParsedUri, context: Context, init: EndpointInit) {
    super(parsed, context);
    this.kind = init.kind;
    this.name = init.name;
    this.url = init.url;
    this.options = init.options;
    this.registry = init.registry;
  }

  #counter(what: keyof SendCounts, help: string): Meter {
    return { name: `dromedary_amqp_messages_${what}_total`, help, label: what, type: 'counter', read: () => this.counts[what] };
  }

  get queueSpec(): QueueSpec {
    const o = this.options;
    return {
      name: this.name,
      durable: o.durable,
      autoDelete: o.autoDelete,
      queueType: o.queueType,
      deadLetterQueue: o.deadLetterQueue,
      deadLetterExchange: o.deadLetterExchange,
      deadLetterExchangeType: o.deadLetterExchangeType,
      deadLetterRoutingKey: o.deadLetterRoutingKey,
    };
  }

  override createConsumer(processor: Processor): AmqpConsumer {
    if (this.kind !== 'queue') {
      throw new ResolveEndpointError(this.maskedUri, 'an exchange cannot be consumed directly: consume a queue bound to it, amqp:queue:<name>');
    }
    return new AmqpConsumer(this, processor);
  }

  override createProducer(): AmqpProducer {
    return new AmqpProducer(this);
  }
}

/** Consumes the queue; each message becomes an exchange, acked when the route succeeds and nacked when it fails. */
export class AmqpConsumer extends ConsumerSupport<AmqpEndpoint> {
  #connection: BrokerConnection | undefined;
  #subscriber: Subscriber | undefined;

  protected async doStart(): Promise<void> {
    const { options } = this.endpoint;
    const hasDlx = options.deadLetterQueue !== undefined || options.deadLetterExchange !== undefined;
    const connection = await this.endpoint.registry.acquire(this.endpoint.url);
    this.#connection = connection;
    try {
      this.#subscriber = new Subscriber(connection, (d) => this.#handle(d), {
        queue: this.endpoint.queueSpec,
        prefetch: options.prefetch,
        maxRedeliveries: options.maxRedeliveries ?? (hasDlx ? 0 : 5),
      });
      await this.#subscriber.start();
    } catch (err) {
      this.#subscriber = undefined;
      this.#connection = undefined;
      await this.endpoint.registry.release(connection);
      throw err;
    }
  }

  /**
   * Returns nothing when the route completed synchronously, so the subscriber acks at once, as a
   * hand-written consumer would; otherwise a promise that settles when the route has finished.
   */
  #handle(delivery: Delivery): void | Promise<void> {
    const { properties, fields } = delivery;
    const exchange = new Exchange({ fromEndpoint: this.endpoint.maskedUri, body: decodeBody(delivery.content, properties.contentType), headers: incomingHeaders(properties) });
    exchange.message.messageId = properties.messageId;
    const h = exchange.headers;
    if (properties.messageId !== undefined) h.set(AmqpHeader.MessageId, properties.messageId);
    if (properties.contentType !== undefined) h.set(AmqpHeader.ContentType, properties.contentType);
    h.set(AmqpHeader.RoutingKey, fields.routingKey);
    h.set(AmqpHeader.ExchangeName, fields.exchange);
    h.set(AmqpHeader.DeliveryTag, fields.deliveryTag);
    h.set(AmqpHeader.Redelivered, fields.redelivered);
    h.set(AmqpHeader.DeliveryCount, delivery.deliveryCount);
    const result = this.processor(exchange);
    if (isPromise(result)) return result.then(() => rethrow(exchange));
    rethrow(exchange);
  }

  protected async doStop(): Promise<void> {
    await this.#subscriber?.stop();
    this.#subscriber = undefined;
    if (this.#connection) await this.endpoint.registry.release(this.#connection);
    this.#connection = undefined;
  }
}

/** The engine records a failure on the exchange; throwing it makes the subscriber nack the message. */
function rethrow(exchange: Exchange): void {
  if (exchange.exception) throw exchange.exception;
}

/** Sends on the connection's confirm channel; process() resolves when the broker has confirmed the message. */
export class AmqpProducer extends ProducerSupport<AmqpEndpoint> {
  #connection: BrokerConnection | undefined;

  protected override async doStart(): Promise<void> {
    const { kind, name, options } = this.endpoint;
    const connection = await this.endpoint.registry.acquire(this.endpoint.url);
    this.#connection = connection;
    try {
      if (options.declare) {
        if (kind === 'queue') await connection.declare(ensureQueueDeclarations(this.endpoint.queueSpec));
        else await connection.declare([exchangeDeclaration({ name, type: options.exchangeType, durable: options.durable, autoDelete: options.autoDelete })]);
      }
    } catch (err) {
      this.#connection = undefined;
      await this.endpoint.registry.release(connection);
      throw err;
    }
  }

  process(exchange: Exchange): Promise<void> {
    const connection = this.#connection;
    if (!connection) return Promise.reject(new ResolveEndpointError(this.endpoint.maskedUri, 'the producer is not started'));
    const { kind, name, options } = this.endpoint;
    const { content, contentType } = encodeMessageBody(exchange.body, options.contentType);
    const keyHeader = exchange.headers.get(AmqpHeader.RoutingKey);
    const routingKey = kind === 'queue' ? name : keyHeader !== undefined ? String(keyHeader) : options.routingKey;
    return connection.publisher().publish(kind === 'queue' ? '' : name, routingKey, content, {
      messageId: messageIdOf(exchange),
      contentType,
      headers: amqpHeaders(exchange),
      persistent: options.persistent,
      mandatory: options.mandatory,
      timeout: options.sendTimeout,
      counts: this.endpoint.counts,
    });
  }

  protected override async doStop(): Promise<void> {
    if (this.#connection) await this.endpoint.registry.release(this.#connection);
    this.#connection = undefined;
  }
}
