import { EventEmitter } from 'node:events';
import type { LeadershipTerm } from '../cluster-service.ts';
import type { LeaderStateRecord, LeaderStateUpdate } from '../leader-state-support.ts';

/**
 * One lock's election on a server that elects natively (etcd leases, ZooKeeper sessions,
 * PostgreSQL sessions): the backend-specific half of a CampaignClusterService. It emits 'change'
 * whenever its leader, its leadership or its term may have changed, and 'members' with the sorted
 * member ids when they change.
 */
export interface Campaign extends EventEmitter<{ change: []; members: [string[]] }> {
  readonly lock: string;
  readonly memberId: string;
  /** True only while this member's leadership is valid at this instant, judged on the monotonic clock. */
  readonly isLeader: boolean;
  /** This member's current term while it leads, else undefined. */
  readonly term: LeadershipTerm | undefined;
  /** The member believed to lead (this one while isLeader), or undefined. */
  readonly leader: string | undefined;
  readonly members: readonly string[];
  /** Monotonic time at which the request behind this member's current validity began, while it leads (for metrics). */
  readonly renewedAt: number | undefined;
  start(): void;
  /** Reads the lock's leader state from the server (any member may). */
  readState(): Promise<LeaderStateRecord>;
  /**
   * Writes the lock's leader state as the leader of `term`, in one server operation that also checks
   * the term still holds the lock (see LeaderStateCommit): a refusal for that reason ends the term.
   */
  commitState(term: LeadershipTerm, update: (current: LeaderStateRecord) => LeaderStateUpdate): Promise<void>;
  /** Stops campaigning; a leader gives the lock up at once unless `release` is false (then it expires). */
  stop(options: { release: boolean }): Promise<void>;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms}ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
