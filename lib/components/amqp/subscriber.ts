import { EventEmitter } from 'node:events';
import type { Channel, ChannelModel, ConsumeMessage, MessageFields, MessageProperties } from 'amqplib';
import { isPromise } from '../../spi/processor.ts';
import { formatDuration } from '../../uri/duration.ts';
import type { BrokerConnection } from './broker.ts';
import { describe } from './errors.ts';
import { deadLetterTarget, queueDeclarations, type QueueSpec } from './topology.ts';

/** The header in which failed deliveries are counted on classic queues (see Subscriber). */
export const DELIVERY_COUNT_HEADER = 'x-dromedary-delivery-count';

export interface SubscribeOptions {
  queue: QueueSpec;
  /** Unacknowledged deliveries the broker sends ahead; also the number handled at once. Default 10. */
  prefetch?: number;
  /**
   * How many times a failed message is delivered again before it is rejected (to the dead-letter
   * exchange when the queue has one, otherwise dropped with an error log). Default 5; 0 rejects
   * on the first failure.
   */
  maxRedeliveries?: number;
  /** How long stop() waits for deliveries in progress. Default 30s. */
  stopTimeout?: number;
}

export interface Delivery {
  readonly content: Buffer;
  readonly properties: MessageProperties;
  readonly fields: MessageFields;
  /** 1 on the first delivery; counts failed deliveries before this one (our header or quorum's). */
  readonly deliveryCount: number;
}

/** A handler that returns (or resolves) succeeded; one that throws (or rejects) failed. */
export type DeliveryHandler = (delivery: Delivery) => void | Promise<void>;

export type Outcome = 'acked' | 'requeued' | 'dead-lettered' | 'dropped' | 'channel-lost';

interface ConsumeState {
  readonly ch: Channel;
  readonly model: ChannelModel;
  closed: boolean;
  consumerTag: string | undefined;
}

/**
 * Consumes one queue on its own channel with manual acknowledgement.
 *
 * Redelivery limit: a classic queue does not count `nack(requeue)` deliveries, so a failed message
 * is re-published to the tail of its queue with DELIVERY_COUNT_HEADER incremented (through the
 * confirm channel) and the original acked; a quorum queue counts by itself (`x-delivery-count`),
 * so it is nacked with requeue. Once maxRedeliveries is used up it is nacked without requeue,
 * which dead-letters it when the queue has a dead-letter exchange or queue.
 *
 * After a reconnection ('connected' on the BrokerConnection, topology already re-declared) it
 * opens a new channel and consumes again. Deliveries from a dead channel are not acked on the new
 * one (that would close it with PRECONDITION_FAILED): the broker redelivers them.
 *
 * Emits 'settled' (outcome, delivery, error?) after each delivery.
 */
export class Subscriber extends EventEmitter {
  readonly #conn: BrokerConnection;
  readonly #handler: DeliveryHandler;
  readonly #spec: QueueSpec;
  readonly #prefetch: number;
  readonly #maxRedeliveries: number;
  readonly #stopTimeout: number;
  #state: ConsumeState | undefined;
  #subscribing: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #retries = 0;
  #stopping = false;
  #inflight = 0;
  #idle: (() => void) | undefined;
  readonly #onConnected = () => this.#resubscribe('reconnected');

  constructor(conn: BrokerConnection, handler: DeliveryHandler, options: SubscribeOptions) {
    super();
    this.#conn = conn;
    this.#handler = handler;
    this.#spec = options.queue;
    this.#prefetch = options.prefetch ?? 10;
    this.#maxRedeliveries = options.maxRedeliveries ?? 5;
    this.#stopTimeout = options.stopTimeout ?? 30_000;
    if (!Number.isInteger(this.#prefetch) || this.#prefetch < 1) throw new RangeError(`prefetch must be a positive integer, got ${this.#prefetch}`);
    if (!Number.isInteger(this.#maxRedeliveries) || this.#maxRedeliveries < 0) {
      throw new RangeError(`maxRedeliveries must be a non-negative integer, got ${this.#maxRedeliveries}`);
    }
  }

  get queue(): string {
    return this.#spec.name;
  }

  /** Number of deliveries being handled right now. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Declares the queue (and dead-lettering) and starts consuming; declaration errors are thrown here. */
  async start(): Promise<void> {
    this.#stopping = false;
    await this.#conn.declare(queueDeclarations(this.#spec));
    this.#conn.on('connected', this.#onConnected);
    await this.#subscribe();
    // A safety net for reconnection races (a 'connected' event that arrives while an earlier
    // resubscription is still failing): while connected, a subscriber must always be consuming.
    this.#watchdog = setInterval(() => {
      const idle = !this.#state || this.#state.closed || this.#state.consumerTag === undefined;
      if (!this.#stopping && this.#conn.isConnected && idle && !this.#subscribing && !this.#retryTimer) this.#resubscribe('not consuming while connected');
    }, 1000);
    this.#watchdog.unref();
  }

  #subscribe(): Promise<void> {
    this.#subscribing ??= (async () => {
      try {
        const model = await this.#conn.connection();
        if (this.#stopping) return;
        if (this.#state && !this.#state.closed && this.#state.model === model) return;
        const ch = await model.createChannel();
        const state: ConsumeState = { ch, model, closed: false, consumerTag: undefined };
        ch.on('error', (err: Error) => this.#conn.logger.warn(`RabbitMQ closed the channel consuming '${this.queue}': ${describe(err)}`));
        ch.on('close', () => {
          state.closed = true;
          // Connection-level losses are handled by 'connected'; a channel-only loss needs a retry here.
          if (!this.#stopping && this.#state === state && this.#conn.isConnected) this.#resubscribe('channel closed');
        });
        this.#state = state;
        // Re-asserting on the consuming channel brings back a queue deleted under us.
        for (const d of queueDeclarations(this.#spec)) await d.apply(ch, () => model.createChannel());
        await ch.prefetch(this.#prefetch);
        const { consumerTag } = await ch.consume(this.queue, (msg) => this.#onMessage(state, msg), { noAck: false });
        state.consumerTag = consumerTag;
        this.#retries = 0;
        this.#conn.logger.debug(`Consuming '${this.queue}' with prefetch ${this.#prefetch}`);
      } finally {
        this.#subscribing = undefined;
      }
    })();
    return this.#subscribing;
  }

  #resubscribe(why: string): void {
    if (this.#stopping || this.#retryTimer) return;
    const attempt = this.#retries++;
    const delay = attempt === 0 ? 0 : Math.min(5000, 100 * 2 ** attempt);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#subscribe().then(
        () => {
          if (!this.#stopping) this.#conn.logger.info(`Resumed consuming '${this.queue}' (${why})`);
        },
        (err: unknown) => {
          this.#conn.logger.warn(`Resuming the consumer of '${this.queue}' failed (${describe(err)}); retrying`);
          if (this.#conn.isConnected) this.#resubscribe(why);
        },
      );
    }, delay);
  }

  #onMessage(state: ConsumeState, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker: the queue was deleted or its node went away.
      state.consumerTag = undefined;
      this.#conn.logger.warn(`RabbitMQ cancelled the consumer of '${this.queue}' (queue deleted?); declaring it again and resuming`);
      if (!this.#stopping) {
        this.#state = undefined;
        void state.ch.close().catch(() => undefined);
        this.#resubscribe('consumer cancelled by the broker');
      }
      return;
    }
    const delivery: Delivery = { content: msg.content, properties: msg.properties, fields: msg.fields, deliveryCount: deliveryCount(msg) };
    this.#inflight++;
    let result: void | Promise<void>;
    try {
      result = this.#handler(delivery);
    } catch (err) {
      this.#settle(this.#fail(state, msg, delivery, err), delivery, err);
      return;
    }
    if (isPromise(result)) {
      result.then(
        () => this.#settle(this.#ack(state, msg), delivery),
        (err: unknown) => this.#settle(this.#fail(state, msg, delivery, err), delivery, err),
      );
    } else {
      this.#settle(this.#ack(state, msg), delivery);
    }
  }

  #settle(outcome: Outcome | Promise<Outcome>, delivery: Delivery, err?: unknown): void {
    if (typeof outcome === 'string') this.#settled(outcome, delivery, err);
    else outcome.then((o) => this.#settled(o, delivery, err), () => this.#settled('channel-lost', delivery, err));
  }

  #settled(outcome: Outcome, delivery: Delivery, err: unknown): void {
    this.#inflight--;
    if (this.#inflight === 0) this.#idle?.();
    this.emit('settled', outcome, delivery, err);
  }

  #ack(state: ConsumeState, msg: ConsumeMessage): Outcome {
    if (state.closed) return this.#lost(msg);
    state.ch.ack(msg);
    return 'acked';
  }

  #lost(msg: ConsumeMessage): Outcome {
    this.#conn.logger.debug(`Message ${msg.properties.messageId ?? msg.fields.deliveryTag} from '${this.queue}' finished after its channel closed; RabbitMQ redelivers it`);
    return 'channel-lost';
  }

  async #fail(state: ConsumeState, msg: ConsumeMessage, delivery: Delivery, err: unknown): Promise<Outcome> {
    if (state.closed) return this.#lost(msg);
    const id = msg.properties.messageId ?? `#${msg.fields.deliveryTag}`;
    const failures = delivery.deliveryCount;
    if (failures > this.#maxRedeliveries) {
      state.ch.nack(msg, false, false);
      const dlx = deadLetterTarget(this.#spec);
      if (dlx) {
        this.#conn.logger.warn(`Message ${id} from '${this.queue}' failed ${failures} time(s) (${describe(err)}); dead-lettered`);
        return 'dead-lettered';
      }
      this.#conn.logger.error(
        `Message ${id} from '${this.queue}' failed ${failures} time(s) and was DROPPED (${describe(err)}); ` +
          'configure deadLetterQueue (or deadLetterExchange) on the queue to keep such messages',
      );
      return 'dropped';
    }
    if (this.#spec.queueType === 'quorum') {
      state.ch.nack(msg, false, true);
      return 'requeued';
    }
    try {
      const headers = { ...msg.properties.headers, [DELIVERY_COUNT_HEADER]: failures };
      await this.#conn.publisher().publish('', this.queue, msg.content, { ...publishProps(msg.properties), headers, mandatory: true });
    } catch (pubErr) {
      // Could not re-publish: requeue the original instead (its failure count is then not raised).
      this.#conn.logger.warn(`Re-queuing message ${id} on '${this.queue}' with a delivery count failed (${describe(pubErr)}); nacking it with requeue`);
      if (state.closed) return this.#lost(msg);
      state.ch.nack(msg, false, true);
      return 'requeued';
    }
    if (state.closed) {
      // The copy is stored and the original comes back too: one duplicate rather than a loss.
      return this.#lost(msg);
    }
    state.ch.ack(msg);
    return 'requeued';
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#conn.off('connected', this.#onConnected);
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    await this.#subscribing?.catch(() => undefined);
    const state = this.#state;
    this.#state = undefined;
    if (!state || state.closed) return;
    if (state.consumerTag) await state.ch.cancel(state.consumerTag).catch(() => undefined);
    if (this.#inflight > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.#stopTimeout);
      });
      const late = await Promise.race([idle.then(() => false), timedOut]);
      clearTimeout(timer);
      this.#idle = undefined;
      if (late) {
        this.#conn.logger.warn(`Stopped consuming '${this.queue}' with ${this.#inflight} message(s) still in progress after ${formatDuration(this.#stopTimeout)}; RabbitMQ redelivers them`);
      }
    }
    await state.ch.close().catch(() => undefined);
  }
}

/** Failed deliveries so far + 1: our header on classic queues, the broker's on quorum queues. */
function deliveryCount(msg: ConsumeMessage): number {
  const headers = msg.properties.headers ?? {};
  const ours = Number(headers[DELIVERY_COUNT_HEADER] ?? 0);
  const quorum = Number(headers['x-delivery-count'] ?? 0);
  const prior = Math.max(Number.isFinite(ours) ? ours : 0, Number.isFinite(quorum) ? quorum : 0);
  return prior + 1;
}

/** The properties worth keeping on a re-published copy (amqplib's names differ from AMQP's). */
function publishProps(p: MessageProperties): Record<string, unknown> {
  const out: Record<string, unknown> = {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    correlationId: p.correlationId,
    replyTo: p.replyTo,
    expiration: p.expiration,
    messageId: p.messageId,
    timestamp: p.timestamp,
    type: p.type,
    userId: p.userId,
    appId: p.appId,
    priority: p.priority,
    persistent: p.deliveryMode === undefined ? true : p.deliveryMode === 2,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}
