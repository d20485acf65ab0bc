import { EventEmitter } from 'node:events';
import { LeadershipLostError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import type { LeadershipTerm } from '../cluster-service.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { LockConflictError, LockStoreTimeoutError, microTime, type LockRecord, type LockStore, type VersionedRecord } from './lock-store.ts';
import type { ElectionTimings } from './timings.ts';

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
 * - On a graceful stop the leader writes the record with no holder, so a follower takes over at once.
 * - Some protocols (Camel's ConfigMap one) also wait `acquireDelay` after taking the lock before leading.
 */
export interface ElectorOptions {
  lock: string;
  memberId: string;
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
  /** Timeout of each store call. Default: retryPeriod. */
  callTimeout?: number;
  /**
   * Time between a leader's successful renewals. Default retryPeriod, as client-go; a longer one
   * (such as renewDeadline / 3) saves requests and still leaves several retries, every retryPeriod,
   * before renewDeadline.
   */
  renewInterval?: number;
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
  readonly #store: LockStore;
  readonly #timings: ElectionTimings;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #holderValid: (o: Observation) => boolean | Promise<boolean>;
  readonly #acquireDelay: number;
  readonly #callTimeout: number;
  readonly #renewInterval: number;
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
  /** This member holds the record (its last write made it holder). */
  #holding = false;
  #leadingSince = Infinity;
  #validUntil = -Infinity;
  #reported: ElectorChange = { leader: undefined, isLocal: false };
  #members: string[] = [];
  /** The current term while holding; ended (its signal aborted) as soon as this member knows it lapsed. */
  #term: Term | undefined;
  #reportedTerm: LeadershipTerm | undefined;
  /** Set by stop({ release: false }) callers: work of the term may still run, so never release. */
  #keepUntilExpiry = false;

  constructor(options: ElectorOptions) {
    super();
    this.lock = options.lock;
    this.memberId = options.memberId;
    this.#store = options.store;
    this.#timings = options.timings;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#holderValid = options.holderValid ?? ((o) => o.observedAt + o.record.leaseDurationMs > o.now);
    this.#acquireDelay = options.acquireDelay ?? 0;
    this.#callTimeout = options.callTimeout ?? options.timings.retryPeriod;
    this.#renewInterval = options.renewInterval ?? options.timings.retryPeriod;
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

  /** The member believed to lead: this one while valid, else the observed holder while its lease runs. */
  get leader(): string | undefined {
    if (this.isLeader) return this.memberId;
    const record = this.#observed?.record;
    if (!record || record.holderIdentity === '' || record.holderIdentity === this.memberId) return undefined;
    return this.#observedAt + record.leaseDurationMs > this.#now() ? record.holderIdentity : undefined;
  }

  get members(): readonly string[] {
    return this.#members;
  }

  /** The state last reported through 'change'. */
  get state(): ElectorChange {
    return this.#reported;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.#unwatch = this.#store.watch?.(this.lock, (version, record) => this.#onStoreChange(version, record));
    this.#kick();
  }

  /** Stops campaigning; when holding the lock, releases it so a follower takes over at once. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#clearTimers();
    await this.#cycleDone;
    const wasHolding = this.#holding;
    this.#holding = false;
    this.#leadingSince = Infinity;
    this.#validUntil = -Infinity;
    this.#endTerm('it stopped campaigning');
    this.#report();
    if (wasHolding && !this.#keepUntilExpiry) await this.#release();
    else if (wasHolding) this.#logger.warn(`Member ${this.memberId} did not release ${this.lock}: work of its term may still run, so followers wait for the lease to expire`, { lock: this.lock });
    this.#keepUntilExpiry = false;
    this.#abort.abort();
  }

  /** Set once a notification carried a record: the store keeps followers' observations current. */
  #watchCarriesRecords = false;

  /** A version announced while an attempt runs; checked when it ends. */
  #noticed: string | undefined;

  /**
   * The store says the record changed. Ignore this member's own writes (their version is the one it
   * observed); react to anyone else's at once. Notices without a version are only acted on between
   * attempts, so a store that cannot name versions cannot make a member chase its own writes.
   */
  #onStoreChange(version: string | undefined, record: LockRecord | undefined): void {
    if (!this.#running) return;
    if (this.#busy) {
      if (version !== undefined) this.#noticed = version;
      return;
    }
    if (version !== undefined && version === this.#observed?.version) return;
    if (record !== undefined) this.#watchCarriesRecords = true;
    if (version !== undefined && record !== undefined && !this.#holding && record.holderIdentity !== '' && record.holderIdentity !== this.memberId) {
      // A follower sees another member's renewal in the notification itself: observe it without a
      // read, and wait for the new expiry. (Should the notification be stale, observing it later
      // than it happened only delays a takeover: the safe direction.)
      const observedAt = this.#observedAt;
      this.#observe({ record, version }, this.#now());
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

  async #attempt(): Promise<void> {
    const started = this.#now();
    this.#lastAttemptOk = false;
    try {
      if (await this.#renewFast(started)) return;
      const current = await this.#call('get', (s) => this.#store.get(this.lock, s));
      const seenAt = this.#now();
      if (!current) {
        const created = await this.#call('create', (s) => this.#store.create(this.lock, this.#nextRecord(undefined), s));
        this.#observe(created, this.#now());
        this.#won(started);
        return;
      }
      this.#observe(current, seenAt);
      const holder = current.record.holderIdentity;
      if (holder !== this.memberId && holder !== '') {
        const valid = await this.#holderValid({ record: current.record, observedAt: this.#observedAt, now: this.#now() });
        if (valid) {
          this.#conflictsInARow = 0;
          this.#notHolding();
          return;
        }
      }
      const written = await this.#call('update', (s) => this.#store.update(this.lock, this.#nextRecord(current.record), current.version, s));
      this.#observe(written, this.#now());
      this.#won(started);
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
      await this.#refreshMembers();
    }
  }

  /**
   * client-go's fast path: a leader whose last write is the newest record it knows renews by writing
   * on that version, without reading first. A conflict means someone else wrote: read, as a follower would.
   */
  async #renewFast(started: number): Promise<boolean> {
    const observed = this.#observed;
    if (!this.#holding || !observed || observed.record.holderIdentity !== this.memberId) return false;
    try {
      const written = await this.#call('update', (s) => this.#store.update(this.lock, this.#nextRecord(observed.record), observed.version, s));
      this.#observe(written, this.#now());
      this.#won(started);
      return true;
    } catch (err) {
      if (err instanceof LockConflictError) return false;
      throw err;
    }
  }

  /** After a lost race, read again at once, but only once: racing members must not spin on each other. */
  #conflictsInARow = 0;

  #nextRecord(previous: LockRecord | undefined): LockRecord {
    const now = microTime();
    const keep = previous && previous.holderIdentity === this.memberId;
    return {
      holderIdentity: this.memberId,
      leaseDurationMs: this.#timings.leaseDuration,
      acquireTime: keep ? previous.acquireTime : now,
      renewTime: now,
      leaseTransitions: previous ? (keep ? previous.leaseTransitions : previous.leaseTransitions + 1) : 0,
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
    if (previous?.version === observed.version) return;
    this.#observed = observed;
    if (!previous || !sameRecord(previous.record, observed.record)) this.#observedAt = at;
  }

  /** A write that made this member holder succeeded; the attempt began at `started`. */
  #won(started: number): void {
    this.#conflictsInARow = 0;
    this.#lastAttemptOk = true;
    if (!this.#running) {
      this.#holding = true;
      return;
    }
    // A holder whose validity lapsed (paused or cut off past renewDeadline) has stopped the guarded
    // work; writing the record again is a fresh acquisition, with the protocol's wait before leading.
    if (!this.#holding || started >= this.#validUntil) {
      this.#endTerm('its leadership lapsed before this renewal');
      this.#holding = true;
      this.#term = new Term(this.lock, this.memberId, this.#observed!.record.leaseTransitions, () => this.isLeader);
      this.#leadingSince = started + this.#acquireDelay;
      if (this.#acquireDelay > 0) {
        this.#logger.info(`Member ${this.memberId} acquired ${this.lock}; leading in ${this.#acquireDelay}ms`, { lock: this.lock });
        this.#leadTimer = setTimeout(() => this.#reportOnceLeading(), Math.max(0, this.#leadingSince - this.#now()) + 1);
      }
    }
    this.#validUntil = started + this.#timings.renewDeadline;
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
    term.end(new LeadershipLostError(this.lock, this.memberId, reason, term.token));
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
      const remaining = record && record.holderIdentity !== '' && record.holderIdentity !== this.memberId ? this.#observedAt + record.leaseDurationMs - this.#now() : 0;
      if (remaining > 0) {
        // Take over at the moment the observed lease runs out, not one poll later. A store whose
        // notifications carry records keeps this member's observation current, so it need not poll
        // before then: reading at expiry either finds a renewal it missed or takes the lock.
        wait = this.#watchCarriesRecords ? remaining + 1 : Math.min(wait, remaining + 1);
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

  async #release(): Promise<void> {
    const observed = this.#observed;
    if (!observed || observed.record.holderIdentity !== this.memberId) return;
    const now = microTime();
    const released: LockRecord = { ...observed.record, holderIdentity: '', leaseDurationMs: 1000, acquireTime: now, renewTime: now };
    try {
      const written = await this.#call('release', (s) => this.#store.update(this.lock, released, observed.version, s));
      this.#observe(written, this.#now());
      this.#logger.info(`Member ${this.memberId} released ${this.lock}`, { lock: this.lock });
    } catch (err) {
      this.#logger.debug(`Could not release ${this.lock}: ${err instanceof Error ? err.message : String(err)}`, { lock: this.lock });
    }
  }

  async #refreshMembers(): Promise<void> {
    if (!this.#running) return;
    try {
      if (this.#store.heartbeat) await this.#call('heartbeat', (s) => this.#store.heartbeat!(this.lock, this.memberId, s));
      if (!this.#store.members) return;
      const members = (await this.#call('members', (s) => this.#store.members!(this.lock, s))).slice().sort();
      if (members.join('\n') !== this.#members.join('\n')) {
        this.#members = members;
        this.emit('members', members);
      }
    } catch (err) {
      this.#logger.debug(`Could not list members of ${this.lock}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Runs a store call with a timeout that also bounds a store ignoring its signal. */
  #call<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ms = this.#callTimeout;
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

class Term implements LeadershipTerm {
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

  end(reason: LeadershipLostError): void {
    this.#controller.abort(reason);
  }
}

function sameRecord(a: LockRecord, b: LockRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationMs === b.leaseDurationMs &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}
