/**
 * Fault injection for one client (one bearer token) or for every client. Each control is a small
 * state machine the server consults per request: blackhole beats drop beats failure; latency is
 * added before whatever answer follows.
 */

export type FaultEvent = 'clear' | 'blackhole' | 'disconnect' | 'stall-watches';

export type FaultAction =
  | { kind: 'pass'; delayMs: number }
  | { kind: 'fail'; delayMs: number; status: number }
  | { kind: 'drop'; delayMs: number }
  | { kind: 'blackhole' };

export class FaultControl {
  private latencyMs = 0;
  private failRemaining = 0;
  private failProbability = 0;
  private failStatus = 500;
  private dropRemaining = 0;
  private holes = false;
  private readonly onChange: (control: FaultControl, event: FaultEvent) => void;

  /** @internal the server creates controls; users get them from `server.faults(token)`. */
  constructor(onChange: (control: FaultControl, event: FaultEvent) => void) {
    this.onChange = onChange;
  }

  /** Adds `ms` of delay before every answer (0 removes it). */
  latency(ms: number): this {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency must be a non-negative number of milliseconds, got ${ms}`);
    this.latencyMs = ms;
    return this;
  }

  /** Answers the next `count` requests with `status` (5xx or 429) and a matching Status body. */
  fail(count = 1, status = 500): this {
    checkStatus(status);
    this.failRemaining = count;
    this.failStatus = status;
    return this;
  }

  /** Answers each request with `status` with probability `rate` (0..1) until cleared. */
  failRate(rate: number, status = 500): this {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`failRate takes a probability between 0 and 1, got ${rate}`);
    checkStatus(status);
    this.failProbability = rate;
    this.failStatus = status;
    return this;
  }

  /** Destroys the socket of the next `count` requests without an answer (all of them until cleared by default). */
  drop(count = Number.POSITIVE_INFINITY): this {
    this.dropRemaining = count;
    return this;
  }

  /** Accepts requests and never answers them, and silences open watches, until `clear()`. */
  blackhole(): this {
    this.holes = true;
    this.onChange(this, 'blackhole');
    return this;
  }

  /**
   * Silences this client's open watches for good without closing them, as a connection that died
   * without a FIN or RST would: no event, bookmark or end of stream arrives on them, not even at
   * their timeoutSeconds. Later requests, new watches included, are served normally.
   */
  stallWatches(): this {
    this.onChange(this, 'stall-watches');
    return this;
  }

  /** Destroys this client's open connections now (watches included); later requests are unaffected. */
  disconnect(): this {
    this.onChange(this, 'disconnect');
    return this;
  }

  /** Removes every fault. Requests held by a blackhole have their connections destroyed, as after a partition. */
  clear(): this {
    const wasBlackhole = this.holes;
    this.latencyMs = 0;
    this.failRemaining = 0;
    this.failProbability = 0;
    this.dropRemaining = 0;
    this.holes = false;
    if (wasBlackhole) this.onChange(this, 'clear');
    return this;
  }

  get isBlackholed(): boolean {
    return this.holes;
  }

  get active(): boolean {
    return this.holes || this.latencyMs > 0 || this.failRemaining > 0 || this.failProbability > 0 || this.dropRemaining > 0;
  }

  /** @internal consumes one unit of a counted fault and says what to do with this request. */
  decide(): FaultAction {
    if (this.holes) return { kind: 'blackhole' };
    const delayMs = this.latencyMs;
    if (this.dropRemaining > 0) {
      this.dropRemaining--;
      return { kind: 'drop', delayMs };
    }
    if (this.failRemaining > 0) {
      this.failRemaining--;
      return { kind: 'fail', delayMs, status: this.failStatus };
    }
    if (this.failProbability > 0 && Math.random() < this.failProbability) return { kind: 'fail', delayMs, status: this.failStatus };
    return { kind: 'pass', delayMs };
  }
}

function checkStatus(status: number): void {
  if (!Number.isInteger(status) || status < 429 || status > 599) {
    throw new RangeError(`an injected failure needs an HTTP status from 429 to 599, got ${status}`);
  }
}

/** Combines the all-clients control with the per-token one: the first that is not a pass wins, delays add up. */
export function combine(actions: FaultAction[]): FaultAction {
  let delayMs = 0;
  for (const a of actions) {
    if (a.kind === 'blackhole') return a;
    delayMs += a.delayMs;
    if (a.kind !== 'pass') return { ...a, delayMs };
  }
  return { kind: 'pass', delayMs };
}
