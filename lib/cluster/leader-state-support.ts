import { ConfigurationError, LeaderStateTooLargeError, LeadershipLostError } from '../errors.ts';
import { LEADER_STATE_MAX_BYTES, type JsonValue } from '../spi/leader-state.ts';
import type { LeaderState, LeadershipTerm } from './cluster-service.ts';
import { pause } from './campaign/campaign.ts';
import { checkStateKey, jsonCopy, parseState, type StateRecord } from './state-value.ts';

/**
 * The backend-independent half of a lock's leader state (cluster-service.ts LeaderState): checking
 * that values are JSON, the size bound, coalescing concurrent writes, retrying a write that failed
 * for a reason other than the term, and answering a leader's reads from what it wrote last. A
 * backend gives only how to read the whole state and how to commit it atomically with its check
 * that the term still holds the lock (LeaderStateCommit).
 */

/** A lock's whole leader state: its keys and their JSON values. */
export type LeaderStateRecord = StateRecord;

/** The state a commit is to write, as `update` computed it from the state the backend read. */
export interface LeaderStateUpdate {
  readonly state: LeaderStateRecord;
  /** `state` as the JSON text to store; its UTF-8 size is within the bound. */
  readonly json: string;
}

/**
 * Writes the lock's state as the leader of `term`, atomically with the store's check that the term
 * still holds the lock (a compare-and-swap): reads the current state, calls `update` with it (again
 * if the compare-and-swap failed only because the state changed), stores the result. Rejects with
 * LeadershipLostError when the store refused the write because the term no longer holds the lock
 * (the backend ends the term then); any other rejection is retried while the term is current.
 */
export type LeaderStateCommit = (term: LeadershipTerm, update: (current: LeaderStateRecord) => LeaderStateUpdate) => Promise<void>;

export interface LeaderStateSupportOptions {
  lock: string;
  memberId: string;
  /** This member's current term of the lock, or undefined. */
  currentTerm(): LeadershipTerm | undefined;
  /** Reads the lock's whole state from the store (any member). */
  read(): Promise<LeaderStateRecord>;
  commit: LeaderStateCommit;
  /** Wait between attempts of a write that failed for another reason than the term (a timeout, a lost connection). */
  retryDelay: number;
  /** The bound on the whole state's UTF-8 JSON; LEADER_STATE_MAX_BYTES unless a test needs less. */
  maxBytes?: number;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

interface Change {
  value: JsonValue | undefined;
  waiters: Waiter[];
}

interface Batch {
  readonly term: LeadershipTerm;
  readonly changes: Map<string, Change>;
}

/** LeaderState for one lock of one member; a backend makes one per lock and shares it between the lock's views. */
export class LeaderStateSupport implements LeaderState {
  readonly #options: LeaderStateSupportOptions;
  readonly #maxBytes: number;
  #pending: Batch | undefined;
  #flushing = false;
  #written: { term: LeadershipTerm; state: LeaderStateRecord } | undefined;

  constructor(options: LeaderStateSupportOptions) {
    this.#options = options;
    this.#maxBytes = options.maxBytes ?? LEADER_STATE_MAX_BYTES;
  }

  async get(key: string): Promise<JsonValue | undefined> {
    checkStateKey(this.#options.lock, key);
    const written = this.#written;
    // The leader is the only writer during its term: what it wrote last is what the store holds.
    if (written && written.term.isCurrent && written.term === this.#options.currentTerm()) return copy(written.state[key]);
    const state = await this.#options.read();
    return copy(state[key]);
  }

  set(key: string, value: JsonValue | undefined, options: { term?: LeadershipTerm } = {}): Promise<void> {
    const { lock } = this.#options;
    // The value as it is now (the caller may change its object while the write waits), refused unless it is JSON.
    let snapshot: JsonValue | undefined;
    try {
      checkStateKey(lock, key);
      snapshot = value === undefined ? undefined : jsonCopy(lock, key, value);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const term = options.term ?? this.#options.currentTerm();
    if (!term || !term.isCurrent) return Promise.reject(this.#lost(term));
    if (this.#pending && this.#pending.term !== term) {
      // Terms of one lock follow each other: a batch of another term is of one that has ended.
      settle(this.#pending, this.#lost(this.#pending.term));
      this.#pending = undefined;
    }
    this.#pending ??= { term, changes: new Map() };
    return new Promise<void>((resolve, reject) => {
      const change = this.#pending!.changes.get(key);
      if (change) {
        change.value = snapshot;
        change.waiters.push({ resolve, reject });
      } else {
        this.#pending!.changes.set(key, { value: snapshot, waiters: [{ resolve, reject }] });
      }
      void this.#flush();
    });
  }

  /** One write at a time; what was set meanwhile goes in the next one (the last value of each key wins). */
  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#pending) {
        const batch = this.#pending;
        this.#pending = undefined;
        await this.#write(batch);
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #write(batch: Batch): Promise<void> {
    const { lock, commit, retryDelay } = this.#options;
    for (;;) {
      if (!batch.term.isCurrent) return settle(batch, this.#lost(batch.term));
      let applied: Applied | undefined;
      try {
        await commit(batch.term, (current) => (applied = applyChanges(lock, current, batch.changes, this.#maxBytes)));
      } catch (err) {
        if (err instanceof LeadershipLostError || err instanceof ConfigurationError) return settle(batch, err);
        if (!batch.term.isCurrent) return settle(batch, this.#lost(batch.term));
        await pause(retryDelay, batch.term.signal);
        // Values set while this write failed go with its next attempt.
        if (this.#pending?.term === batch.term) {
          for (const [key, change] of this.#pending.changes) {
            const earlier = batch.changes.get(key);
            if (earlier) {
              earlier.value = change.value;
              earlier.waiters.push(...change.waiters);
            } else {
              batch.changes.set(key, change);
            }
          }
          this.#pending = undefined;
        }
        continue;
      }
      if (!applied) throw new Error(`the leader state commit of ${lock} did not compute the state it wrote`);
      this.#written = { term: batch.term, state: applied.state };
      for (const [key, change] of batch.changes) {
        const refused = applied.refused.get(key);
        for (const waiter of change.waiters) refused ? waiter.reject(refused) : waiter.resolve();
      }
      return;
    }
  }

  #lost(term: LeadershipTerm | undefined): LeadershipLostError {
    const { lock, memberId } = this.#options;
    if (!term) return new LeadershipLostError(lock, memberId, 'only the leader writes its leader state, and this member does not lead it');
    const reason = term.signal.reason;
    if (reason instanceof LeadershipLostError) return new LeadershipLostError(lock, memberId, reason.reason, term.token);
    return new LeadershipLostError(lock, memberId, 'its term has ended', term.token);
  }
}

interface Applied extends LeaderStateUpdate {
  /** The keys whose change would have taken the state over its bound: left as they were. */
  readonly refused: Map<string, LeaderStateTooLargeError>;
}

/**
 * Applies a batch's changes to `current` in the order they were first made. When the whole batch
 * would exceed the bound, each change is tried in turn and one that would take the state over it is
 * refused (only that key's callers see LeaderStateTooLargeError; removals always fit).
 */
function applyChanges(lock: string, current: LeaderStateRecord, changes: ReadonlyMap<string, Change>, maxBytes: number): Applied {
  const all = { ...current };
  for (const [key, { value }] of changes) put(all, key, value);
  const json = JSON.stringify(all);
  if (Buffer.byteLength(json, 'utf8') <= maxBytes) return { state: all, json, refused: new Map() };
  const refused = new Map<string, LeaderStateTooLargeError>();
  let state = { ...current };
  for (const [key, { value }] of changes) {
    const next = { ...state };
    put(next, key, value);
    const bytes = Buffer.byteLength(JSON.stringify(next), 'utf8');
    if (value !== undefined && bytes > maxBytes) refused.set(key, new LeaderStateTooLargeError(lock, key, bytes, maxBytes));
    else state = next;
  }
  return { state, json: JSON.stringify(state), refused };
}

function put(state: LeaderStateRecord, key: string, value: JsonValue | undefined): void {
  if (value === undefined) delete state[key];
  else state[key] = value;
}

/**
 * The whole state as stored; a missing one (never written) is empty, and so is one someone edited into
 * something other than a JSON object (the next write replaces it), as on the elector backends.
 */
export function parseLeaderState(text: string | undefined | null): LeaderStateRecord {
  return parseState(text ?? undefined) ?? {};
}

function copy<T extends JsonValue | undefined>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function settle(batch: Batch, err: Error): void {
  for (const change of batch.changes.values()) for (const waiter of change.waiters) waiter.reject(err);
}
