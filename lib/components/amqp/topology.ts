import type { Channel, Options } from 'amqplib';
import { AmqpTopologyError, describe } from './errors.ts';

export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';
export type QueueType = 'classic' | 'quorum';

export interface ExchangeSpec {
  name: string;
  type: ExchangeType;
  /** Default true: survives a broker restart. */
  durable?: boolean;
  autoDelete?: boolean;
}

export interface QueueSpec {
  name: string;
  /** Default true. A quorum queue is always durable. */
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** Default classic. Quorum queues count deliveries themselves (the `x-delivery-count` header). */
  queueType?: QueueType;
  /**
   * Where rejected messages go. With only `deadLetterQueue` set, the default exchange is used
   * (routing key = the dead-letter queue's name), so no extra exchange is needed.
   */
  deadLetterExchange?: string;
  /** Type of the dead-letter exchange when we declare it; default direct. */
  deadLetterExchangeType?: ExchangeType;
  /** Routing key of dead-lettered messages; default the dead-letter queue's name, else this queue's name. */
  deadLetterRoutingKey?: string;
  /** Declared durable, and bound to the dead-letter exchange with the dead-letter routing key. */
  deadLetterQueue?: string;
  /** Quorum queues only: the broker dead-letters (or drops) a message after this many deliveries. */
  deliveryLimit?: number;
  messageTtl?: number;
  maxLength?: number;
}

/**
 * One idempotent step of topology, replayed on every (re)connection. `key` de-duplicates. A step
 * that must probe (a passive check closes its channel when it fails) opens its own with `open`.
 */
export interface Declaration {
  readonly key: string;
  readonly describe: string;
  apply(channel: Channel, open: () => Promise<Channel>): Promise<void>;
}

/**
 * For producers: declares the queue only when it does not exist yet. A consumer of the same queue
 * usually declares it with dead-letter or quorum arguments the producer's URI does not repeat, and
 * declaring it again without them would fail with PRECONDITION_FAILED.
 */
export function ensureQueueDeclarations(spec: QueueSpec): Declaration[] {
  const full = queueDeclarations(spec);
  return [
    {
      key: `ensure:${full.map((d) => d.key).join('|')}`,
      describe: `queue '${spec.name}' (declared if absent)`,
      apply: async (ch, open) => {
        const probe = await open();
        probe.on('error', () => undefined);
        const exists = await probe.checkQueue(spec.name).then(
          () => true,
          () => false,
        );
        if (exists) await probe.close().catch(() => undefined);
        else for (const d of full) await d.apply(ch, open);
      },
    },
  ];
}

export function exchangeDeclaration(spec: ExchangeSpec): Declaration {
  if (spec.name === '' || spec.name.startsWith('amq.')) {
    // The default and amq.* exchanges exist already and cannot be declared with other arguments.
    return { key: `exchange:${spec.name}`, describe: `exchange '${spec.name}'`, apply: async () => undefined };
  }
  const options: Options.AssertExchange = { durable: spec.durable ?? true, autoDelete: spec.autoDelete ?? false };
  return {
    key: `exchange:${spec.name}:${JSON.stringify([spec.type, options])}`,
    describe: `${spec.type} exchange '${spec.name}'`,
    apply: async (ch) => {
      await ch.assertExchange(spec.name, spec.type, options).catch((err: unknown) => {
        throw topologyError(`${spec.type} exchange '${spec.name}'`, err, 'use the same exchangeType everywhere this exchange is used, or delete the exchange');
      });
    },
  };
}

export function queueArguments(spec: QueueSpec): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  if (spec.queueType === 'quorum') args['x-queue-type'] = 'quorum';
  const dlx = deadLetterTarget(spec);
  if (dlx) {
    args['x-dead-letter-exchange'] = dlx.exchange;
    args['x-dead-letter-routing-key'] = dlx.routingKey;
  }
  if (spec.deliveryLimit !== undefined) args['x-delivery-limit'] = spec.deliveryLimit;
  if (spec.messageTtl !== undefined) args['x-message-ttl'] = spec.messageTtl;
  if (spec.maxLength !== undefined) args['x-max-length'] = spec.maxLength;
  return args;
}

/** Where a queue's rejected messages are routed, or undefined when it has no dead-lettering. */
export function deadLetterTarget(spec: QueueSpec): { exchange: string; routingKey: string } | undefined {
  if (spec.deadLetterExchange === undefined && spec.deadLetterQueue === undefined) return undefined;
  const exchange = spec.deadLetterExchange ?? '';
  const routingKey = spec.deadLetterRoutingKey ?? spec.deadLetterQueue ?? spec.name;
  return { exchange, routingKey };
}

/** The queue, and its dead-letter exchange, queue and binding when configured. */
export function queueDeclarations(spec: QueueSpec): Declaration[] {
  if (!spec.name) throw new AmqpTopologyError('a queue name is required, e.g. amqp:queue:orders');
  if (spec.deliveryLimit !== undefined && spec.queueType !== 'quorum') {
    throw new AmqpTopologyError(`queue '${spec.name}': deliveryLimit needs queueType=quorum (classic queues do not count deliveries)`);
  }
  const out: Declaration[] = [];
  const dlx = deadLetterTarget(spec);
  if (dlx && dlx.exchange !== '') out.push(exchangeDeclaration({ name: dlx.exchange, type: spec.deadLetterExchangeType ?? 'direct' }));
  if (spec.deadLetterQueue) {
    const dlq = spec.deadLetterQueue;
    out.push(plainQueue({ name: dlq, durable: true }));
    if (dlx && dlx.exchange !== '') {
      out.push({
        key: `bind:${dlq}:${dlx.exchange}:${dlx.routingKey}`,
        describe: `binding of queue '${dlq}' to exchange '${dlx.exchange}'`,
        apply: async (ch) => {
          await ch.bindQueue(dlq, dlx.exchange, dlx.routingKey);
        },
      });
    }
  }
  out.push(plainQueue(spec));
  return out;
}

export function bindingDeclaration(queue: string, exchange: string, routingKey: string): Declaration {
  return {
    key: `bind:${queue}:${exchange}:${routingKey}`,
    describe: `binding of queue '${queue}' to exchange '${exchange}' with key '${routingKey}'`,
    apply: async (ch) => {
      await ch.bindQueue(queue, exchange, routingKey);
    },
  };
}

function plainQueue(spec: QueueSpec): Declaration {
  const options: Options.AssertQueue = {
    durable: spec.queueType === 'quorum' ? true : (spec.durable ?? true),
    exclusive: spec.exclusive ?? false,
    autoDelete: spec.autoDelete ?? false,
    arguments: queueArguments(spec),
  };
  return {
    key: `queue:${spec.name}:${JSON.stringify(options)}`,
    describe: `queue '${spec.name}'`,
    apply: async (ch) => {
      await ch.assertQueue(spec.name, options).catch((err: unknown) => {
        throw topologyError(
          `queue '${spec.name}' with ${JSON.stringify(options)}`,
          err,
          'give every endpoint of this queue the same queueType and dead-letter options, or delete the queue so it is declared afresh',
        );
      });
    },
  };
}

function topologyError(what: string, err: unknown, fix: string): AmqpTopologyError {
  const text = describe(err);
  if (/PRECONDITION[_-]FAILED|\b406\b/.test(text)) {
    return new AmqpTopologyError(`Cannot declare ${what}: it already exists with different arguments (${text}); ${fix}`, { cause: err });
  }
  return new AmqpTopologyError(`Cannot declare ${what}: ${text}`, { cause: err });
}
