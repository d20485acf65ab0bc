import type { LeadershipTerm } from '../cluster/cluster-service.ts';
import { randomHex } from '../random-hex.ts';
import { Message } from './message.ts';

export type ExchangePattern = 'InOnly' | 'InOut';

/** Names of the properties the engine itself sets, after Camel's (CamelSplitIndex and so on). */
export const ExchangeProperty = {
  SplitIndex: 'CamelSplitIndex',
  SplitSize: 'CamelSplitSize',
  SplitComplete: 'CamelSplitComplete',
  MulticastIndex: 'CamelMulticastIndex',
  MulticastComplete: 'CamelMulticastComplete',
  AggregatedSize: 'CamelAggregatedSize',
  AggregatedCompletedBy: 'CamelAggregatedCompletedBy',
  AggregatedCorrelationKey: 'CamelAggregatedCorrelationKey',
  DuplicateMessage: 'CamelDuplicateMessage',
  TimerName: 'CamelTimerName',
  TimerFiredTime: 'CamelTimerFiredTime',
  TimerPeriod: 'CamelTimerPeriod',
  TimerCounter: 'CamelTimerCounter',
  ExceptionCaught: 'CamelExceptionCaught',
  FailureEndpoint: 'CamelFailureEndpoint',
  FailureRouteId: 'CamelFailureRouteId',
  Filtered: 'CamelFilterMatched',
} as const;

let sequence = 0;
const idPrefix = `${randomHex(4)}-${randomHex(2)}-${randomHex(2)}`;

/** Cheap unique ids: a per-process random prefix and a counter. */
export function nextExchangeId(): string {
  sequence += 1;
  return `${idPrefix}-${sequence.toString(16).padStart(12, '0')}`;
}

/**
 * The unit of work that flows through a route: a message, exchange-scoped properties,
 * and the failure, if any. A failed exchange carries its error in `exception` rather than
 * rejecting, so every consumer can decide what failure means for it (nack, keep the cursor, rethrow).
 */
export class Exchange {
  readonly id: string;
  readonly created: Date;
  pattern: ExchangePattern;
  message: Message;
  readonly properties: Map<string, unknown>;
  exception: Error | undefined;
  /** The route that created the exchange (Camel's fromRouteId). */
  routeId: string | undefined;
  /** Endpoint URI (masked) the exchange came from. */
  fromEndpoint: string | undefined;
  /** Set by steps such as filter or stop() to end routing of this exchange without failing it. */
  stopped: boolean;
  /**
   * Aborted when the exchange must stop waiting (a master: consumer lost its leadership): redelivery
   * waits end at once. Set by consumers that can lose the right to process; copies share it.
   */
  signal: AbortSignal | undefined;
  /**
   * The leadership term this exchange runs for, set by a master: consumer. The engine checks it
   * before each step and fails the exchange with a LeadershipLostError once the term has ended, so
   * a member that no longer leads stops mid-route. Copies (split, multicast, wireTap, onCompletion)
   * share it: their work is the term's work too. Undefined outside master routes.
   */
  term: LeadershipTerm | undefined;
  /** The message as it entered the first route, kept only when an error handler uses useOriginalMessage. */
  originalMessage: Message | undefined;

  constructor(init: { body?: unknown; headers?: Record<string, unknown>; routeId?: string; fromEndpoint?: string; pattern?: ExchangePattern } = {}) {
    this.id = nextExchangeId();
    this.created = new Date();
    this.pattern = init.pattern ?? 'InOnly';
    this.message = new Message(init.body, init.headers);
    this.properties = new Map();
    this.exception = undefined;
    this.routeId = init.routeId;
    this.fromEndpoint = init.fromEndpoint;
    this.stopped = false;
    this.signal = undefined;
    this.term = undefined;
    this.originalMessage = undefined;
  }

  get body(): unknown {
    return this.message.body;
  }

  set body(value: unknown) {
    this.message.body = value;
  }

  get headers() {
    return this.message.headers;
  }

  get failed(): boolean {
    return this.exception !== undefined;
  }

  getProperty<T = unknown>(name: string): T | undefined {
    return this.properties.get(name) as T | undefined;
  }

  setProperty(name: string, value: unknown): this {
    this.properties.set(name, value);
    return this;
  }

  /** A new exchange with its own id, a copy of the message and the properties; used by split, multicast and wireTap. */
  copy(): Exchange {
    const copy = new Exchange({ routeId: this.routeId, fromEndpoint: this.fromEndpoint, pattern: this.pattern });
    copy.message = this.message.copy();
    for (const [k, v] of this.properties) copy.properties.set(k, v);
    copy.signal = this.signal;
    copy.term = this.term;
    copy.originalMessage = this.originalMessage;
    return copy;
  }
}
