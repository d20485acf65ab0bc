import type { EventEmitter } from 'node:events';

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
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterMember {
  readonly id: string;
  readonly isLocal: boolean;
  readonly isLeader: boolean;
}

export interface LeadershipEvent {
  readonly lock: string;
  /** The member that leads now, or undefined when none is known to. */
  readonly leader: string | undefined;
  /** True when the leader is this member and its leadership is valid. */
  readonly isLocal: boolean;
}

export interface MembershipEvent {
  readonly lock: string;
  readonly members: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

export interface ClusterViewEvents {
  leadership: [LeadershipEvent];
  membership: [MembershipEvent];
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
  /** Releases this reference. */
  close(): Promise<void>;
}
