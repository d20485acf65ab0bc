import { DromedaryError, LeadershipLostError } from '../../errors.ts';
import type { Exchange } from '../../exchange/exchange.ts';
import type { Consumer } from '../../spi/component.ts';
import { ConsumerSupport } from '../../spi/endpoint-support.ts';
import { isPromise, type Processor } from '../../spi/processor.ts';
import type { LeaderStateSlot } from '../../spi/leader-state.ts';
import type { ClusterView, HandOverEvent, LeadershipEvent, LeadershipTerm } from '../../cluster/cluster-service.ts';
import type { Logger } from '../../logging/logger.ts';
import type { MasterEndpoint } from './master-component.ts';
import { MasterHeader } from './headers.ts';

/** The error put on an exchange that the delegate produced after this member stopped leading. */
export class NotLeaderError extends DromedaryError {
  constructor(lock: string, memberId: string) {
    super('NOT_LEADER', `Exchange refused: member ${memberId} is not the leader of ${lock} at this instant, so it must not process it`);
  }
}

/**
 * Wraps the delegate's consumer: started when this member becomes leader of the lock, stopped at
 * once when it stops leading. Starts and stops are serialised, so a flapping leadership never runs
 * two delegate consumers. Every exchange also passes a gate that checks leadership at that instant
 * (fencing): after a pause (GC, SIGSTOP, a blocked event loop) the delegate may still fire before
 * the stop runs, and the gate refuses those exchanges.
 *
 * An exchange let through carries the leadership term (exchange.term) and its fencing token (the
 * DromedaryFencingToken header). The gate only guards the start: the engine checks the term again
 * before every step, so an exchange already inside the route when the term ends (the leader was
 * paused or cut off mid-exchange) stops before its next step with a LeadershipLostError instead of
 * running to its end while another member leads. What a step has begun before the lapse it may
 * still finish; the token lets the store it writes to refuse that late write.
 */
export class MasterConsumer extends ConsumerSupport<MasterEndpoint> {
  #view: ClusterView | undefined;
  #delegate: Consumer | undefined;
  #queue: Promise<void> = Promise.resolve();
  #retry: NodeJS.Timeout | undefined;
  #generation = 0;
  #refused = 0;
  /** Exchanges the gate let through that have not finished, and who waits for them to (a hand-over). */
  #inflight = 0;
  #idle: Array<() => void> = [];
  /**
   * One per leadership term, aborted the moment the term ends. Every exchange let through carries
   * its signal, so work that waits (a redelivery) stops at once instead of running on a follower.
   */
  #term = new AbortController();
  /** The signal exchanges of one elector term carry, made once per term and consumer term. */
  #linked: { term: LeadershipTerm; consumer: AbortController; signal: AbortSignal } | undefined;
  readonly #logger: Logger;

  constructor(endpoint: MasterEndpoint, processor: Processor) {
    super(endpoint, processor);
    this.#logger = endpoint.context.logger.child({ lock: endpoint.lock, endpoint: endpoint.maskedUri });
  }

  /** Whether the delegate consumer is running here (Camel's isMaster). */
  get isMaster(): boolean {
    return this.#delegate !== undefined;
  }

  /** Exchanges the gate refused because leadership had lapsed. */
  get refused(): number {
    return this.#refused;
  }

  readonly #gate: Processor = (exchange: Exchange) => {
    // view.term is the current term only while this member leads at this instant (monotonic clock).
    const term = this.#view?.term;
    if (term !== undefined) {
      exchange.term = term;
      exchange.message.headers.set(MasterHeader.FencingToken, term.token);
      const signal = this.#signalOf(term);
      exchange.signal = exchange.signal ? AbortSignal.any([exchange.signal, signal]) : signal;
      this.#inflight += 1;
      let result: void | Promise<void>;
      try {
        result = this.processor(exchange);
      } catch (err) {
        this.#finished();
        throw err;
      }
      if (isPromise(result)) return result.finally(() => this.#finished());
      this.#finished();
      return result;
    }
    this.#endTerm('leadership lapsed');
    this.#refused += 1;
    exchange.exception = new NotLeaderError(this.endpoint.lock, this.endpoint.cluster.memberId);
    this.#logger.warn(`Refused an exchange from ${this.endpoint.delegate.maskedUri}: leadership of ${this.endpoint.lock} lapsed; stopping the consumer`);
    this.#enqueue(() => this.#stopDelegate('leadership lapsed'));
  };

  readonly #onLeadership = (event: LeadershipEvent) => {
    this.#generation += 1;
    const generation = this.#generation;
    if (event.isLocal) {
      if (this.#term.signal.aborted) this.#term = new AbortController();
      this.#enqueue(() => this.#startDelegate(generation, 1));
    } else {
      const reason = event.leader ? `${event.leader} leads ${this.endpoint.lock}` : `no member leads ${this.endpoint.lock}`;
      this.#endTerm(reason);
      this.#enqueue(() => this.#stopDelegate(reason));
    }
  };

  #finished(): void {
    this.#inflight -= 1;
    if (this.#inflight > 0) return;
    for (const wake of this.#idle.splice(0)) wake();
  }

  /**
   * Rebalancing gives the lock to another member: a step down, not a loss. Stop the delegate, so no
   * new exchange starts, and let the exchanges in flight finish while this member still leads; the
   * lock is released after that. Should the view replay a local leadership (the hand-over was called
   * off), #onLeadership starts the delegate again.
   */
  readonly #onHandOver = (event: HandOverEvent) => {
    this.#generation += 1;
    const reason = `handing ${this.endpoint.lock} over to ${event.to} (rebalancing)`;
    this.#enqueue(() => this.#stopDelegate(reason));
    event.defer(this.#queue.then(() => this.#drained(event.timeoutMs)));
  };

  /** True once no exchange this consumer let through is running, false if some still are after `timeoutMs`. */
  #drained(timeoutMs: number): Promise<boolean> {
    if (this.#inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      this.#idle.push(wake);
    });
  }

  #signalOf(term: LeadershipTerm): AbortSignal {
    const linked = this.#linked;
    if (linked && linked.term === term && linked.consumer === this.#term) return linked.signal;
    const signal = AbortSignal.any([this.#term.signal, term.signal]);
    this.#linked = { term, consumer: this.#term, signal };
    return signal;
  }

  #endTerm(reason: string): void {
    if (this.#term.signal.aborted) return;
    this.#term.abort(new LeadershipLostError(this.endpoint.lock, this.endpoint.cluster.memberId, reason));
  }

  protected doStart(): void {
    this.#view = this.endpoint.cluster.view(this.endpoint.lock);
    this.#view.on('leadership', this.#onLeadership);
    this.#view.on('handover', this.#onHandOver);
  }

  /**
   * Stops the delegate, so no new exchange starts here, but keeps the view open: the election goes on
   * renewing while the route drains, and the lock is given up only in afterDrain. Releasing here would
   * let a follower start while this member's last exchanges still run.
   */
  protected async doStop(): Promise<void> {
    this.#generation += 1;
    this.#view?.off('leadership', this.#onLeadership);
    this.#view?.off('handover', this.#onHandOver);
    // While draining, the term still ends the moment leadership is lost, so the exchanges in flight learn of it.
    this.#view?.on('leadership', this.#whileDraining);
    this.#enqueue(() => this.#stopDelegate('route stopping'));
    await this.#queue;
  }

  readonly #whileDraining = (event: LeadershipEvent) => {
    if (!event.isLocal) this.#endTerm(event.leader ? `${event.leader} leads ${this.endpoint.lock}` : `no member leads ${this.endpoint.lock}`);
  };

  /**
   * The route's exchanges have finished (`drained`), so no work of this term runs any more: release
   * the lock, and a follower takes over at once. Otherwise the shutdown timeout passed first: end the
   * term, so work that honours its signal stops, and do not release: followers then wait a whole lease
   * from the last renewal they saw, and this member's leadership has ended before that on its own clock
   * (renewDeadline < leaseDuration); `dromedary run` exits right after the stop, ending what ignored it.
   */
  async afterDrain(drained: boolean): Promise<void> {
    const view = this.#view;
    this.#view = undefined;
    if (!view) return;
    view.off('leadership', this.#whileDraining);
    if (drained) {
      this.#endTerm('route stopped');
      await view.close();
      return;
    }
    this.#endTerm('the shutdown timeout passed with exchanges of this term in flight');
    this.#logger.warn(
      `Exchanges from ${this.endpoint.maskedUri} were still running when the shutdown timeout passed: ending the term of ${this.endpoint.lock} and leaving the lock to expire after its lease`,
    );
    await view.close({ release: false });
  }

  #enqueue(action: () => Promise<void>): void {
    this.#queue = this.#queue.then(action, action);
  }

  async #startDelegate(generation: number, attempt: number): Promise<void> {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    if (generation !== this.#generation || this.#delegate || !this.#view?.isLeader) return;
    const { lock, delegate, backOffDelay, backOffMaxAttempts } = this.endpoint;
    this.#logger.info(`Leadership taken for ${lock}. Attempt #${attempt} to start consumer ${delegate.maskedUri}`);
    let consumer: Consumer | undefined;
    try {
      consumer = await delegate.createConsumer(this.#gate);
      if (consumer.resumeFrom) consumer.resumeFrom(await this.#slotOf(this.#view));
      await consumer.start();
    } catch (err) {
      await consumer?.stop().catch(() => undefined);
      const reason = err instanceof Error ? err.message : String(err);
      if (backOffMaxAttempts > 0 && attempt >= backOffMaxAttempts) {
        this.#logger.error(
          `Member ${this.endpoint.cluster.memberId} holds the leadership of ${lock} but is not consuming from ${delegate.maskedUri}, ` +
            `until the leadership changes again: ${attempt} attempts failed; last error: ${reason}`,
        );
        return;
      }
      this.#logger.warn(`Attempt #${attempt} to start consumer ${delegate.maskedUri} failed: ${reason}. Retrying in ${backOffDelay}ms`);
      this.#retry = setTimeout(() => this.#enqueue(() => this.#startDelegate(generation, attempt + 1)), backOffDelay);
      return;
    }
    // Leadership may have moved while the consumer was starting: never leave it running then.
    if (generation !== this.#generation || !this.#view?.isLeader) {
      await consumer.stop();
      return;
    }
    this.#delegate = consumer;
    this.#logger.info(`Leadership taken for ${lock}. Attempt #${attempt} success. Consumer started: ${delegate.maskedUri}`);
  }

  /**
   * The delegate's key of the lock's leader state for this term: what earlier leaders saved, read
   * before it starts (a failed read fails this attempt, retried like a failed start), and its saves
   * made as the leader of this term, so they are refused once it has ended.
   */
  async #slotOf(view: ClusterView | undefined): Promise<LeaderStateSlot> {
    const term = view?.term;
    if (!view || !term) throw new LeadershipLostError(this.endpoint.lock, this.endpoint.cluster.memberId, 'leadership lapsed before the consumer started');
    const key = this.endpoint.delegate.maskedUri;
    const saved = await view.state.get(key);
    return { key, saved, save: (value) => view.state.set(key, value, { term }) };
  }

  async #stopDelegate(reason: string): Promise<void> {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    const consumer = this.#delegate;
    if (!consumer) return;
    this.#delegate = undefined;
    this.#logger.info(`Leadership lost for ${this.endpoint.lock} (${reason}). Stopping consumer ${this.endpoint.delegate.maskedUri}`);
    await consumer.stop();
  }
}
