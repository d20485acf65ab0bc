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
  /** Where this send's outcome is counted: its endpoint's counts, which /metrics reads. */
  counts?: SendCounts;
}

/** What an endpoint's sends came to; `published` minus the others is what awaits the broker's answer. */
export interface SendCounts {
  /** Sends handed to the publisher (a send published again after a reconnection counts once). */
  published: number;
  /** Sends the broker confirmed (acked, and routed when mandatory). */
  confirmed: number;
  /** Sends the broker refused with a nack (a full queue with overflow=reject-publish, a store failure). */
  nacked: number;
  /** Sends that failed for good, for any reason: nacked, unroutable, not confirmed in time, connection closed. */
  failed: number;
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

/** One send in progress, kept in one object so the common case allocates little. */
interface Send {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly props: Options.Publish & { messageId: string };
  readonly timeout: number;
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly counts: SendCounts | undefined;
  failures: number;
  lastError: unknown;
}

/**
 * Publishes on one confirm channel per connection. `publish()` resolves only on the broker's ack.
 * Persistent by default. When the socket buffer is full (`publish()` returned false) later sends
 * wait for 'drain'. A send whose channel dies with the connection is published again after the
 * reconnection (at-least-once: a duplicate is possible, a loss is not); if no connection comes back
 * within the timeout, or the broker nacks, returns or rejects it, the send fails with AmqpSendError.
 *
 * The common case (channel open, no drain pending) costs one promise and one timer per send: this
 * is the hot path of every `to(amqp:...)`.
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

  publish(exchange: string, routingKey: string, content: Buffer, options: PublishOptions = {}): Promise<void> {
    const timeout = options.timeout ?? this.#conn.sendTimeout;
    const counts = options.counts;
    if (counts) counts.published++;
    // amqplib reads only the fields it knows, so `timeout` and `counts` can travel along.
    const props = {
      ...options,
      persistent: options.persistent ?? true,
      mandatory: options.mandatory ?? true,
      messageId: options.messageId ?? randomUUID(),
    };
    return new Promise<void>((resolve, reject) => {
      this.#attempt({ exchange, routingKey, content, props, timeout, deadline: performance.now() + timeout, resolve, reject, counts, failures: 0, lastError: undefined });
    });
  }

  #attempt(send: Send): void {
    try {
      this.#tryToSend(send);
    } catch (err) {
      // Nothing here is expected to throw; if something does, the send fails rather than hangs.
      fail(send, err instanceof Error ? err : new Error(String(err)));
    }
  }

  #tryToSend(send: Send): void {
    if (this.#closed || this.#conn.state === 'closed') {
      fail(send, new AmqpSendError(`Cannot send message ${send.props.messageId} to ${where(send)}: the connection to ${this.#conn.maskedUrl} is closed`));
      return;
    }
    const left = send.deadline - performance.now();
    if (left <= 0) {
      fail(
        send,
        new AmqpSendError(
          `Message ${send.props.messageId} to ${where(send)} was not confirmed by RabbitMQ at ${this.#conn.maskedUrl} within ${formatDuration(send.timeout)}` +
            (send.lastError ? ` (last error: ${describe(send.lastError)})` : '') +
            '; it may or may not have been stored, so the route should retry it',
          { cause: send.lastError },
        ),
      );
      return;
    }
    const state = this.#state;
    if (state && !state.closed) {
      if (state.drain) state.drain.then(() => this.#attempt(send), (err: unknown) => this.#retry(send, err));
      else this.#publishOnce(state, send, left);
      return;
    }
    this.#open(left).then(
      (opened) => {
        if (opened.closed) this.#retry(send, new Retryable('the new publishing channel closed at once'));
        else this.#attempt(send);
      },
      (err: unknown) => this.#retry(send, err),
    );
  }

  /** A failed attempt: fails the send for good (AmqpSendError), or tries again, backing off after the first. */
  #retry(send: Send, err: unknown): void {
    if (err instanceof AmqpSendError) {
      fail(send, err);
      return;
    }
    send.lastError = err;
    send.failures++;
    this.stats.resends++;
    if (send.failures === 1) {
      this.#conn.logger.debug(`Re-sending message ${send.props.messageId} to ${where(send)} after: ${describe(err)}`);
      // Not synchronously: a confirm callback failing with 'channel closed' runs before the
      // channel's 'close' listeners that mark it closed.
      queueMicrotask(() => this.#attempt(send));
    } else {
      // The connection may not have noticed yet that its socket is gone: back off a little.
      setTimeout(() => this.#attempt(send), Math.min(500, 10 * 2 ** send.failures));
    }
  }

  #publishOnce(state: ChannelState, send: Send, left: number): void {
    const messageId = send.props.messageId;
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      this.#retry(send, new Retryable(`no confirm within ${formatDuration(Math.round(left))}`));
    }, left);
    let ok: boolean;
    try {
      ok = state.ch.publish(send.exchange, send.routingKey, send.content, send.props, (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          this.#retry(send, this.#classify(state, err, send));
        } else if (state.returned.delete(messageId)) {
          const what = send.exchange === '' ? `no queue named '${send.routingKey}'` : `exchange '${send.exchange}' has no queue bound for routing key '${send.routingKey}'`;
          fail(send, new AmqpSendError(`Message ${messageId} is unroutable: ${what}; declare and bind a queue, or set mandatory=false to allow dropping`));
        } else {
          if (send.counts) send.counts.confirmed++;
          send.resolve();
        }
      });
    } catch (err) {
      // amqplib throws synchronously once the channel is closed.
      settled = true;
      clearTimeout(timer);
      this.#retry(send, new Retryable(describe(err)));
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
  }

  #classify(state: ChannelState, err: unknown, send: Send): Error {
    const { exchange, routingKey } = send;
    const { messageId } = send.props;
    if (state.serverError) {
      return new AmqpSendError(`RabbitMQ closed the publishing channel while sending message ${messageId} to exchange '${exchange}' with key '${routingKey}': ${describe(state.serverError)}`, {
        cause: state.serverError,
      });
    }
    if (err instanceof Error && err.message === 'message nacked') {
      if (send.counts) send.counts.nacked++;
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

/** A send's end without a confirm. */
function fail(send: Send, err: Error): void {
  if (send.counts) send.counts.failed++;
  send.reject(err);
}

function where(send: Send): string {
  return send.exchange === '' ? `queue '${send.routingKey}'` : `exchange '${send.exchange}' (routing key '${send.routingKey}')`;
}
