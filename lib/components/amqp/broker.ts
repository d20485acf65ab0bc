import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Channel, ChannelModel } from 'amqplib';
import { ConfigurationError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import { maskUrlValue } from '../../uri/mask.ts';
import { formatDuration } from '../../uri/duration.ts';
import { AmqpAuthError, AmqpConnectError, describe, isAuthFailure } from './errors.ts';
import type { Declaration } from './topology.ts';
import { Publisher } from './publisher.ts';

export const DEFAULT_AMQP_URL = 'amqp://localhost';

/** The broker URL: the configured one, else `AMQP_URL`, else amqp://localhost. Rejects non-AMQP URLs. */
export function resolveBrokerUrl(configured?: string, env: NodeJS.ProcessEnv = process.env): string {
  const url = (configured?.trim() || env.AMQP_URL?.trim() || DEFAULT_AMQP_URL).trim();
  if (!/^amqps?:\/\//i.test(url)) {
    throw new ConfigurationError(`The RabbitMQ URL ${maskUrlValue(url)} is not an AMQP URL: expected amqp://user:password@host:5672/vhost (set AMQP_URL or the amqp component's url)`);
  }
  // An @ after the first / ? or # means a password holding one of them unencoded: WHATWG URL would
  // read its tail as the host and path (and name it in a DNS error), so refuse it here.
  const afterScheme = url.slice(url.indexOf('://') + 3);
  const authorityEnd = afterScheme.search(/[/?#]/);
  const misplacedAt = authorityEnd !== -1 && afterScheme.indexOf('@', authorityEnd) !== -1;
  try {
    if (misplacedAt) throw new TypeError('user-info with an unencoded / ? or #');
    new URL(url);
  } catch {
    throw new ConfigurationError(`The RabbitMQ URL ${maskUrlValue(url)} cannot be parsed: expected amqp://user:password@host:5672/vhost (percent-encode special characters in the password)`);
  }
  return url;
}

export interface BrokerOptions {
  url: string;
  logger: Logger;
  /** How long start() keeps retrying an unreachable broker before failing. Auth failures fail at once. Default 10s. */
  startTimeout?: number;
  /** TCP connect timeout of one attempt. Default 5s. */
  connectTimeout?: number;
  /** Heartbeat in seconds, unless the URL sets one. Default 15. */
  heartbeat?: number;
  /** Reconnect backoff: first delay and cap, in ms. Defaults 100 and 5000. */
  reconnectDelay?: number;
  maxReconnectDelay?: number;
  /** How long a send waits for a (re)connection and its confirm before failing. Default 30s. */
  sendTimeout?: number;
}

export type BrokerState = 'new' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

interface Waiter {
  resolve(model: ChannelModel): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One AMQP connection that heals itself. On an unexpected close it reconnects with exponential
 * backoff and jitter, replays every declaration it has been given, and then emits 'connected' so
 * subscribers resume. Events: 'connected' (model), 'disconnected' (error), 'closed'.
 *
 * amqplib 2.x has its own `connect(url, {recovery})`, but it retries a refused login forever and
 * cannot replay topology before waking waiters; doing it here keeps both in one place.
 */
export class BrokerConnection extends EventEmitter {
  readonly url: string;
  readonly maskedUrl: string;
  readonly logger: Logger;
  readonly sendTimeout: number;
  #opts: BrokerOptions;
  #state: BrokerState = 'new';
  #model: ChannelModel | undefined;
  #waiters = new Set<Waiter>();
  #declarations = new Map<string, Declaration>();
  #reconnectTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #downSince = 0;
  #lastError: unknown;
  #publisher: Publisher | undefined;
  #startPromise: Promise<void> | undefined;

  constructor(opts: BrokerOptions) {
    super();
    this.url = opts.url;
    this.maskedUrl = maskUrlValue(opts.url);
    this.#opts = opts;
    this.sendTimeout = opts.sendTimeout ?? 30_000;
    this.logger = opts.logger.child({ component: 'amqp', broker: this.maskedUrl });
    // 'disconnected' and the like are informational; an unhandled 'error' would kill the process.
    this.on('error', () => undefined);
  }

  get state(): BrokerState {
    return this.#state;
  }

  get isConnected(): boolean {
    return this.#state === 'connected' && this.#model !== undefined;
  }

  /** Connects, retrying an unreachable broker until startTimeout; a refused login fails at once. */
  start(): Promise<void> {
    this.#startPromise ??= this.#start();
    return this.#startPromise;
  }

  async #start(): Promise<void> {
    this.#state = 'connecting';
    const timeout = this.#opts.startTimeout ?? 10_000;
    const deadline = performance.now() + timeout;
    for (let attempt = 1; ; attempt++) {
      if ((this.#state as BrokerState) === 'closed') throw new AmqpConnectError(`The connection to RabbitMQ at ${this.maskedUrl} was closed while starting`);
      try {
        await this.#open();
        this.logger.info(`Connected to RabbitMQ at ${this.maskedUrl}`);
        return;
      } catch (err) {
        if (isAuthFailure(err)) {
          this.#state = 'closed';
          throw authError(this.maskedUrl, err);
        }
        const delay = this.#backoff(attempt);
        if (performance.now() + delay > deadline) {
          this.#state = 'closed';
          throw new AmqpConnectError(
            `Cannot connect to RabbitMQ at ${this.maskedUrl} (${describe(err)}) after ${attempt} attempt(s) in ${formatDuration(timeout)}: ` +
              'check that the broker is running and that AMQP_URL (or the amqp component url) points at it',
            { cause: err },
          );
        }
        // Said once at info, so a start that waits for a broker still booting is not silent; each retry at debug.
        if (attempt === 1) this.logger.info(`Waiting for RabbitMQ at ${this.maskedUrl} (${describe(err)}): retrying for up to ${formatDuration(timeout)}`);
        else this.logger.debug(`RabbitMQ at ${this.maskedUrl} not reachable yet (${describe(err)}); retrying in ${delay}ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async #open(): Promise<void> {
    const amqp = await import('amqplib');
    const model = await amqp.connect(this.#connectUrl(), {
      timeout: this.#opts.connectTimeout ?? 5000,
      // amqplib leaves Nagle's algorithm on. When the one connection of a context publishes
      // (waiting for confirms) while its consumers ack, small frames then wait for the broker's
      // delayed ACK, about 40 ms a round: 2.5k msgs/s instead of 20k (`npm run bench -- amqp`).
      noDelay: true,
      clientProperties: { connection_name: `dromedary@${hostname()}:${process.pid}` },
    });
    batchSocketWrites(model);
    model.on('error', (err: Error) => {
      this.#lastError = err;
      this.logger.warn(`RabbitMQ connection error: ${describe(err)}`);
    });
    model.on('blocked', (reason: string) => this.logger.warn(`RabbitMQ blocked publishing on this connection: ${reason}`));
    model.on('unblocked', () => this.logger.info('RabbitMQ unblocked publishing on this connection'));
    model.once('close', (err?: Error) => this.#onClose(model, err));
    try {
      if (this.#declarations.size > 0) await this.#replay(model);
      if (this.#state === 'closed') throw new AmqpConnectError(`The connection to RabbitMQ at ${this.maskedUrl} was closed`);
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
    this.#model = model;
    this.#state = 'connected';
    this.#attempt = 0;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(model);
    }
    this.#waiters.clear();
    this.emit('connected', model);
  }

  #connectUrl(): string {
    const u = new URL(this.url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(this.#opts.heartbeat ?? 15));
    return u.toString();
  }

  #onClose(model: ChannelModel, err: Error | undefined): void {
    if (this.#model !== model) return;
    this.#model = undefined;
    if (this.#state === 'closed') return;
    this.#state = 'reconnecting';
    this.#downSince = performance.now();
    this.#lastError = err ?? this.#lastError;
    this.logger.warn(`Lost the connection to RabbitMQ at ${this.maskedUrl}${err ? ` (${describe(err)})` : ''}; reconnecting`);
    this.emit('disconnected', err);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#state === 'closed' || this.#reconnectTimer) return;
    const delay = this.#backoff(++this.#attempt);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#open().then(
        () => {
          const after = formatDuration(Math.round(performance.now() - this.#downSince));
          this.logger.info(`Reconnected to RabbitMQ at ${this.maskedUrl} after ${after} (${this.#attempt} attempt(s))`);
        },
        (err: unknown) => {
          this.#lastError = err;
          if (this.#state === 'closed') return;
          // A changed password is worth shouting about; a broker still restarting is not.
          if (isAuthFailure(err)) this.logger.error(authError(this.maskedUrl, err).message);
          else if (this.#attempt === 1) {
            // Once per outage at info: what it waits for, how often it tries, and what sends do meanwhile.
            const cap = formatDuration(this.#opts.maxReconnectDelay ?? 5000);
            this.logger.info(
              `Still no connection to RabbitMQ at ${this.maskedUrl} (${describe(err)}): retrying at least every ${cap} until it answers; sends wait for it up to ${formatDuration(this.sendTimeout)}`,
            );
          } else this.logger.debug(`Reconnect attempt ${this.#attempt} to ${this.maskedUrl} failed: ${describe(err)}`);
          this.#scheduleReconnect();
        },
      );
    }, delay);
  }

  #backoff(attempt: number): number {
    const initial = this.#opts.reconnectDelay ?? 100;
    const cap = this.#opts.maxReconnectDelay ?? 5000;
    const base = Math.min(cap, initial * 2 ** Math.min(attempt - 1, 20));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /**
   * The live connection, waiting up to `timeout` ms for a reconnection. Fails loudly, naming the
   * broker and why it is down, rather than waiting forever.
   */
  connection(timeout = this.sendTimeout): Promise<ChannelModel> {
    if (this.#model && this.#state === 'connected') return Promise.resolve(this.#model);
    if (this.#state === 'closed') return Promise.reject(new AmqpConnectError(`The connection to RabbitMQ at ${this.maskedUrl} is closed`));
    if (this.#state === 'new') return Promise.reject(new AmqpConnectError(`The connection to RabbitMQ at ${this.maskedUrl} was never started`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          const why = this.#lastError ? ` (last error: ${describe(this.#lastError)})` : '';
          reject(new AmqpConnectError(`RabbitMQ at ${this.maskedUrl} is unavailable: no connection within ${formatDuration(timeout)}${why}`));
        }, timeout),
      };
      this.#waiters.add(waiter);
    });
  }

  /**
   * Declares topology now (when connected) and again after every reconnection, so a broker that
   * lost non-durable queues, or came back empty, gets them back before consumers resume.
   */
  async declare(declarations: readonly Declaration[], timeout = this.sendTimeout): Promise<void> {
    const fresh = declarations.filter((d) => !this.#declarations.has(d.key));
    if (fresh.length === 0) return;
    const model = await this.connection(timeout);
    await withChannel(model, async (ch) => {
      for (const d of fresh) await d.apply(ch, () => model.createChannel());
    });
    for (const d of fresh) this.#declarations.set(d.key, d);
  }

  async #replay(model: ChannelModel): Promise<void> {
    let ch = await model.createChannel();
    ch.on('error', () => undefined);
    for (const d of this.#declarations.values()) {
      try {
        await d.apply(ch, () => model.createChannel());
      } catch (err) {
        // One bad declaration must not keep the rest (and the consumers) down; it closed the channel.
        this.logger.error(`Re-declaring ${d.describe} after reconnecting failed: ${describe(err)}`);
        ch = await model.createChannel();
        ch.on('error', () => undefined);
      }
    }
    await ch.close().catch(() => undefined);
  }

  /** The connection's one confirm-channel publisher, shared by every producer on this broker. */
  publisher(): Publisher {
    this.#publisher ??= new Publisher(this);
    return this.#publisher;
  }

  async close(): Promise<void> {
    if (this.#state === 'closed' && !this.#model) return;
    this.#state = 'closed';
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new AmqpConnectError(`The connection to RabbitMQ at ${this.maskedUrl} was closed`));
    }
    this.#waiters.clear();
    await this.#publisher?.close();
    const model = this.#model;
    this.#model = undefined;
    if (model) await model.close().catch(() => undefined);
    this.emit('closed');
  }
}

/**
 * amqplib's multiplexer writes every frame it has queued (each publish, each ack) to the socket
 * one `write()` at a time, one system call each: about half of the client's CPU profile in
 * `npm run bench -- amqp`. Corking the socket around one pass of the multiplexer sends the same
 * bytes, in the same order, in one `writev`. The multiplexer is amqplib's internal object: when it
 * does not look as expected (another amqplib version), writes simply stay unbatched.
 */
export function batchSocketWrites(model: ChannelModel): boolean {
  const connection = model.connection as unknown as {
    stream?: { cork?: () => void; uncork?: () => void };
    muxer?: { _readIncoming?: () => void };
  };
  const socket = connection.stream;
  const muxer = connection.muxer;
  const pass = muxer?._readIncoming;
  if (!socket || typeof socket.cork !== 'function' || typeof socket.uncork !== 'function' || !muxer || typeof pass !== 'function') return false;
  muxer._readIncoming = function batched(this: unknown) {
    socket.cork!();
    try {
      pass.call(this);
    } finally {
      socket.uncork!();
    }
  };
  return true;
}

/** Runs fn on a short-lived channel, closing it afterwards (a failed declaration closes it for us). */
export async function withChannel<T>(model: ChannelModel, fn: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await model.createChannel();
  let failed = false;
  ch.on('error', () => {
    failed = true;
  });
  try {
    return await fn(ch);
  } finally {
    if (!failed) await ch.close().catch(() => undefined);
  }
}

function authError(maskedUrl: string, err: unknown): AmqpAuthError {
  const text = describe(err);
  const fix = /NOT[_-]ALLOWED|\b530\b/.test(text)
    ? 'check the virtual host in the URL and that the user has access to it'
    : 'check the user name and password in AMQP_URL (or the amqp component url)';
  return new AmqpAuthError(`RabbitMQ at ${maskedUrl} refused the login (${text}): ${fix}`, { cause: err });
}

interface Entry {
  connection: BrokerConnection;
  refs: number;
  started: Promise<void>;
}

/**
 * One connection per broker URL for a whole Context, reference-counted: endpoints acquire it when
 * they start and release it when they stop; the last release closes it.
 */
export class BrokerRegistry {
  readonly #defaults: Omit<BrokerOptions, 'url'>;
  readonly #entries = new Map<string, Entry>();

  constructor(defaults: Omit<BrokerOptions, 'url'>) {
    this.#defaults = defaults;
  }

  async acquire(url: string): Promise<BrokerConnection> {
    let entry = this.#entries.get(url);
    if (!entry) {
      const connection = new BrokerConnection({ ...this.#defaults, url });
      entry = { connection, refs: 0, started: connection.start() };
      this.#entries.set(url, entry);
    }
    entry.refs++;
    try {
      await entry.started;
    } catch (err) {
      entry.refs--;
      if (this.#entries.get(url) === entry) this.#entries.delete(url);
      throw err;
    }
    return entry.connection;
  }

  async release(connection: BrokerConnection): Promise<void> {
    const entry = this.#entries.get(connection.url);
    if (!entry || entry.connection !== connection) return;
    entry.refs--;
    if (entry.refs > 0) return;
    this.#entries.delete(connection.url);
    await connection.close();
  }

  /** Number of live connections (for tests and diagnostics). */
  get size(): number {
    return this.#entries.size;
  }

  async closeAll(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map((e) => e.connection.close()));
  }
}
