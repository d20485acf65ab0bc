import { DromedaryError } from '../../errors.ts';
import type { StateRecord } from '../state-value.ts';

/**
 * The record a lock store keeps for one lock, after client-go's LeaderElectionRecord. Times are
 * informational (ISO strings, for people reading the record): no member judges expiry by another
 * member's clock, only by when it saw the record change.
 */
export interface LockRecord {
  /** The member holding the lock; '' when released. */
  holderIdentity: string;
  leaseDurationMs: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
  /**
   * The process (instance) that wrote the record as holder, or released it: members are told apart
   * by it, not by holderIdentity, so two processes sharing a member id never adopt each other's record.
   */
  holderInstance?: string;
  /**
   * Heartbeat mode (heartbeat-store.ts): the holder's heartbeat record, which keeps this record alive
   * instead of renewals of its own. Absent on releases and on one-record-per-lock renewals.
   */
  heartbeat?: string;
  /**
   * The release marker: the releasing instance, written only by the holder's own compare-and-swap
   * release (holderIdentity '', releasedBy === holderInstance). A record emptied any other way (an
   * edit, a patch to "") carries no marker, and followers treat its holder as unknown.
   */
  releasedBy?: string;
  /** The fencing token of the current (or last) term: strictly increasing per term, see Elector. */
  fencingToken?: number;
  /**
   * The lock's leader state (see ClusterView.state), carried forward by every write of the record:
   * renewals, takeovers and releases. Only a deletion of the record loses it.
   */
  state?: StateRecord;
}

/** Whether the record is a release written by its holder itself (see LockRecord.releasedBy). */
export function isRelease(record: LockRecord): boolean {
  return record.holderIdentity === '' && record.releasedBy !== undefined && record.releasedBy !== '' && record.releasedBy === record.holderInstance;
}

export interface VersionedRecord {
  readonly record: LockRecord;
  /** Opaque; compared for equality only. */
  readonly version: string;
}

/**
 * Where lock records live. create and update are compare-and-swap: exactly one of several
 * concurrent writers of the same version succeeds, the others get a LockConflictError.
 */
export interface LockStore {
  get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined>;
  create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord>;
  update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord>;
  /**
   * Optional: calls back when the record may have changed, so followers react at once, with the new
   * version when the store knows it (so a member can ignore its own writes), and the new record when
   * the notification carries it (so a follower can observe it without reading), or `null` when the
   * record was deleted. Returns an unsubscribe function.
   */
  watch?(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void;
  /**
   * Optional: whether the watch on this lock is connected now. While it is not (an API server
   * restart, a watch in backoff), followers poll every retryPeriod instead of waiting for the lease
   * they observed to run out, so a renewal they missed cannot delay a takeover by a whole lease.
   */
  watching?(lock: string): boolean;
  /** Optional: the ids of the members currently taking part, for views' member lists. */
  members?(lock: string, signal: AbortSignal): Promise<string[]>;
  /** Optional: calls back with the member list whenever it changes, so members need not poll for it. */
  watchMembers?(onChange: (members: string[]) => void): () => void;
  /** Optional: tells the store this member is alive (membership heartbeats). */
  heartbeat?(lock: string, memberId: string, signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

/** A lost compare-and-swap: someone else wrote first. Expected in races; never an error for the user. */
export class LockConflictError extends DromedaryError {
  constructor(lock: string, detail = 'the record changed since it was read') {
    super('LOCK_CONFLICT', `Lock ${lock}: ${detail}`);
  }
}

/** A store call that did not finish within its timeout. */
export class LockStoreTimeoutError extends DromedaryError {
  constructor(lock: string, operation: string, ms: number) {
    super('LOCK_STORE_TIMEOUT', `Lock ${lock}: ${operation} did not finish within ${ms}ms`);
  }
}

/** ISO time with microseconds, the precision Kubernetes' MicroTime wants. */
export function microTime(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
