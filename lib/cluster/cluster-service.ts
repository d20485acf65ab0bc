import type { EventEmitter } from 'node:events';
import type { JsonValue } from '../spi/leader-state.ts';

/**
 * The cluster service contract, after Camel's CamelClusterService: one instance per Context,
 * shared by every master: route and by user code. Backends (file, kubernetes, standalone) differ
 * only in how they store the lock record; see election/elector.ts for the protocol.
 */
export interface ClusterService {
  /** This process's member id. */
  readonly memberId: string;
  /** `file`, `kubernetes`, `memory`, `standalone`. */
  readonly kind: string;
  /** A reference-counted view of one lock; the first reference starts its election, the last close() stops it. */
  view(lock: string): ClusterView;
  /** True while this member leads the lock now (false for locks no view is open on). */
  isLeader(lock: string): boolean;
  /** Locks with an open view. */
  readonly locks: string[];
  /** The requests this member made to its cluster store, for metrics; absent when it has no store to count. */
  readonly storeRequests?: StoreRequests;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterMember {
  readonly id: string;
  readonly isLocal: boolean;
  readonly isLeader: boolean;
}

/**
 * One leadership term of this member for one lock: from the write that made it leader to the
 * moment its leadership lapses, is lost, or is given up. Work done for the leader carries the term,
 * so it can stop when the term ends and so a downstream store can refuse a stale leader's writes.
 */
export interface LeadershipTerm {
  readonly lock: string;
  readonly memberId: string;
  /**
   * The fencing token: strictly greater than the token of every earlier term of this lock, on any
   * member. A store that keeps the highest token it has seen refuses writes carrying a lower one.
   */
  readonly token: number;
  /** Aborted (with a LeadershipLostError-like reason) the moment this member knows the term ended. */
  readonly signal: AbortSignal;
  /**
   * True while the term's leadership is valid at this instant, judged on the monotonic clock as
   * ClusterView.isLeader is; false for good once the term ended. Check it before each unit of work:
   * after a pause (GC, SIGSTOP) it turns false before any timer has run to abort `signal`.
   */
  readonly isCurrent: boolean;
}

export interface LeadershipEvent {
  readonly lock: string;
  /** The member that leads now, or undefined when none is known to. */
  readonly leader: string | undefined;
  /** True when the leader is this member and its leadership is valid. */
  readonly isLocal: boolean;
  /** This member's current term, when isLocal. */
  readonly term?: LeadershipTerm;
}

export interface MembershipEvent {
  readonly lock: string;
  readonly members: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/**
 * This member is about to give the lock to another member of its own accord (rebalancing): a step
 * down, not a loss. It still leads while listeners prepare; each stops taking new work, waits for
 * its work in flight, and passes that wait to `defer` (resolving true once drained, false when it
 * could not drain in time). The lock is released only when every deferred wait said true; otherwise
 * the hand-over is called off and the view replays its leadership, so listeners resume.
 */
export interface HandOverEvent {
  readonly lock: string;
  /** The member meant to take the lock over. */
  readonly to: string;
  /** How long listeners have to drain, in milliseconds. */
  readonly timeoutMs: number;
  defer(drained: Promise<boolean>): void;
}

export interface ClusterViewEvents {
  leadership: [LeadershipEvent];
  membership: [MembershipEvent];
  handover: [HandOverEvent];
}

/**
 * One lock as seen from this member. `isLeader` is judged on the monotonic clock at the moment it
 * is read, so after a pause (GC, SIGSTOP, a blocked event loop) it is false before any timer runs:
 * guard each unit of guarded work with it (fencing at the gate).
 * A listener added late is told the current state at once.
 */
export interface ClusterView extends EventEmitter<ClusterViewEvents> {
  readonly lock: string;
  readonly isLeader: boolean;
  readonly leader: string | undefined;
  readonly localMember: ClusterMember;
  readonly members: readonly ClusterMember[];
  /** This member's current term while it leads (isLeader), else undefined. */
  readonly term: LeadershipTerm | undefined;
  /** What this member's election of the lock has seen, for metrics; read at the moment it is asked. */
  readonly stats: LockStats;
  /** The lock's leader state: read by any member, written only by its leader (see LeaderState). */
  readonly state: LeaderState;
  /**
   * Releases this reference. When it was the last one, the election stops and a leader releases the
   * lock so a follower takes over at once, unless `release: false`: then work of the current term may
   * still be running (a drain that timed out), so the lock is left to expire after its lease and
   * followers wait it out. `release: false` from any view of the lock sticks until its election stops.
   */
  close(options?: { release?: boolean }): Promise<void>;
}

/** Counts of one lock's election on this member, since the election started (the lock's first view). */
export interface LockStats {
  /**
   * Leadership transitions this member saw: each term it began, each time it stopped leading, and
   * each time the leader it knew of changed from one other member to another (a gap with no known
   * leader in between does not count by itself, nor does the first leader it learns of).
   */
  readonly transitions: number;
  /** Milliseconds since this member's last successful renewal (or acquisition), while it leads; else undefined. */
  readonly lastRenewAgeMs: number | undefined;
}

/** Called as each cluster store request finishes: its verb (get, create, update, release, members, heartbeat), outcome (ok, conflict, error, timeout) and duration. */
export type StoreRequestListener = (verb: string, outcome: string, seconds: number) => void;

/** The requests a member made to its cluster store (see election/instrumented-store.ts). */
export interface StoreRequests {
  /** Requests finished since the service was made, by verb and outcome. */
  counts(): ReadonlyArray<{ readonly verb: string; readonly outcome: string; readonly count: number }>;
  /** Calls `listener` as each request finishes; returns the function that stops it. */
  onRequest(listener: StoreRequestListener): () => void;
}

/**
 * A lock's leader state (see spi/leader-state.ts): named JSON values kept in the cluster store with the
 * lock record, so they survive the leader (a crash, a graceful handover) and a new leader continues from
 * them. The whole state of a lock is bounded by LEADER_STATE_MAX_BYTES.
 */
export interface LeaderState {
  /** The value stored under `key` now, read from the cluster store (a leader may answer from the record it wrote last). */
  get(key: string): Promise<JsonValue | undefined>;
  /**
   * Stores `value` under `key` (undefined removes the key) as the leader of `options.term`, by default this
   * view's current term. The write is a compare-and-swap on the lock record's version, also checking that the
   * record still carries the term: it rejects with LeadershipLostError when the term is not current or the
   * record changed hands, with LeaderStateTooLargeError above LEADER_STATE_MAX_BYTES, and with a
   * ConfigurationError naming the key for a value that is not JSON. It resolves once the store holds the value
   * (or a later one). Concurrent calls are coalesced. A successful write also renews the writer's leadership.
   */
  set(key: string, value: JsonValue | undefined, options?: { term?: LeadershipTerm }): Promise<void>;
}
