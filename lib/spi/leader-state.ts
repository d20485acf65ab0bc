/**
 * Leader state: a small JSON value per lock that moves with leadership, kept in the cluster store beside
 * the lock record. Any member reads it; only the current leader writes it, each write a compare-and-swap
 * on the lock record's version and the writer's term, so a deposed leader's write fails.
 *
 * Consumers use it through a slot (their own key of the lock's state) to resume where the previous
 * leader stopped: a poller's cursor, a schedule's last fire, a timer's counter (Camel's ResumeAware
 * consumers keep such offsets in a resume strategy; here the cluster store is that strategy).
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The most a lock's whole leader state (all keys, as UTF-8 JSON) may take. */
export const LEADER_STATE_MAX_BYTES = 8192;

/**
 * One consumer's key of its lock's leader state, for the term it runs in. Given by the master: component
 * to a consumer that can resume (Consumer.resumeFrom) before the consumer starts.
 */
export interface LeaderStateSlot {
  /** The key in the lock's leader state (the master consumer's delegate URI, masked). */
  readonly key: string;
  /** What earlier leaders saved under the key, read as this term began; undefined when nothing was. */
  readonly saved: JsonValue | undefined;
  /**
   * Saves `value` for the next leader. Resolves once the store holds it (or a later value); rejects with
   * LeadershipLostError once this term has ended (the write is then refused by the store too), and with
   * LeaderStateTooLargeError when the lock's state would exceed LEADER_STATE_MAX_BYTES. Calls made while a
   * write is in flight are coalesced into the next write (the last value wins).
   */
  save(value: JsonValue): Promise<void>;
}
