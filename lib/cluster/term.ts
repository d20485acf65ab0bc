import { LeadershipLostError } from '../errors.ts';
import type { LeadershipTerm } from './cluster-service.ts';

/**
 * A leadership term whose validity its election judges: `valid()` is read on every isCurrent, so a
 * paused process sees the term end before any timer has run to abort its signal. Shared by the
 * elector (file, Kubernetes) and the campaigns of the server backends (etcd, PostgreSQL, ZooKeeper).
 */
export class Term implements LeadershipTerm {
  readonly lock: string;
  readonly memberId: string;
  readonly token: number;
  readonly #controller = new AbortController();
  readonly #valid: () => boolean;

  constructor(lock: string, memberId: string, token: number, valid: () => boolean) {
    this.lock = lock;
    this.memberId = memberId;
    this.token = token;
    this.#valid = valid;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get isCurrent(): boolean {
    return !this.#controller.signal.aborted && this.#valid();
  }

  get ended(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Ends the term once: its signal aborts with a LeadershipLostError saying why. */
  end(reason: string): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new LeadershipLostError(this.lock, this.memberId, reason, this.token));
  }
}
