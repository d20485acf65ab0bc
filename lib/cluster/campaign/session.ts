/**
 * A member's session with a server that elects natively (an etcd lease, a ZooKeeper session): valid
 * until `validUntil` on this member's monotonic clock, which each answered renewal moves forward.
 * Judged whenever `valid` is read, so a paused process sees the session over before any timer has
 * run. A session that lapsed is never revived, even if a late renewal succeeds: lost is lost.
 */
export class ServerSession {
  readonly #controller = new AbortController();
  readonly #now: () => number;
  readonly #lapse: string;
  validUntil: number;

  /** `lapse`: why the session is over when validUntil passes, for the logs. */
  constructor(validUntil: number, now: () => number, lapse: string) {
    this.validUntil = validUntil;
    this.#now = now;
    this.#lapse = lapse;
  }

  /** Aborted, with the reason, when this member knows the session is over. */
  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether the session is valid at this instant (judged on the monotonic clock). */
  get valid(): boolean {
    if (this.#controller.signal.aborted) return false;
    if (this.#now() >= this.validUntil) this.lose(this.#lapse);
    return !this.#controller.signal.aborted;
  }

  lose(reason: string): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new Error(reason));
  }
}
