import type { Exchange } from '../exchange/exchange.ts';
import type { ParsedUri } from '../uri/parse.ts';
import type { Processor } from './processor.ts';
import type { Service } from './service.ts';
import type { Context } from '../engine/context.ts';
import type { LeaderStateSlot } from './leader-state.ts';

/**
 * Camel's SPI in three layers. A Component owns one URI scheme and makes Endpoints; an Endpoint is
 * one configured address and makes Consumers (which start exchanges) and Producers (which send them).
 */
export interface Component {
  /** Creates the endpoint for a parsed URI. Options are validated here, so a typo fails at startup. */
  createEndpoint(uri: ParsedUri, context: Context): Endpoint | Promise<Endpoint>;
  /** Optional lifecycle for shared resources (a broker connection, a timer wheel). */
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

export interface Endpoint {
  /** The URI as given, property placeholders unresolved; use maskedUri anywhere it is printed. */
  readonly uri: string;
  readonly maskedUri: string;
  readonly context: Context;
  /** Producer-only and consumer-only endpoints throw a clear error from the other method. */
  createConsumer(processor: Processor): Consumer | Promise<Consumer>;
  createProducer(): Producer | Promise<Producer>;
}

/**
 * Starts exchanges and hands each to its processor. A consumer awaits the processor and then reads
 * `exchange.exception` to settle the source: ack or nack, advance a cursor or not.
 */
export interface Consumer extends Service {
  readonly endpoint: Endpoint;
  /**
   * True for a consumer that other routes call in-process (direct:) rather than one that starts work
   * of its own. A graceful stop keeps it serving until the work in flight everywhere has finished,
   * and stops it last (Camel's ShutdownRoute.Defer).
   */
  readonly defersShutdown?: boolean;
  /**
   * Called once after a graceful stop(), when the route's work has finished (`drained`), or when the
   * shutdown timeout passed first (`drained` false: exchanges of this consumer may still be running).
   * A consumer that holds something on its exchanges' behalf (a master: route's lock) lets go here.
   */
  afterDrain?(drained: boolean): Promise<void>;
  /**
   * Optional, for a consumer that can continue where another process stopped. Under master: it is called
   * once per term, after createConsumer and before start(), with this consumer's key of the lock's leader
   * state: the consumer resumes from `slot.saved` and saves its progress with `slot.save`.
   */
  resumeFrom?(slot: LeaderStateSlot): void;
}

export interface Producer extends Service {
  readonly endpoint: Endpoint;
  /** Sends the exchange; throws (or rejects) on failure, and the engine records it on the exchange. */
  process(exchange: Exchange): void | Promise<void>;
}
