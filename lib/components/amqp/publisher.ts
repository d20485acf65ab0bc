import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Options } from 'amqplib';
import { formatDuration } from '../../uri/duration.ts';
import type { BrokerConnection } from './broker.ts';
import { AmqpSendError, describe } from './errors.ts';

export interface PublishOptions extends Options.Publish {
  /** Set when absent (a random UUID), so consumers can de-duplicate and tests can count. */
  messageId?: string;
  /** Broker returns unroutable messages and the send fails (default true: nothing vanishes silently). */
  mandatory?: boolean;
  /** Overrides the connection's sendTimeout for this send. */
  timeout?: number;
}

/** A send that may be repeated on a new channel: the old one died with the connection. */
class Retryable extends Error {}

interface ChannelState {
  readonly ch: ConfirmChannel;
  closed: boolean;
  /** Set when the broker closed the channel for a reason of its own (404, 406...): not retried. */
  serverError: Error | undefined;
  drain: Promise<void> | undefined;
  /** messageIds the broker returned as unroutable; their confirm then fails the send. */
  readonly returned: Set<string>;
}

/**
 * Publishes on one confirm channel per connection. `publish()` resolves only on the broker's ack.
 * Persistent by default. When the socket buffer is full (`publish()` returned false) later sends
 * wait for 'drain'. A send whose channel dies with the connection is published again after the
 * reconnection (at-least-once: a duplicate is possible, a loss is not); if no connection comes back
 * within the timeout, or the broker nacks, returns or rejects it, the send fails with AmqpSendError.
 */
export class Publisher {
  readonly #conn: BrokerConnection;
  #state: ChannelState | undefined;
  #opening: Promise<ChannelState> | undefined;
  #closed = false;
  /** Counters for diagnostics and tests: how often sends had to wait for 'drain', or were re-sent. */
  readonly stats = { drainWaits: 0, resends: 0 };

  constructor(conn: BrokerConnection) {
    this.#conn = conn;
  }

  async publish(exchange: string, routingKey: string, content: Buffer, options: PublishOptions = {}): Promise<void> {
    const { timeout: t, mandatory, ...rest } = options;
    const timeout = t ?? this.#conn.sendTimeout;
    const props: Options.Publish = { persistent: true, ...rest, mandatory: mandatory ?? true };
    props.messageId ??= randomUUID();
    const deadline = performance.now() + timeout;
    const where = exchange === '' ? `queue '${routingKey}'` : `exchange '${exchange}' (routing key '${routingKey}')`;
    let failures = 0;
    let lastError: unknown;
    for (;;) {
      if (this.#closed || this.#conn.state === 'closed') {
        throw new AmqpSendError(`Cannot send message ${props.messageId} to ${where}: the connection to ${this.#conn.maskedUrl} is closed`);
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new AmqpSendError(
          `Message ${props.messageId} to ${where} was not confirmed by RabbitMQ at ${this.#conn.maskedUrl} within ${formatDuration(timeout)}` +
            (lastError ? ` (last error: ${describe(lastError)})` : '') +
            '; it may or may not have been stored, so the route should retry it',
          { cause: lastError },
        );
      }
      try {
        const state = this.#state && !this.#state.closed ? this.#state : await this.#open(left);
        await withDeadline(this.#publishOnce(state, exchange, routingKey, content, props), left);
        return;
      } catch (err) {
        if (err instanceof AmqpSendError) throw err;
        lastError = err;
        failures++;
        this.stats.resends++;
        if (failures === 1) this.#conn.logger.debug(`Re-sending message ${props.messageId} to ${where} after: ${describe(err)}`);
        // The connection may not have noticed yet that its socket is gone: back off a little.
        if (failures > 1) await new Promise((r) => setTimeout(r, Math.min(500, 10 * 2 ** failures)));
      }
    }
  }

  #publishOnce(state: ChannelState, exchange: string, routingKey: string, content: Buffer, props: Options.Publish): Promise<void> {
    if (state.drain) return state.drain.then(() => this.#publishOnce(state, exchange, routingKey, content, props));
    return new Promise<void>((resolve, reject) => {
      const messageId = props.messageId!;
      let ok: boolean;
      try {
        ok = state.ch.publish(exchange, routingKey, content, props, (err: unknown) => {
          if (err) return reject(this.#classify(state, err, messageId, exchange, routingKey));
          if (state.returned.delete(messageId)) {
            const where = exchange === '' ? `no queue named '${routingKey}'` : `exchange '${exchange}' has no queue bound for routing key '${routingKey}'`;
            return reject(new AmqpSendError(`Message ${messageId} is unroutable: ${where}; declare and bind a queue, or set mandatory=false to allow dropping`));
          }
          resolve();
        });
      } catch (err) {
        // amqplib throws synchronously once the channel is closed.
        reject(new Retryable(describe(err)));
        return;
      }
      if (!ok && !state.drain) {
        this.stats.drainWaits++;
        state.drain = new Promise<void>((res, rej) => {
          const onDrain = () => {
            state.ch.off('close', onClose);
            state.drain = undefined;
            res();
          };
          const onClose = () => {
            state.ch.off('drain', onDrain);
            state.drain = undefined;
            rej(new Retryable('channel closed while waiting for drain'));
          };
          state.ch.once('drain', onDrain);
          state.ch.once('close', onClose);
        });
        state.drain.catch(() => undefined);
      }
    });
  }

  #classify(state: ChannelState, err: unknown, messageId: string, exchange: string, routingKey: string): Error {
    if (state.serverError) {
      return new AmqpSendError(`RabbitMQ closed the publishing channel while sending message ${messageId} to exchange '${exchange}' with key '${routingKey}': ${describe(state.serverError)}`, {
        cause: state.serverError,
      });
    }
    if (err instanceof Error && err.message === 'message nacked') {
      return new AmqpSendError(`RabbitMQ refused (nacked) message ${messageId}: the queue may be full with overflow=reject-publish, or the broker failed to store it`);
    }
    return new Retryable(describe(err));
  }

  #open(timeout: number): Promise<ChannelState> {
    this.#opening ??= (async () => {
      try {
        const model = await this.#conn.connection(timeout);
        const ch = await model.createConfirmChannel();
        const state: ChannelState = { ch, closed: false, serverError: undefined, drain: undefined, returned: new Set() };
        ch.on('error', (err: Error) => {
          state.serverError = err;
          this.#conn.logger.warn(`RabbitMQ closed the publishing channel: ${describe(err)}`);
        });
        ch.on('close', () => {
          state.closed = true;
          if (this.#state === state) this.#state = undefined;
        });
        ch.on('return', (msg: { properties: { messageId?: string } }) => {
          if (msg.properties.messageId) state.returned.add(msg.properties.messageId);
        });
        this.#state = state;
        return state;
      } finally {
        this.#opening = undefined;
      }
    })();
    return this.#opening;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const state = this.#state;
    this.#state = undefined;
    if (state && !state.closed) {
      // Let confirms in flight arrive before closing, so their senders hear the outcome.
      await state.ch.waitForConfirms().catch(() => undefined);
      await state.ch.close().catch(() => undefined);
    }
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Retryable(`no confirm within ${formatDuration(Math.round(ms))}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
