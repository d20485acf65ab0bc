import { EventEmitter } from 'node:events';
import type { Logger } from '../../logging/logger.ts';
import type { LeadershipTerm, LockStats } from '../cluster-service.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { isRelease, LockConflictError, LockStoreTimeoutError, microTime, type LockRecord, type LockStore, type VersionedRecord } from './lock-store.ts';
import { newInstanceId } from './instance.ts';
import type { ElectionTimings } from './timings.ts';
import { Term } from '../term.ts';
import { ConfigurationError, LeadershipLostError } from '../../errors.ts';
import type { JsonValue } from '../../spi/leader-state.ts';
import { checkStateKey, checkStateSize, jsonCopy, sameState } from '../state-value.ts';
import { applyBatch, PendingState, type StateBatch } from './pending-state.ts';

/**
 * Leader election for one lock, backend-agnostic, after client-go's tools/leaderelection.
 *
 * The protocol, and why it is safe:
 * - A member may take the lock when it is free (created here, or released), or when the record has
 *   not changed for leaseDuration *as observed on this member's own monotonic clock*. Nobody reads
 *   anybody else's timestamps, so clock skew between machines does not matter; only the clocks' rates must
 *   roughly agree (the leaseDuration/renewDeadline ratio is the margin).
 * - Every write is a compare-and-swap on the record's version, so of several members racing for the
 *   same version exactly one wins.
 * - The leader renews every retryPeriod. Its leadership is valid until the start of its last
 *   successful renew plus renewDeadline, judged on the monotonic clock whenever `isLeader` is read.
 *   A follower can only take over leaseDuration after it saw that renew, which is later than that
 *   renew's start plus renewDeadline. So the old leader's `isLeader` turns false before the new one's
 *   turns true, even when the old one is paused (SIGSTOP, GC) and its timers have not run yet.
 * - On a graceful stop the leader writes the record with no holder and a release marker (its own
 *   instance in releasedBy), so a follower takes over at once. Only that marker, which only the
 *   holder's compare-and-swap writes, frees the lock at once: a record that disappeared, or was
 *   emptied without the marker (`kubectl delete lease`, a patch to ""), has an unknown holder, which
 *   may still be leading, so followers wait a full leaseDuration from when they saw that, exactly as
 *   after the last renewal of a live holder. (A member that has never seen the lock's record creates
 *   it at once: that is how a lock starts.)
 * - Each process has its own instance id; a record counts as this member's only when it carries this
 *   process's instance, so a second process with the same member id (or a restarted one) is a holder
 *   like any other, never adopted. A leader that sees a record it did not write (by its watch, a
 *   failed compare-and-swap or a read) ends its term at once.
 * - Every term gets a fencing token above every earlier term's (see #nextRecord).
 * - Some protocols (Camel's ConfigMap one) also wait `acquireDelay` after taking the lock before leading.
 * - Leader state lives in the record (LockRecord.state) and every write carries it forward. The
 *   leader changes it only by its own next write, in this cycle like a renewal (see writeState), so
 *   a compare-and-swap that fails because someone else wrote also refuses the state it carried.
 */
export interface ElectorOptions {
  lock: string;
  memberId: string;
  /** This process's instance id (see instance.ts); a fresh one by default. */
  instanceId?: string;
  store: LockStore;
  timings: ElectionTimings;
  logger: Logger;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
  random?: () => number;
  /**
   * Whether another member's record still blocks this member. Default: the lease has not expired,
   * i.e. the record changed less than its leaseDuration ago by this member's clock.
   */
  holderValid?: (observation: Observation) => boolean | Promise<boolean>;
  /** Wait this long after taking the lock before leading. Default 0. */
  acquireDelay?: number;
  /**
   * Timeout of each election store call. Default: whatever the renew deadline still allows, i.e. the
   * time left until the leader's validity ends (a renewal), or renewDeadline from the attempt's start
   * (a follower), so a store slower than retryPeriod still elects and keeps a leader.
   */
  callTimeout?: number;
  /**
   * Time between a leader's successful renewals. Default retryPeriod, as client-go; a longer one
   * (such as renewDeadline / 3) saves requests and still leaves several retries, every retryPeriod,
   * before renewDeadline.
   */
  renewInterval?: number;
  /**
   * Whether this member may try to take the lock now (asked only before a write that would make it
   * holder, never before a renewal); rebalancing keeps a member off locks assigned to others. Default: always.
   */
  mayAcquire?: () => boolean;
}

export interface Observation {
  readonly record: LockRecord;
  /** Monotonic time at which this member saw the record change. */
  readonly observedAt: number;
  readonly now: number;
}

export interface ElectorChange {
  readonly leader: string | undefined;
  readonly isLocal: boolean;
}

export class Elector extends EventEmitter<{ change: [ElectorChange]; members: [string[]] }> {
  readonly lock: string;
  readonly memberId: string;
  readonly instanceId: string;
  readonly #store: LockStore;
  readonly #timings: ElectionTimings;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #holderValid: (o: Observation) => boolean | Promise<boolean>;
  readonly #acquireDelay: number;
  readonly #callTimeout: number | undefined;
  readonly #renewInterval: number;
  readonly #mayAcquire: () => boolean;
  /** The end of the renew deadline of the attempt running now: no call of it may outlast it. */
  #attemptDeadline = Infinity;
  #lastAttemptOk = false;

  #running = false;
  #busy = false;
  #again = false;
  #cycleDone: Promise<void> = Promise.resolve();
  #nextTimer: NodeJS.Timeout | undefined;
  #stepDownTimer: NodeJS.Timeout | undefined;
  #leadTimer: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #abort = new AbortController();

  #observed: VersionedRecord | undefined;
  #observedAt = 0;
  /** This member has seen a record of the lock: a missing one has then disappeared, not yet begun. */
  #sawRecord = false;
  /** When this member first found the record missing (after having seen one). */
  #absentSince: number | undefined;
  /** The longest lease of any record seen: an unknown holder may have used it. */
  #longestLease = 0;
  /** The highest fencing token seen or written: every new term's token is above it. */
  #highestToken = -1;
  /** The token of this member's last term: a write carrying it again starts no new term. */
  #lastTermToken = -Infinity;
  /** Another process with this member id: its instance and the renewTime first seen, to tell a live duplicate from a dead predecessor. */
  #sameIdHolder: { instance: string; renewTime: string; reported: boolean } | undefined;
  /** This member holds the record (its last write made it holder). */
  #holding = false;
  #leadingSince = Infinity;
  #validUntil = -Infinity;
  #reported: ElectorChange = { leader: undefined, isLocal: false };
  #members: string[] = [];
  /** The current term while holding; ended (its signal aborted) as soon as this member knows it lapsed. */
  #term: Term | undefined;
  #reportedTerm: LeadershipTerm | undefined;
  /** See LockStats.transitions; #lastOther is the other member last reported as leader since this one last led. */
  #transitions = 0;
  #lastOther: string | undefined;
  /** Monotonic time of this member's last successful write as holder. */
  #lastRenewAt: number | undefined;
  /** Set by stop({ release: false }) callers: work of the term may still run, so never release. */
  #keepUntilExpiry = false;
  /** Leader-state changes of the current term waiting for the next write. */
  readonly #pendingState = new PendingState();
  /** The pending changes the write in flight carries, settled when it succeeds as a renewal. */
  #stateBatch: StateBatch | undefined;

  constructor(options: ElectorOptions) {
    super();
    this.lock = options.lock;
    this.memberId = options.memberId;
    this.instanceId = options.instanceId ?? newInstanceId();
    this.#store = options.store;
    this.#timings = options.timings;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#holderValid = options.holderValid ?? leaseRunning;
    this.#acquireDelay = options.acquireDelay ?? 0;
    this.#callTimeout = options.callTimeout;
    this.#renewInterval = options.renewInterval ?? options.timings.retryPeriod;
    this.#mayAcquire = options.mayAcquire ?? (() => true);
  }

  /** True only while this member's leadership is valid at this instant (see the class comment). */
  get isLeader(): boolean {
    if (!this.#holding) return false;
    const now = this.#now();
    if (now >= this.#validUntil) this.#endTerm('its leadership lapsed (no successful renew within renewDeadline)');
    return now >= this.#leadingSince && now < this.#validUntil;
  }

  /** This member's current term while it leads, else undefined. */
  get term(): LeadershipTerm | undefined {
    return this.isLeader ? this.#term : undefined;
  }

  /** Work of the current term may outlive this member's stop: on stop, let the lease expire instead of releasing. */
  keepUntilExpiry(): void {
    this.#keepUntilExpiry = true;
  }

  /**
   * The value of `key` in the lock's leader state. The leader answers from the record it wrote last
   * (only it writes the state); any other member reads the record from the store.
   */
  async readState(key: string): Promise<JsonValue | undefined> {
    const observed = this.#observed;
    let value: JsonValue | undefined;
    if (this.isLeader && observed && this.#mine(observed.record)) value = observed.record.state?.[key];
    else {
      const current = await this.#call('get', (s) => this.#store.get(this.lock, s), this.#callTimeout ?? this.#timings.renewDeadline);
      value = current?.record.state?.[key];
    }
    // A copy: the caller may change it, and the record's state is written forward as it is.
    return value === undefined ? undefined : structuredClone(value);
  }

  /**
   * Sets `key` of the lock's leader state (undefined removes it) as the leader of `term` (default:
   * the current term). The change goes out with the next write of this member's record, at once,
   * which is the cycle's next renewal: a compare-and-swap on the version this member wrote last, so
   * it succeeds only while nobody else wrote the record since. Calls made meanwhile go out together
   * in the write after. Resolves once a write carrying the change succeeded within the term; rejects
   * with LeadershipLostError when the term ended (before or in flight), LeaderStateTooLargeError
   * above the bound, and a ConfigurationError for a value JSON cannot represent.
   */
  writeState(key: string, value: JsonValue | undefined, term?: LeadershipTerm): Promise<void> {
    try {
      checkStateKey(this.lock, key);
      const copy = value === undefined ? undefined : jsonCopy(this.lock, key, value);
      const current = this.#term;
      const wanted = term ?? current;
      const observed = this.#observed;
      if (!wanted) throw new LeadershipLostError(this.lock, this.memberId, 'it does not lead, and only the leader writes the leader state');
      if (wanted.lock !== this.lock) throw new ConfigurationError(`A term of lock ${wanted.lock} cannot write the leader state of lock ${this.lock}: pass a term of ${this.lock}`);
      // isCurrent is judged on the monotonic clock now: a leader resumed after a pause refuses here.
      const valid = current !== undefined && wanted.token === current.token && wanted.isCurrent && current.isCurrent;
      if (!this.#running || !valid || !observed || !this.#mine(observed.record)) {
        const reason = wanted.signal.reason instanceof LeadershipLostError ? wanted.signal.reason.reason : 'its term has ended';
        throw new LeadershipLostError(this.lock, this.memberId, reason, wanted.token);
      }
      checkStateSize(this.lock, key, this.#pendingState.preview(observed.record.state, key, copy));
      const done = this.#pendingState.add(key, copy);
      this.#kick();
      return done;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The member believed to lead: this one while valid, else the observed holder while its lease runs. */
  get leader(): string | undefined {
    if (this.isLeader) return this.memberId;
    const record = this.#observed?.record;
    if (!record || this.#absentSince !== undefined || record.holderIdentity === '' || this.#mine(record)) return undefined;
    return this.#observedAt + record.leaseDurationMs > this.#now() ? record.holderIdentity : undefined;
  }

  get members(): readonly string[] {
    return this.#members;
  }

  /** Transitions seen and the age of the last renewal (see LockStats). */
  get stats(): LockStats {
    const leading = this.isLeader && this.#lastRenewAt !== undefined;
    return { transitions: this.#transitions, lastRenewAgeMs: leading ? Math.max(0, this.#now() - this.#lastRenewAt!) : undefined };
  }

  /** The state last reported through 'change'. */
  get state(): ElectorChange {
    return this.#reported;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    const unwatch = this.#store.watch?.(this.lock, (version, record) => this.#onStoreChange(version, record));
    const unwatchMembers = this.#store.watchMembers?.((members) => this.#setMembers(members));
    this.#unwatch = () => {
      unwatch?.();
      unwatchMembers?.();
    };
    this.#kick();
  }

  /**
   * Stops campaigning; when holding the lock, releases it so a follower takes over at once. Says what
   * became of the lock: 'released', 'kept' (left to expire: stop({ release: false })), 'failed' (the
   * release did not reach the store: free once its lease runs out), or 'none' (not holding).
   */
  async stop(): Promise<StopOutcome> {
    if (this.#yielding) {
      this.#stopWhileYielding = true;
      await this.#yielding;
      return 'none';
    }
    if (!this.#running) return 'none';
    this.#running = false;
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#clearTimers();
    await this.#cycleDone;
    const wasHolding = this.#holding;
    const validUntil = this.#validUntil;
    // Leader state set in the term that is ending leaves with the release, the term's last write.
    const lastState = wasHolding && !this.#keepUntilExpiry && this.#term?.isCurrent ? this.#pendingState.detach() : undefined;
    this.#holding = false;
    this.#leadingSince = Infinity;
    this.#validUntil = -Infinity;
    this.#endTerm('it stopped campaigning');
    this.#report();
    let outcome: StopOutcome = 'none';
    if (wasHolding && !this.#keepUntilExpiry) outcome = await this.#release(validUntil, lastState);
    else if (wasHolding) {
      this.#logger.warn(`Member ${this.memberId} did not release ${this.lock}: work of its term may still run, so followers wait for the lease to expire`, { lock: this.lock });
      outcome = 'kept';
    }
    this.#keepUntilExpiry = false;
    this.#abort.abort();
    return outcome;
  }

  #yielding: Promise<StopOutcome> | undefined;

  /**
   * Gives the lock up as stop() does (the term ends, then the release with its marker, so a follower
   * takes over at once) and goes on campaigning as a follower: the hand-over of rebalancing. Keeping
   * off the lock afterwards is mayAcquire's job. Not while work of the term may outlive it (keepUntilExpiry).
   */
  async yield(): Promise<StopOutcome> {
    if (!this.#running || !this.#holding || this.#keepUntilExpiry || this.#yielding) return 'none';
    this.#yielding = this.stop();
    try {
      return await this.#yielding;
    } finally {
      this.#yielding = undefined;
      // stop() called meanwhile (the last view closed) waited for this one: campaign again only if it was not.
      if (!this.#stopWhileYielding) this.start();
      this.#stopWhileYielding = false;
    }
  }

  #stopWhileYielding = false;

  /** Set once a notification carried a record: the store keeps followers' observations current. */
  #watchCarriesRecords = false;

  /** A version announced while an attempt runs; checked when it ends. */
  #noticed: string | undefined;

  /** Whether this process wrote the record as its holder (member id and instance both). */
  #mine(record: LockRecord): boolean {
    return record.holderIdentity === this.memberId && record.holderInstance === this.instanceId;
  }

  /**
   * The store says the record changed. Ignore this member's own writes (their version is the one it
   * observed); react to anyone else's at once. Notices without a version are only acted on between
   * attempts, so a store that cannot name versions cannot make a member chase its own writes.
   */
  #onStoreChange(version: string | undefined, record: LockRecord | null | undefined): void {
    if (!this.#running) return;
    // A deletion is never this member's own write, whatever version it is announced with.
    if (this.#holding && (record === null || (version !== undefined && version !== this.#observed?.version)) && this.#foreign(record)) {
      // Someone else deleted or rewrote the record while this member leads: it may not be the only
      // one that thinks it holds the lock any more, so the term ends now, even mid-attempt, before any
      // further read. (Safe direction: at worst a leader steps down needlessly and takes its own record back.)
      this.#stepDownForeign(record === null ? 'its record was deleted by someone else' : `its record was rewritten by someone else (holder now "${record!.holderIdentity}")`);
    }
    if (this.#busy) {
      if (version !== undefined) this.#noticed = version;
      return;
    }
    if (version !== undefined && version === this.#observed?.version) return;
    if (record) this.#watchCarriesRecords = true;
    // A watch that resumes after a disconnection replays what happened meanwhile, which this member
    // may already have read: an older record must not replace a newer observation.
    if (record && this.#observed && olderThan(record, this.#observed.record)) return;
    if (version !== undefined && record && !this.#holding && record.holderIdentity !== '' && !this.#mine(record)) {
      // A follower sees another member's renewal in the notification itself: observe it without a
      // read, and wait for the new expiry. (Should the notification be stale, observing it later
      // than it happened only delays a takeover: the safe direction.)
      const observedAt = this.#observedAt;
      this.#absentSince = undefined;
      this.#observe({ record, version }, this.#now());
      this.#sayWaiting(record);
      this.#report();
      // Only a changed record moves the expiry. A new version of the same record (another lock's
      // write to a shared ConfigMap) must not push the next poll back, or frequent writes would
      // starve it.
      if (this.#observedAt === observedAt && this.#nextTimer) return;
      if (this.#nextTimer) clearTimeout(this.#nextTimer);
      this.#nextTimer = undefined;
      this.#scheduleNext();
      return;
    }
    this.#kick();
  }

  /**
   * A notified record this leader did not write: a deletion, or a record of another holder or
   * instance whose fencing token is not below this term's (a lower one is an old record delivered late).
   */
  #foreign(record: LockRecord | null | undefined): boolean {
    if (record === null) return true;
    if (record === undefined || this.#mine(record)) return false;
    const token = tokenOf(record);
    return !(token !== undefined && this.#term !== undefined && token < this.#term.token);
  }

  #stepDownForeign(reason: string): void {
    if (!this.#holding) return;
    this.#logger.warn(`Member ${this.memberId} stops leading ${this.lock} at once: ${reason}`, { lock: this.lock, member: this.memberId });
    this.#endTerm(reason);
    this.#notHolding();
  }

  #kick(): void {
    if (!this.#running) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    if (this.#nextTimer) clearTimeout(this.#nextTimer);
    this.#nextTimer = undefined;
    this.#cycleDone = this.#cycle();
  }

  async #cycle(): Promise<void> {
    this.#busy = true;
    try {
      do {
        this.#again = false;
        this.#noticed = undefined;
        await this.#attempt();
        if (this.#noticed !== undefined && this.#noticed !== this.#observed?.version) this.#again = true;
      } while (this.#again && this.#running);
    } finally {
      this.#busy = false;
    }
    this.#scheduleNext();
  }

  /** How long a holder this member cannot vouch for may still lead: a full lease, less the wait before leading. */
  #unknownHolderWait(): number {
    return Math.max(0, Math.max(this.#timings.leaseDuration, this.#longestLease) - this.#acquireDelay);
  }

  /** Until when the lock's holder is unknown (record gone, or emptied without a release marker), else undefined. */
  #unknownUntil(): number | undefined {
    if (this.#absentSince !== undefined) return this.#absentSince + this.#unknownHolderWait();
    const record = this.#observed?.record;
    if (record && record.holderIdentity === '' && !isRelease(record) && !this.#mine(record)) return this.#observedAt + this.#unknownHolderWait();
    return undefined;
  }

  async #attempt(): Promise<void> {
    const started = this.#now();
    this.#lastAttemptOk = false;
    this.#stateBatch = undefined;
    // A renewal must land while the leadership it extends is still valid; an acquisition that takes
    // longer than renewDeadline would start a term that is already over.
    this.#attemptDeadline = this.#holding && this.#validUntil > started ? this.#validUntil : started + this.#timings.renewDeadline;
    try {
      if (await this.#renewFast(started)) return;
      const current = await this.#call('get', (s) => this.#store.get(this.lock, s));
      const seenAt = this.#now();
      if (!current) {
        if (this.#holding) this.#stepDownForeign('its record was deleted by someone else');
        if (this.#sawRecord) {
          // The record disappeared: whoever held it may still be leading. Wait out a full lease from
          // the moment this member saw it gone before creating it again.
          if (this.#absentSince === undefined) {
            this.#absentSince = seenAt;
            // Whatever record appears next is new to this member, even under a version number the
            // old one had (the file store numbers a re-created record from 1 again).
            this.#observed = undefined;
            this.#logger.warn(`The record of ${this.lock} disappeared (deleted by someone else?): its holder is unknown, so member ${this.memberId} waits ${this.#unknownHolderWait()}ms before taking it`, { lock: this.lock });
            this.#report();
          }
          if (seenAt < this.#unknownUntil()!) {
            this.#conflictsInARow = 0;
            this.#notHolding();
            return;
          }
        }
        if (!this.#mayTake()) return;
        const created = await this.#call('create', (s) => this.#store.create(this.lock, this.#nextRecord(undefined, true), s));
        this.#absentSince = undefined;
        this.#observe(created, this.#now());
        this.#won(started, created.record);
        return;
      }
      this.#absentSince = undefined;
      this.#observe(current, seenAt);
      const record = current.record;
      if (this.#holding && !this.#mine(record)) {
        this.#stepDownForeign(record.holderIdentity === '' ? 'its record was emptied by someone else' : `its record was rewritten by someone else (holder now "${record.holderIdentity}")`);
      }
      if (!this.#mine(record)) {
        if (record.holderIdentity === '') {
          const until = this.#unknownUntil();
          if (until !== undefined && this.#now() < until) {
            this.#conflictsInARow = 0;
            this.#notHolding();
            return;
          }
        } else {
          // A holder under this member id is another process of the same name (a duplicate, or this
          // one's predecessor in a restarted container): whatever the protocol's own test (a live pod
          // in ConfigMap mode would be this very pod), it blocks only until its lease runs out unrenewed.
          const observation = { record, observedAt: this.#observedAt, now: this.#now() };
          const valid = record.holderIdentity === this.memberId ? leaseRunning(observation) : await this.#holderValid(observation);
          if (valid) {
            this.#sayWaiting(record);
            this.#conflictsInARow = 0;
            this.#notHolding();
            return;
          }
        }
      }
      if (!this.#holding && !this.#mayTake()) return;
      const written = await this.#call('update', (s) => this.#store.update(this.lock, this.#nextRecord(record, this.#freshTerm(started, record)), current.version, s));
      this.#observe(written, this.#now());
      this.#won(started, written.record);
    } catch (err) {
      if (err instanceof LockConflictError) {
        // Another member wrote first; read again at once to learn who holds the lock now.
        this.#logger.debug(`Lost a race for ${this.lock}: ${err.message}`, { lock: this.lock });
        this.#conflictsInARow += 1;
        if (this.#running && this.#conflictsInARow === 1) this.#again = true;
      } else {
        const text = err instanceof Error ? err.message : String(err);
        this.#logger.warn(maskSecrets(`Leader election for ${this.lock} could not reach its store: ${text}`), { lock: this.lock, member: this.memberId });
      }
    } finally {
      // Beside the election, not in its path: a slow membership listing must not delay a renewal.
      if (!this.#refreshing) {
        this.#refreshing = true;
        void this.#refreshMembers().finally(() => (this.#refreshing = false));
      }
    }
  }

  /** Asks mayAcquire; when it says no, this member stays a follower for this attempt. */
  #mayTake(): boolean {
    if (this.#mayAcquire()) return true;
    this.#conflictsInARow = 0;
    this.#notHolding();
    return false;
  }

  /**
   * client-go's fast path: a leader whose last write is the newest record it knows renews by writing
   * on that version, without reading first. A conflict means someone else wrote: read, as a follower would.
   */
  async #renewFast(started: number): Promise<boolean> {
    const observed = this.#observed;
    if (!this.#holding || !observed || !this.#mine(observed.record)) return false;
    try {
      const written = await this.#call('update', (s) => this.#store.update(this.lock, this.#nextRecord(observed.record, this.#freshTerm(started, observed.record)), observed.version, s));
      this.#observe(written, this.#now());
      this.#won(started, written.record);
      return true;
    } catch (err) {
      if (err instanceof LockConflictError) return false;
      throw err;
    }
  }

  /** After a lost race, read again at once, but only once: racing members must not spin on each other. */
  #conflictsInARow = 0;

  /**
   * Whether a write begun at `started` on `previous` starts a new term: unless this member is in a
   * term that is still valid and the record is its own. A holder whose validity lapsed (paused or cut
   * off past renewDeadline) has stopped the guarded work, so writing its record again is a new term.
   */
  #freshTerm(started: number, previous: LockRecord | undefined): boolean {
    return !(this.#holding && this.#term !== undefined && started < this.#validUntil && previous !== undefined && this.#mine(previous));
  }

  /**
   * The fencing token: a new term's is above the previous record's token, above every token this
   * member has seen, and at least the wall clock in milliseconds. The first two make tokens strictly
   * increase while the record exists; the clock keeps them increasing when someone deletes the record
   * and it starts again (followers that saw the deletion wait a full lease before re-creating it, so
   * the new token is higher unless the creator's clock is that far behind the previous holder's).
   */
  #nextRecord(previous: LockRecord | undefined, fresh: boolean): LockRecord {
    const now = microTime();
    const keep = previous !== undefined && this.#mine(previous);
    const previousToken = previous ? (tokenOf(previous) ?? -1) : -1;
    const fencingToken = !fresh && this.#term ? this.#term.token : Math.max(previousToken + 1, this.#highestToken + 1, Date.now());
    // The state goes forward from whichever record this one replaces, a previous holder's too; only
    // a renewal within the term adds the changes set since.
    this.#stateBatch = !fresh && this.#term && !this.#pendingState.empty ? this.#pendingState.snapshot() : undefined;
    const state = this.#stateBatch ? applyBatch(previous?.state, this.#stateBatch) : previous?.state;
    return {
      holderIdentity: this.memberId,
      holderInstance: this.instanceId,
      leaseDurationMs: this.#timings.leaseDuration,
      acquireTime: keep && !fresh ? previous.acquireTime : now,
      renewTime: now,
      leaseTransitions: previous ? (keep ? previous.leaseTransitions : previous.leaseTransitions + 1) : 0,
      fencingToken,
      ...(state ? { state } : {}),
    };
  }

  /**
   * Keeps the newest version (for the next compare-and-swap), but restarts the lease clock only when
   * the record itself changed, as client-go compares the raw record: a store whose version also
   * moves for other reasons (the one ConfigMap holding every lock) must not make a silent holder
   * look alive.
   */
  #observe(observed: VersionedRecord, at: number): void {
    const previous = this.#observed;
    this.#sawRecord = true;
    const token = tokenOf(observed.record);
    if (token !== undefined && token > this.#highestToken) this.#highestToken = token;
    if (observed.record.holderIdentity !== '' && observed.record.leaseDurationMs > this.#longestLease) this.#longestLease = observed.record.leaseDurationMs;
    // The same version is the same record, unless the record was deleted and re-created meanwhile
    // and its numbering started over: then the content differs, and it is a change.
    if (previous?.version === observed.version && sameRecord(previous.record, observed.record)) return;
    this.#observed = observed;
    if (!previous || !sameRecord(previous.record, observed.record)) {
      this.#observedAt = at;
      if (observed.record.holderIdentity === '') this.#waitingFor = undefined;
      this.#noticeSameId(observed.record);
    }
  }

  /**
   * A record held under this member id by another instance: a process that ran before this one (a
   * restart after a crash: it waits out that lease like any follower), or, once that record is seen
   * renewed, a second live process with the same member id, which is a configuration mistake.
   */
  #noticeSameId(record: LockRecord): void {
    if (record.holderIdentity !== this.memberId || this.#mine(record)) return;
    const instance = record.holderInstance ?? '(unknown: a record without an instance)';
    const seen = this.#sameIdHolder;
    if (!seen || seen.instance !== instance) {
      this.#sameIdHolder = { instance, renewTime: record.renewTime, reported: false };
      this.#logger.info(
        `${this.lock} is held under this member id ${this.memberId} by another process (instance ${instance}; this one is ${this.instanceId}): ` +
          'waiting for its lease to run out like any follower',
        { lock: this.lock, member: this.memberId },
      );
      return;
    }
    if (seen.reported || seen.renewTime === record.renewTime) return;
    seen.reported = true;
    this.#logger.error(
      `Two processes use member id ${this.memberId}: this one (instance ${this.instanceId}) and instance ${instance}, which leads ${this.lock}. ` +
        'Each process must have its own member id: set a distinct DROMEDARY_MEMBER_ID (or --member-id, or POD_NAME) for each. ' +
        'They never lead at once, but their logs and /leadership cannot tell them apart.',
      { lock: this.lock, member: this.memberId },
    );
  }

  /** The holder (member and instance) this member last said it waits for; said again only for another one. */
  #waitingFor: string | undefined;

  /**
   * Tells, once per holder, that this member waits for another's lease and when it takes over at
   * the latest: a follower is otherwise silent for as long as the holder keeps renewing.
   */
  #sayWaiting(record: LockRecord): void {
    // A process under this member's own id has its own line (see #noticeSameId).
    if (record.holderIdentity === this.memberId) return;
    const holder = `${record.holderIdentity}\n${record.holderInstance ?? ''}`;
    if (holder === this.#waitingFor) return;
    this.#waitingFor = holder;
    const remaining = this.#observedAt + record.leaseDurationMs - this.#now();
    const meta = { lock: this.lock, member: this.memberId, holder: record.holderIdentity };
    if (remaining > 0) {
      this.#logger.info(`${this.lock} is held by ${record.holderIdentity}; taking over at the latest in ${(remaining / 1000).toFixed(1)} s if it is not renewed`, meta);
    } else {
      this.#logger.info(`${this.lock} is held by ${record.holderIdentity}, whose lease ran out unrenewed but who still holds it by the protocol; waiting for it`, meta);
    }
  }

  /** A write that made this member holder succeeded; the attempt began at `started`. */
  #won(started: number, written: LockRecord): void {
    this.#conflictsInARow = 0;
    this.#waitingFor = undefined;
    this.#lastAttemptOk = true;
    if (!this.#running) {
      this.#holding = true;
      return;
    }
    const token = tokenOf(written) ?? -1;
    if (this.#holding && this.#term !== undefined && started < this.#validUntil && this.#term.token === token) {
      // A renewal within the term: the state changes it carried are stored.
      if (this.#stateBatch) this.#pendingState.settle(this.#stateBatch);
    } else if (token > this.#lastTermToken) {
      this.#endTerm('its leadership lapsed before this renewal');
      this.#holding = true;
      this.#lastTermToken = token;
      this.#term = new Term(this.lock, this.memberId, token, () => this.isLeader);
      this.#leadingSince = started + this.#acquireDelay;
      this.#logger.info(`Member ${this.memberId} begins a term of ${this.lock} with fencing token ${token}`, { lock: this.lock, token });
      if (this.#acquireDelay > 0) {
        this.#logger.info(`Member ${this.memberId} acquired ${this.lock}; leading in ${this.#acquireDelay}ms`, { lock: this.lock });
        this.#leadTimer = setTimeout(() => this.#reportOnceLeading(), Math.max(0, this.#leadingSince - this.#now()) + 1);
      }
    } else {
      // The term this write was meant to extend ended while it was in flight: the record is this
      // member's, but a term's token is never reused, so it leads again only after a write with a
      // new token, one retryPeriod from now.
      this.#endTerm('its leadership lapsed while a renewal was in flight');
      this.#holding = true;
      this.#leadingSince = Infinity;
      this.#validUntil = -Infinity;
      this.#lastAttemptOk = false;
      this.#report();
      return;
    }
    this.#validUntil = started + this.#timings.renewDeadline;
    this.#lastRenewAt = this.#now();
    if (this.#stepDownTimer) clearTimeout(this.#stepDownTimer);
    // Fires when renewDeadline passes with no successful renew: the leader steps down by itself.
    this.#stepDownTimer = setTimeout(() => this.#stepDownIfExpired(), Math.max(0, this.#validUntil - this.#now()) + 1);
    this.#report();
  }

  // Node arms timers from libuv's cached loop time, which lags this member's clock by however long
  // the current loop turn has run, so a deadline timer can fire before #now() reaches its deadline.
  // Both deadline timers then wait out the rest instead of deciding early and never firing again.

  #stepDownIfExpired(): void {
    if (!this.#holding) return;
    const early = this.#validUntil - this.#now();
    if (early > 0) {
      this.#stepDownTimer = setTimeout(() => this.#stepDownIfExpired(), Math.ceil(early) + 1);
      return;
    }
    this.#logger.warn(`Member ${this.memberId} could not renew ${this.lock} within renewDeadline (${this.#timings.renewDeadline}ms): stepping down`, {
      lock: this.lock,
    });
    this.#notHolding();
    this.#kick();
  }

  #reportOnceLeading(): void {
    const early = this.#leadingSince - this.#now();
    if (this.#holding && early > 0) {
      this.#leadTimer = setTimeout(() => this.#reportOnceLeading(), Math.ceil(early) + 1);
      return;
    }
    this.#report();
  }

  #endTerm(reason: string): void {
    const term = this.#term;
    if (!term) return;
    this.#term = undefined;
    this.#stateBatch = undefined;
    term.end(reason);
    this.#pendingState.rejectAll(term.signal.reason);
  }

  #notHolding(): void {
    this.#endTerm('another member holds the lock, or the lock could not be renewed');
    this.#holding = false;
    this.#leadingSince = Infinity;
    this.#validUntil = -Infinity;
    this.#report();
  }

  /** Emits 'change' when the (leader, isLocal) pair differs from the last one reported. */
  #report(): void {
    const isLocal = this.isLeader;
    const leader = isLocal ? this.memberId : this.leader;
    // A new term of the same leader is a change too: its listeners must learn the new term.
    const term = this.term;
    if (leader === this.#reported.leader && isLocal === this.#reported.isLocal && term === this.#reportedTerm) return;
    const previousTerm = this.#reportedTerm;
    if (previousTerm !== undefined && term !== previousTerm) this.#transitions += 1; // stopped leading
    if (term !== undefined && term !== previousTerm) this.#transitions += 1; // began a term
    if (previousTerm === undefined && term === undefined && leader !== undefined && this.#lastOther !== undefined && leader !== this.#lastOther) this.#transitions += 1;
    this.#lastOther = term !== undefined ? undefined : (leader ?? this.#lastOther);
    this.#reportedTerm = term;
    this.#reported = { leader, isLocal };
    this.emit('change', this.#reported);
  }

  #scheduleNext(): void {
    if (!this.#running) return;
    this.#report();
    const { retryPeriod, jitter } = this.#timings;
    let wait: number;
    if (this.#holding) {
      wait = this.#lastAttemptOk ? this.#renewInterval : retryPeriod;
    } else {
      wait = retryPeriod * (1 + this.#random() * (jitter - 1));
      const record = this.#observed?.record;
      const unknownUntil = this.#unknownUntil();
      const remaining =
        unknownUntil !== undefined
          ? unknownUntil - this.#now()
          : record && record.holderIdentity !== '' && !this.#mine(record)
            ? this.#observedAt + record.leaseDurationMs - this.#now()
            : 0;
      if (remaining > 0) {
        // Take over at the moment the observed lease runs out, not one poll later. A store whose
        // notifications carry records keeps this member's observation current, so it need not poll
        // before then: reading at expiry either finds a renewal it missed or takes the lock. Not
        // while its watch is down, though (an API server restart): a renewal made meanwhile would
        // only be seen at expiry, restarting the lease clock a whole lease late, so poll instead.
        const watchLive = this.#watchCarriesRecords && (this.#store.watching?.(this.lock) ?? true);
        wait = watchLive ? remaining + 1 : Math.min(wait, remaining + 1);
      }
      // Once the observed lease has run out and the lock is still not taken (the holder is still
      // valid to the protocol, as a live pod in ConfigMap mode, or the store failed), poll every
      // retryPeriod like any follower: waiting "until expiry" would mean polling without pause.
    }
    this.#nextTimer = setTimeout(() => {
      this.#nextTimer = undefined;
      this.#kick();
    }, wait);
  }

  /**
   * Writes the release marker (see LockRecord.releasedBy) by compare-and-swap on this member's own
   * record, with `lastState` (leader state set in the ending term, not yet written) applied.
   */
  async #release(validUntil: number, lastState?: StateBatch): Promise<StopOutcome> {
    const observed = this.#observed;
    const lost = (reason: string) => {
      for (const w of lastState?.waiters ?? []) w.reject(new LeadershipLostError(this.lock, this.memberId, reason));
    };
    if (!observed || !this.#mine(observed.record)) {
      lost('it stopped without holding the record');
      return 'none';
    }
    const releasing = (record: LockRecord): LockRecord => {
      const now = microTime();
      const released = { ...record, holderIdentity: '', holderInstance: this.instanceId, releasedBy: this.instanceId, leaseDurationMs: 1000, acquireTime: now, renewTime: now };
      return lastState ? withState(released, applyBatch(record.state, lastState)) : released;
    };
    // As long as a renewal could have taken (until this member's leadership would have lapsed), and at
    // least retryPeriod: later, followers are about to take over anyway, and the stop should not wait.
    this.#attemptDeadline = Math.max(validUntil, this.#now() + this.#timings.retryPeriod);
    try {
      let target = observed;
      for (let tries = 1; ; tries += 1) {
        try {
          const written = await this.#call('release', (s) => this.#store.update(this.lock, releasing(target.record), target.version, s));
          this.#observe(written, this.#now());
          for (const w of lastState?.waiters ?? []) w.resolve();
          this.#logger.info(`Member ${this.memberId} released ${this.lock}`, { lock: this.lock });
          return 'released';
        } catch (err) {
          // This process's last renewal may have landed after its call gave up on it (a timeout), so
          // the version it knows is gone though the record is still its own: read again, and release
          // while the record is still this process's.
          if (!(err instanceof LockConflictError) || tries >= 5) throw err;
          const current = await this.#call('get', (s) => this.#store.get(this.lock, s));
          if (!current || !this.#mine(current.record)) throw err;
          target = current;
        }
      }
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      this.#logger.warn(
        maskSecrets(
          `Member ${this.memberId} could not release ${this.lock} (${text}): followers take it over once its lease runs out, up to ${observed.record.leaseDurationMs}ms from its last renewal`,
        ),
        { lock: this.lock, member: this.memberId },
      );
      lost(`it stopped, and its release, which carried the leader state, failed (${text})`);
      return 'failed';
    }
  }

  #refreshing = false;

  async #refreshMembers(): Promise<void> {
    if (!this.#running) return;
    try {
      // Membership is informational: its calls get retryPeriod each, so a slow listing never holds up a renewal for long.
      const bound = this.#callTimeout ?? this.#timings.retryPeriod;
      if (this.#store.heartbeat) await this.#call('heartbeat', (s) => this.#store.heartbeat!(this.lock, this.memberId, s), bound);
      if (!this.#store.members) return;
      this.#setMembers(await this.#call('members', (s) => this.#store.members!(this.lock, s), bound));
    } catch (err) {
      this.#logger.debug(`Could not list members of ${this.lock}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #setMembers(list: readonly string[]): void {
    const members = list.slice().sort();
    if (members.join('\n') === this.#members.join('\n')) return;
    this.#members = members;
    this.emit('members', members);
  }

  /**
   * Runs a store call with a timeout that also bounds a store ignoring its signal: the callTimeout
   * option, else what the attempt's renew deadline still allows (at least 1 ms).
   */
  #call<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>, bound?: number): Promise<T> {
    const ms = Math.max(1, Math.ceil(bound ?? this.#callTimeout ?? this.#attemptDeadline - this.#now()));
    const controller = new AbortController();
    const onStop = () => controller.abort();
    this.#abort.signal.addEventListener('abort', onStop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new LockStoreTimeoutError(this.lock, operation, ms));
      }, ms);
    });
    return Promise.race([fn(controller.signal), timeout]).finally(() => {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onStop);
    });
  }

  #clearTimers(): void {
    for (const t of [this.#nextTimer, this.#stepDownTimer, this.#leadTimer]) if (t) clearTimeout(t);
    this.#nextTimer = this.#stepDownTimer = this.#leadTimer = undefined;
  }
}

/** `record` with `state` as its leader state (none when undefined). */
function withState(record: LockRecord, state: LockRecord['state']): LockRecord {
  const { state: _previous, ...rest } = record;
  return state ? { ...rest, state } : rest;
}

/** Whether `a` is an earlier state of the lock than `b`: a lower fencing token, or the same term renewed earlier. */
function olderThan(a: LockRecord, b: LockRecord): boolean {
  const [ta, tb] = [tokenOf(a), tokenOf(b)];
  if (ta === undefined || tb === undefined) return false;
  return ta < tb || (ta === tb && a.holderInstance === b.holderInstance && a.renewTime !== '' && b.renewTime !== '' && Date.parse(a.renewTime) < Date.parse(b.renewTime));
}

/** The default holder test: the record changed less than its lease ago, by this member's clock. */
function leaseRunning(o: Observation): boolean {
  return o.observedAt + o.record.leaseDurationMs > o.now;
}

export type StopOutcome = 'released' | 'kept' | 'failed' | 'none';

/** A record's fencing token, if it has one (records of older versions and other tools have none). */
function tokenOf(record: LockRecord): number | undefined {
  return typeof record.fencingToken === 'number' && Number.isFinite(record.fencingToken) ? record.fencingToken : undefined;
}

function sameRecord(a: LockRecord, b: LockRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationMs === b.leaseDurationMs &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions &&
    a.holderInstance === b.holderInstance &&
    a.releasedBy === b.releasedBy &&
    a.fencingToken === b.fencingToken &&
    sameState(a.state, b.state)
  );
}
