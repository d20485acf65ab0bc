import type { Logger } from '../../logging/logger.ts';
import { isRelease, LockConflictError, microTime, type LockRecord, type LockStore, type VersionedRecord } from './lock-store.ts';
import type { ElectionTimings } from './timings.ts';

/** One member process's heartbeat: who wrote it, when (informational), and the locks it keeps alive. */
export interface HeartbeatRecord {
  member: string;
  instance: string;
  renewTime: string;
  /** The locks this heartbeat vouches for: a lock record naming this heartbeat stays alive only while listed. */
  locks: readonly string[];
}

export interface VersionedHeartbeat {
  readonly record: HeartbeatRecord;
  /** Opaque; compared for equality only. Every write gives a new one. */
  readonly version: string;
}

/**
 * What a store offers for heartbeat mode, beside its lock records: one heartbeat record per member
 * process, written only by that process, and a way to read all the lock records one process holds.
 */
export interface HeartbeatBackend extends LockStore {
  /** The name of the heartbeat record of a process (a member id and an instance id). */
  heartbeatKey(memberId: string, instanceId: string): string;
  readHeartbeat(key: string, signal: AbortSignal): Promise<VersionedHeartbeat | undefined>;
  /** Writes (creates or replaces) this process's own heartbeat record. */
  writeHeartbeat(key: string, record: HeartbeatRecord, signal: AbortSignal): Promise<VersionedHeartbeat>;
  /** Calls back with each new version of a heartbeat record (`null`: deleted). */
  watchHeartbeat?(key: string, onChange: (heartbeat: VersionedHeartbeat | null) => void): () => void;
  /**
   * The current records of `locks` that name heartbeat `key` (others may be left out), read after
   * every write that finished before the call: one listing where the store can select by holder.
   */
  readHeld(key: string, locks: readonly string[], signal: AbortSignal): Promise<Map<string, VersionedRecord>>;
  removeHeartbeat?(key: string, signal: AbortSignal): Promise<void>;
  /** Calls back with each new version of every heartbeat record (`null`: deleted), for the member list. */
  watchHeartbeats?(onChange: (key: string, heartbeat: VersionedHeartbeat | null) => void): () => void;
  /** Every heartbeat record: read at each round, for the member list, while watchHeartbeats is missing or down. */
  listHeartbeats?(signal: AbortSignal): Promise<Map<string, VersionedHeartbeat>>;
}

export interface HeartbeatLockStoreOptions {
  backend: HeartbeatBackend;
  memberId: string;
  instanceId: string;
  timings: ElectionTimings;
  /** Time between heartbeat rounds (the renew interval). */
  interval: number;
  /**
   * 'heartbeat' (default): renewals join the heartbeat. 'per-lock': every renewal writes the lock's
   * record, as client-go does; records other members wrote in heartbeat mode are still judged by
   * their heartbeat, so a cluster can move between the two modes member by member.
   */
  renewals?: 'heartbeat' | 'per-lock';
  /**
   * Whether the heartbeat records are the member list (members(), rebalancing's liveness). Always in
   * heartbeat mode; in per-lock mode when asked (rebalancing on a store that has no member list of its own).
   */
  membership?: boolean;
  logger: Logger;
  now?: () => number;
}

/** A pure renewal waiting for the next heartbeat round. */
interface Waiter {
  lock: string;
  resolve: (v: VersionedRecord) => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

interface Held {
  /** The record as stored (with `heartbeat`). */
  stored: LockRecord;
  lockVersion: string;
  /** Monotonic time of the elector's last renewal call for it. */
  lastCall: number;
}

/** Composite versions: `<lock record version>\n<heartbeat part>`; a record naming no heartbeat has its plain version. */
const SEP = '\n';
/** The heartbeat part when the heartbeat is missing, and when it no longer lists the lock. */
const ABSENT = '-';
const UNLISTED = 'u';
const UNKNOWN = '?';

/**
 * Renewals independent of the number of locks: a LockStore decorator over a store that also keeps
 * one heartbeat record per member process. The Elector's protocol is unchanged; what it sees as a
 * record's version is the lock record's version plus its holder's heartbeat version, and as its
 * renewTime the heartbeat's. So a holder's heartbeat write changes the version of every lock it
 * holds (watch notifications included), and the followers' rule, "take the lock once its record has
 * not changed for leaseDuration by my own clock", moves one level up unchanged.
 *
 * Why it is safe:
 * - A leader's pure renewal (same holder instance, term, token and state; only renewTime moves)
 *   does not write the lock record. It joins this process's next heartbeat round: one heartbeat
 *   write W, started after every renewal call it serves began, then one read L of this process's
 *   lock records (one LIST in Kubernetes), started after W ended. A call resolves only when L shows
 *   its lock record unchanged and still this process's; otherwise it fails with a conflict, and the
 *   elector reads and steps down. The elector counts validity from its call's start, before W began.
 * - A follower takes a lock from a holder that did not release it with a compare-and-swap of the lock
 *   record (at T), then reads the holder's heartbeat (R, after T). Unchanged since the version its
 *   takeover was based on (or still missing): it leads. Otherwise a heartbeat landed in between and
 *   the old holder may have confirmed a round before T, so the follower puts the record back as it
 *   was (compare-and-swap) and fails with a conflict: the elector keeps waiting, from the new version.
 *   Any round of the old holder whose L started after T sees the new record and fails. A round whose
 *   L started before T wrote its W before T, so R sees W or a later heartbeat; if the takeover was
 *   based on W's version (or a later one), the follower saw W land and waited leaseDuration since,
 *   past that round's validity (renewDeadline < leaseDuration). A rollback that cannot be written is
 *   retried before any other call on that lock, so the follower never leads on it.
 * - A heartbeat vouches only for the locks it lists: those this process holds and whose elector still
 *   runs and renews. An elector that stops without releasing (its work may outlive it) is dropped from
 *   the list, so its record stops changing and followers take it a lease later, as before. Rounds run
 *   only for waiting renewals (electors call every half round at most, see heartbeatCadence), so a
 *   process whose electors all stopped writes no more heartbeats.
 * - A round that serves a single lock renews that lock's record instead (one compare-and-swap, the
 *   one-record-per-lock renewal), which costs one request where a heartbeat and a listing cost two.
 * - Releases, acquisitions and every other write (a new term, a new token, leader state) are plain
 *   compare-and-swaps of the lock record, as without heartbeats; releases stay instant.
 * - All members of a lock must judge records this way (a member that judged a heartbeat-mode record
 *   by the lock record alone would take it from a live holder): every dromedary member does, in
 *   either renewal mode.
 */
export class HeartbeatLockStore implements LockStore {
  readonly #backend: HeartbeatBackend;
  readonly #member: string;
  readonly #instance: string;
  readonly #key: string;
  readonly #timings: ElectionTimings;
  readonly #interval: number;
  readonly #mode: 'heartbeat' | 'per-lock';
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #membership: boolean;
  readonly members?: LockStore['members'];
  readonly watchMembers?: LockStore['watchMembers'];
  readonly heartbeat?: LockStore['heartbeat'];
  readonly watching?: LockStore['watching'];

  /** Locks whose record this process holds in heartbeat mode. */
  readonly #held = new Map<string, Held>();
  /** The last lock record read or written per lock, raw (with `heartbeat`). */
  readonly #raw = new Map<string, VersionedRecord>();
  /** The last composite version and record given to the elector per lock. */
  readonly #presented = new Map<string, VersionedRecord>();
  /** Heartbeats of other processes as last seen (`null`: missing). */
  readonly #heartbeats = new Map<string, VersionedHeartbeat | null>();
  #ownHeartbeat: VersionedHeartbeat | undefined;
  /** Monotonic time of this process's last heartbeat write. */
  #ownHeartbeatAt = -Infinity;
  /** Every heartbeat record seen, for the member list: its version and when it last changed, by this process's clock. */
  readonly #beatsSeen = new Map<string, { member: string; version: string; changedAt: number }>();
  #liveMembers: string[];
  readonly #memberListeners = new Set<(members: string[]) => void>();
  #stopHeartbeatsWatch: (() => void) | undefined;
  #membersTimer: NodeJS.Timeout | undefined;
  readonly #heartbeatWatches = new Map<string, () => void>();
  readonly #watches = new Map<string, { listeners: Set<(version?: string, record?: LockRecord | null) => void>; unsubscribe: () => void }>();
  /** Store calls in flight per lock: notifications meanwhile wait, so the elector can match its own writes by version. */
  readonly #inflight = new Map<string, number>();
  readonly #deferred = new Map<string, Array<[string | undefined, LockRecord | null | undefined]>>();
  /** Takeovers to undo (see the class comment) whose rollback could not be written yet. */
  readonly #rollbacks = new Map<string, { version: string; record: LockRecord }>();

  #waiters: Waiter[] = [];
  #roundTimer: NodeJS.Timeout | undefined;
  #roundDue = Infinity;
  #roundRunning = false;
  #lastRoundStart = -Infinity;
  #lastRoundFailed = false;
  #closed = false;
  /** Heartbeat writes made (for tests and the bench). */
  heartbeatWrites = 0;

  constructor(options: HeartbeatLockStoreOptions) {
    const backend = options.backend;
    this.#backend = backend;
    this.#member = options.memberId;
    this.#instance = options.instanceId;
    this.#key = backend.heartbeatKey(options.memberId, options.instanceId);
    this.#timings = options.timings;
    this.#interval = options.interval;
    this.#mode = options.renewals ?? 'heartbeat';
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#membership = this.#mode === 'heartbeat' || options.membership === true;
    this.#liveMembers = [this.#member];
    if (this.#membership) {
      // The heartbeats are the member list: no per-lock membership files or calls.
      this.members = async () => this.#liveMembers;
      this.watchMembers = (onChange) => {
        this.#memberListeners.add(onChange);
        return () => this.#memberListeners.delete(onChange);
      };
    } else if (backend.members) this.members = (lock, signal) => backend.members!(lock, signal);
    if (backend.heartbeat && !this.#membership) {
      this.heartbeat = (lock, memberId, signal) => backend.heartbeat!(lock, memberId, signal);
    }
    if (backend.watching) this.watching = (lock) => backend.watching!(lock);
  }

  get renewals(): 'heartbeat' | 'per-lock' {
    return this.#mode;
  }

  async get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    return this.#tracked(lock, async () => {
      await this.#finishRollback(lock, signal);
      const raw = await this.#backend.get(lock, signal);
      if (!raw) {
        this.#raw.delete(lock);
        this.#held.delete(lock);
        return undefined;
      }
      this.#raw.set(lock, raw);
      const key = raw.record.heartbeat;
      if (key && key !== this.#key) {
        this.#watchHeartbeat(key);
        this.#heartbeats.set(key, (await this.#backend.readHeartbeat(key, signal)) ?? null);
      }
      const held = this.#held.get(lock);
      if (held && raw.version !== held.lockVersion && !sameContent(raw.record, held.stored)) this.#held.delete(lock);
      return this.#present(lock, raw);
    });
  }

  async create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    return this.#tracked(lock, async () => {
      await this.#finishRollback(lock, signal);
      const stored = this.#toStored(record);
      const written = await this.#backend.create(lock, stored, signal);
      return this.#afterWrite(lock, written);
    });
  }

  async update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord> {
    const held = this.#held.get(lock);
    if (held) held.lastCall = this.#now();
    // The lock record's part of the version decides: the heartbeat part moves with every round, and a
    // renewal based on any of this process's own heartbeats is still based on the same lock record.
    if (this.#mode === 'heartbeat' && held && !this.#rollbacks.has(lock) && splitVersion(expectedVersion)[0] === held.lockVersion && sameContent(this.#toStored(record), held.stored)) {
      return this.#joinRound(lock, signal);
    }
    return this.#tracked(lock, async () => {
      await this.#finishRollback(lock, signal);
      const [lockVersion, basedOn] = splitVersion(expectedVersion);
      let previous = this.#raw.get(lock);
      if (previous?.version !== lockVersion) {
        previous = await this.#backend.get(lock, signal);
        if (!previous || previous.version !== lockVersion) throw new LockConflictError(lock, 'the record changed since it was read');
      }
      const stored = this.#toStored(record);
      const written = await this.#backend.update(lock, stored, lockVersion, signal);
      const from = previous.record;
      const takeover = from.heartbeat !== undefined && from.holderInstance !== this.#instance && from.holderIdentity !== '' && !isRelease(from) && stored.holderIdentity !== '';
      if (takeover) await this.#confirmTakeover(lock, from, previous, written, basedOn ?? UNKNOWN, signal);
      return this.#afterWrite(lock, written);
    });
  }

  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    let entry = this.#watches.get(lock);
    if (!entry) {
      const listeners = new Set<(version?: string, record?: LockRecord | null) => void>();
      const unsubscribe = this.#backend.watch?.(lock, (version, record) => this.#onLockEvent(lock, version, record)) ?? (() => undefined);
      entry = { listeners, unsubscribe };
      this.#watches.set(lock, entry);
      this.#startMembership();
    }
    entry.listeners.add(onChange);
    const current = entry;
    return () => {
      current.listeners.delete(onChange);
      if (current.listeners.size > 0 || this.#watches.get(lock) !== current) return;
      current.unsubscribe();
      this.#watches.delete(lock);
      // The elector stopped: its heartbeat no longer vouches for the lock, and a renewal it awaits is moot.
      this.#held.delete(lock);
      for (const w of this.#waiters.filter((x) => x.lock === lock)) this.#settle(w, undefined, new LockConflictError(lock, 'its elector stopped'));
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#roundTimer) clearTimeout(this.#roundTimer);
    this.#roundTimer = undefined;
    if (this.#gapTimer) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
    for (const w of [...this.#waiters]) this.#settle(w, undefined, new LockConflictError(w.lock, 'the store closed'));
    for (const stop of this.#heartbeatWatches.values()) stop();
    this.#heartbeatWatches.clear();
    for (const { unsubscribe } of this.#watches.values()) unsubscribe();
    this.#watches.clear();
    this.#stopMembership();
    // A graceful stop leaves no heartbeat behind (a lock kept until expiry then counts as changed once: the safe direction).
    if (this.#ownHeartbeat && this.#held.size === 0) {
      await this.#backend.removeHeartbeat?.(this.#key, AbortSignal.timeout(this.#timings.retryPeriod)).catch(() => undefined);
    }
    await this.#backend.close?.();
  }

  /** A holder write in heartbeat mode names this process's heartbeat; anything else names none. */
  #toStored(record: LockRecord): LockRecord {
    const { heartbeat: _ignored, ...rest } = record;
    if (this.#mode === 'heartbeat' && record.holderIdentity !== '' && record.holderInstance === this.#instance) return { ...rest, heartbeat: this.#key };
    return rest;
  }

  #afterWrite(lock: string, written: VersionedRecord): VersionedRecord {
    this.#raw.set(lock, written);
    if (written.record.heartbeat === this.#key) {
      this.#held.set(lock, { stored: written.record, lockVersion: written.version, lastCall: this.#now() });
      // The heartbeat lists the lock from the next round on; until then the record stands alone.
      this.#scheduleRound();
    } else this.#held.delete(lock);
    return this.#present(lock, written);
  }

  /** The composite version and record the elector sees (see the class comment). */
  #present(lock: string, raw: VersionedRecord): VersionedRecord {
    const { heartbeat: key, ...record } = raw.record;
    let presented: VersionedRecord;
    if (!key) presented = { version: raw.version, record };
    else {
      const beat = key === this.#key ? (this.#ownHeartbeat ?? null) : this.#heartbeats.get(key);
      const part = heartbeatPart(beat, lock, record.holderInstance);
      const renewTime = beat && part === beat.version ? beat.record.renewTime : record.renewTime;
      presented = { version: `${raw.version}${SEP}${part}`, record: { ...record, renewTime } };
    }
    this.#presented.set(lock, presented);
    return presented;
  }

  async #confirmTakeover(lock: string, from: LockRecord, previous: VersionedRecord, written: VersionedRecord, basedOn: string, signal: AbortSignal): Promise<void> {
    let now: string;
    try {
      const beat = (await this.#backend.readHeartbeat(from.heartbeat!, signal)) ?? null;
      this.#heartbeats.set(from.heartbeat!, beat);
      now = heartbeatPart(beat, lock, from.holderInstance);
    } catch (err) {
      await this.#rollback(lock, previous.record, written.version, signal);
      throw err;
    }
    if (now === basedOn) return;
    this.#logger.info(`Member ${this.#member} gives ${lock} back to ${from.holderIdentity}: its heartbeat changed while this member took the lock`, { lock });
    await this.#rollback(lock, previous.record, written.version, signal);
    throw new LockConflictError(lock, `the heartbeat of ${from.holderIdentity} changed while this member took the lock`);
  }

  async #rollback(lock: string, record: LockRecord, version: string, signal: AbortSignal): Promise<void> {
    this.#rollbacks.set(lock, { version, record });
    await this.#finishRollback(lock, signal).catch(() => undefined);
  }

  /** Writes a pending rollback back, before anything else on that lock; a conflict means someone else wrote since. */
  async #finishRollback(lock: string, signal: AbortSignal): Promise<void> {
    const pending = this.#rollbacks.get(lock);
    if (!pending) return;
    try {
      const restored = await this.#backend.update(lock, pending.record, pending.version, signal);
      this.#raw.set(lock, restored);
    } catch (err) {
      if (!(err instanceof LockConflictError)) throw err;
    }
    this.#rollbacks.delete(lock);
    this.#held.delete(lock);
  }

  #joinRound(lock: string, signal: AbortSignal): Promise<VersionedRecord> {
    return new Promise<VersionedRecord>((resolve, reject) => {
      const onAbort = () => this.#settle(waiter, undefined, signal.reason ?? new Error('aborted'));
      const waiter: Waiter = { lock, resolve, reject, cleanup: () => signal.removeEventListener('abort', onAbort) };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#scheduleRound();
    });
  }

  #settle(waiter: Waiter, value: VersionedRecord | undefined, err?: unknown): void {
    const i = this.#waiters.indexOf(waiter);
    if (i >= 0) this.#waiters.splice(i, 1);
    waiter.cleanup();
    if (err !== undefined) waiter.reject(err);
    else waiter.resolve(value!);
  }

  /**
   * Rounds run every interval while this process holds a lock or a renewal waits (every retryPeriod
   * after a failed one), on their own cadence: renewals of every lock meet in the same round.
   */
  #scheduleRound(): void {
    if (this.#closed || this.#roundRunning) return;
    // Rounds serve renewals: electors call more often than rounds run (see heartbeatCadence), so a
    // lock whose elector stopped calling is no longer kept alive by them. With membership, they also
    // run while any elector runs, so followers are seen alive without polling.
    const serving = this.#waiters.length > 0;
    if (!serving && !(this.#membership && this.#watches.size > 0)) return;
    const gap = this.#lastRoundFailed ? this.#timings.retryPeriod : serving ? this.#interval : this.#memberBeat;
    const now = this.#now();
    const due = Math.max(now, this.#lastRoundStart + gap);
    // A renewal arriving while only a member-list round is planned brings it forward.
    if (this.#roundTimer && this.#roundDue <= due) return;
    if (this.#roundTimer) clearTimeout(this.#roundTimer);
    this.#roundDue = due;
    this.#roundTimer = setTimeout(() => {
      this.#roundTimer = undefined;
      void this.#round();
    }, due - now);
  }

  /**
   * How often the heartbeat changes for the member list alone (a member that waits for no renewal):
   * every leaseDuration / 3, so that others, who read or hear of it at the same pace at worst, see it
   * change within a lease.
   */
  get #memberBeat(): number {
    return Math.max(1, Math.floor(this.#timings.leaseDuration / 3));
  }

  async #round(): Promise<void> {
    if (this.#closed) return;
    this.#roundRunning = true;
    const started = this.#now();
    this.#lastRoundStart = started;
    const served = [...this.#waiters];
    // An elector that stopped calling (paused work, a stuck elector) is not vouched for beyond a lease.
    for (const [lock, held] of this.#held) if (started - held.lastCall > this.#timings.leaseDuration && !served.some((w) => w.lock === lock)) this.#held.delete(lock);
    const locks = [...new Set([...this.#held.keys(), ...served.map((w) => w.lock)])].filter((lock) => this.#held.has(lock)).sort();
    const signal = AbortSignal.timeout(this.#timings.renewDeadline);
    // One lock renews its record alone, while the member list does not need the heartbeat written (see #beatDue).
    if (locks.length === 1 && !this.#beatDue(started)) {
      await this.#renewAlone(locks[0]!, served, signal);
      this.#roundRunning = false;
      this.#scheduleRound();
      return;
    }
    try {
      const beat = await this.#backend.writeHeartbeat(this.#key, { member: this.#member, instance: this.#instance, renewTime: microTime(), locks }, signal);
      this.heartbeatWrites += 1;
      this.#ownHeartbeat = beat;
      this.#ownHeartbeatAt = started;
      const current = locks.length > 0 ? await this.#backend.readHeld(this.#key, locks, signal) : new Map<string, VersionedRecord>();
      const confirmed = new Map<string, VersionedRecord>();
      for (const lock of locks) {
        const held = this.#held.get(lock);
        const seen = current.get(lock);
        if (held && seen && sameContent(seen.record, held.stored)) {
          held.lockVersion = seen.version;
          this.#raw.set(lock, seen);
          confirmed.set(lock, this.#present(lock, seen));
        } else if (held && this.#held.get(lock) === held) this.#held.delete(lock);
      }
      for (const w of served) {
        const ok = confirmed.get(w.lock);
        this.#settle(w, ok, ok ? undefined : new LockConflictError(w.lock, 'its record was changed by someone else (seen by the heartbeat round)'));
      }
      this.#lastRoundFailed = false;
      await this.#listMembers(signal);
    } catch (err) {
      this.#lastRoundFailed = true;
      for (const w of served) this.#settle(w, undefined, err);
      this.#logger.debug(`Heartbeat round of ${this.#member} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.#roundRunning = false;
    }
    this.#scheduleRound();
  }

  /**
   * A round for a single lock writes its record (a compare-and-swap, as client-go's renewal) instead
   * of a heartbeat and a listing: one request, not two. Its new version restarts followers' clocks as
   * a heartbeat would, and a record someone else changed fails the compare-and-swap.
   */
  async #renewAlone(lock: string, served: Waiter[], signal: AbortSignal): Promise<void> {
    const held = this.#held.get(lock)!;
    try {
      const written = await this.#tracked(lock, () => this.#backend.update(lock, { ...held.stored, renewTime: microTime() }, held.lockVersion, signal));
      this.#lastRoundFailed = false;
      let presented: VersionedRecord | undefined;
      if (this.#held.get(lock) === held) {
        held.stored = written.record;
        held.lockVersion = written.version;
        this.#raw.set(lock, written);
        presented = this.#present(lock, written);
      }
      for (const w of served) this.#settle(w, presented, presented ? undefined : new LockConflictError(lock, 'its elector stopped'));
    } catch (err) {
      if (err instanceof LockConflictError) this.#held.delete(lock);
      else this.#lastRoundFailed = true;
      for (const w of served) this.#settle(w, undefined, err);
    }
  }

  /**
   * Reads every heartbeat for the member list, after the renewals were settled (never in their way,
   * and a failure only leaves the list as it was), when no watch brings them.
   */
  async #listMembers(signal: AbortSignal): Promise<void> {
    if (!this.#membership || !this.#backend.listHeartbeats || (this.#stopHeartbeatsWatch && (this.#backend.watching?.('') ?? true))) return;
    try {
      this.#sawHeartbeats(await this.#backend.listHeartbeats(signal), true);
    } catch (err) {
      this.#logger.debug(`Could not list the members' heartbeats: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** With membership, the heartbeat is written every #memberBeat even when one lock's record alone would renew. */
  #beatDue(now: number): boolean {
    return this.#membership && now - this.#ownHeartbeatAt >= this.#memberBeat;
  }

  #startMembership(): void {
    if (!this.#membership || this.#closed) return;
    this.#scheduleRound();
    if (!this.#stopHeartbeatsWatch && this.#backend.watchHeartbeats) {
      this.#stopHeartbeatsWatch = this.#backend.watchHeartbeats((key, beat) => this.#sawHeartbeats(new Map(beat ? [[key, beat]] : []), false, beat ? undefined : key));
    }
    // Members whose heartbeat stopped drop out a lease later, with or without news.
    this.#membersTimer ??= setInterval(() => this.#updateMembers(), Math.max(1, Math.floor(this.#timings.leaseDuration / 4)));
    this.#membersTimer.unref();
  }

  #stopMembership(): void {
    this.#stopHeartbeatsWatch?.();
    this.#stopHeartbeatsWatch = undefined;
    if (this.#membersTimer) clearInterval(this.#membersTimer);
    this.#membersTimer = undefined;
  }

  /**
   * Heartbeats seen (a full listing, or news of one): a heartbeat counts from when its version
   * changed by this process's clock, never by the times in it; one seen for the first time may be a
   * dead process's, so it counts once it changes.
   */
  #sawHeartbeats(beats: Map<string, VersionedHeartbeat>, complete: boolean, deleted?: string): void {
    const now = this.#now();
    if (deleted !== undefined) this.#beatsSeen.delete(deleted);
    for (const [key, beat] of beats) {
      if (key === this.#key) continue;
      const before = this.#beatsSeen.get(key);
      if (!before) this.#beatsSeen.set(key, { member: beat.record.member, version: beat.version, changedAt: -Infinity });
      else if (before.version !== beat.version) this.#beatsSeen.set(key, { member: beat.record.member, version: beat.version, changedAt: now });
    }
    if (complete) for (const key of this.#beatsSeen.keys()) if (!beats.has(key)) this.#beatsSeen.delete(key);
    this.#updateMembers();
  }

  #updateMembers(): void {
    const now = this.#now();
    const live = new Set([this.#member]);
    for (const { member, changedAt } of this.#beatsSeen.values()) if (now - changedAt < this.#timings.leaseDuration) live.add(member);
    const members = [...live].sort();
    if (members.join('\n') === this.#liveMembers.join('\n')) return;
    this.#liveMembers = members;
    for (const listener of [...this.#memberListeners]) listener(members);
  }

  /** Runs a call on `lock`, holding back notifications meanwhile (see #inflight). */
  async #tracked<T>(lock: string, call: () => Promise<T>): Promise<T> {
    this.#inflight.set(lock, (this.#inflight.get(lock) ?? 0) + 1);
    try {
      return await call();
    } finally {
      const left = this.#inflight.get(lock)! - 1;
      if (left > 0) this.#inflight.set(lock, left);
      else {
        this.#inflight.delete(lock);
        const deferred = this.#deferred.get(lock);
        this.#deferred.delete(lock);
        for (const [version, record] of deferred ?? []) this.#onLockEvent(lock, version, record);
      }
    }
  }

  #onLockEvent(lock: string, version: string | undefined, record: LockRecord | null | undefined): void {
    if (this.#inflight.has(lock)) {
      const list = this.#deferred.get(lock) ?? [];
      list.push([version, record]);
      this.#deferred.set(lock, list);
      return;
    }
    if (record === null) {
      this.#raw.delete(lock);
      this.#held.delete(lock);
      this.#presented.delete(lock);
      return this.#emit(lock, version, null);
    }
    if (version === undefined) return this.#onWatchGap(lock);
    const held = this.#held.get(lock);
    if (record === undefined) {
      // A notice without the record (the file store): this process's own write, or a read is needed.
      const raw = this.#raw.get(lock);
      if (raw?.version === version) return this.#emit(lock, this.#presented.get(lock)?.version ?? version, undefined);
      return this.#emit(lock, `${version}${SEP}${UNKNOWN}`, undefined);
    }
    const raw = { version, record };
    // This process's own write, delivered late: the elector already has its version from the write or a later round.
    if (held && version === held.lockVersion && this.#presented.has(lock)) return this.#emit(lock, this.#presented.get(lock)!.version, this.#presented.get(lock)!.record);
    if (held && version !== held.lockVersion && !sameContent(record, held.stored)) this.#held.delete(lock);
    this.#raw.set(lock, raw);
    const key = record.heartbeat;
    if (key && key !== this.#key) {
      this.#watchHeartbeat(key);
      if (!this.#heartbeats.has(key)) return this.#emit(lock, `${version}${SEP}${UNKNOWN}`, undefined);
    }
    const presented = this.#present(lock, raw);
    this.#emit(lock, presented.version, presented.record);
  }

  /**
   * A notice without a version: the store's watch dropped (or, on a store that cannot tell, anything).
   * The elector reads at once on one, for every lock, which with many locks is a burst of reads each
   * time a watch stream ends on schedule (Kubernetes ends each one every few minutes at most, and
   * dromedary asks for every leaseDuration). A stream that resumes within a moment missed nothing
   * (it resumes from the last version seen), so the notice is passed on only if the watch is still
   * down a retry period later; followers then poll as before.
   */
  #onWatchGap(lock: string): void {
    if (!this.#backend.watching) return this.#emit(lock, undefined, undefined);
    this.#gaps.add(lock);
    if (this.#gapTimer) return;
    this.#gapTimer = setTimeout(() => {
      this.#gapTimer = undefined;
      const locks = [...this.#gaps];
      this.#gaps.clear();
      for (const l of locks) if (!this.#backend.watching!(l)) this.#emit(l, undefined, undefined);
    }, Math.min(this.#timings.retryPeriod, 1000));
  }

  readonly #gaps = new Set<string>();
  #gapTimer: NodeJS.Timeout | undefined;

  #watchHeartbeat(key: string): void {
    if (this.#heartbeatWatches.has(key) || !this.#backend.watchHeartbeat || this.#closed) return;
    this.#heartbeatWatches.set(key, this.#backend.watchHeartbeat(key, (beat) => this.#onHeartbeat(key, beat)));
  }

  /** Another process's heartbeat changed: every lock whose record names it has a new composite version. */
  #onHeartbeat(key: string, beat: VersionedHeartbeat | null): void {
    const before = this.#heartbeats.get(key);
    if (before !== undefined && (before?.version ?? null) === (beat?.version ?? null)) return;
    this.#heartbeats.set(key, beat);
    for (const [lock, raw] of this.#raw) {
      if (raw.record.heartbeat !== key || !this.#watches.has(lock) || this.#inflight.has(lock)) continue;
      const previous = this.#presented.get(lock)?.version;
      const presented = this.#present(lock, raw);
      if (presented.version === previous) continue;
      // Only a listing heartbeat's renewal is passed with its record; a heartbeat that disappeared or
      // stopped listing the lock makes the elector read, so it sees the change whatever the renewTimes say.
      if (beat && presented.version.endsWith(`${SEP}${beat.version}`)) this.#emit(lock, presented.version, presented.record);
      else this.#emit(lock, undefined, undefined);
    }
  }

  #emit(lock: string, version: string | undefined, record: LockRecord | null | undefined): void {
    for (const listener of this.#watches.get(lock)?.listeners ?? []) listener(version, record);
  }
}

function heartbeatPart(beat: VersionedHeartbeat | null | undefined, lock: string, instance: string | undefined): string {
  if (beat === undefined) return UNKNOWN;
  if (beat === null) return ABSENT;
  return beat.record.instance === instance && beat.record.locks.includes(lock) ? beat.version : UNLISTED;
}

function splitVersion(version: string): [string, string | undefined] {
  const i = version.indexOf(SEP);
  return i < 0 ? [version, undefined] : [version.slice(0, i), version.slice(i + 1)];
}

/**
 * Equal apart from renewTime: a renewal that changes nothing else is pure. Compared as a store keeps
 * them (a Lease keeps times to the millisecond and durations in whole seconds), since the elector
 * builds its next record from the one the store gave back.
 */
function sameContent(a: LockRecord, b: LockRecord): boolean {
  const strip = (r: LockRecord) => {
    const entries = Object.entries(r)
      .filter(([k, v]) => k !== 'renewTime' && v !== undefined)
      .map(([k, v]) => [k, k === 'acquireTime' ? Date.parse(String(v)) : k === 'leaseDurationMs' ? Math.ceil(Number(v) / 1000) : v] as const);
    return JSON.stringify(entries.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  };
  return strip(a) === strip(b);
}

/**
 * Heartbeat rounds every renewDeadline / 3 (client-go's renewDeadline leaves room for two missed
 * rounds). Electors call for renewals more often (every retryPeriod, at most half a round): a call
 * waits for the next round, costs no request, and so never misses a round by arriving just after it.
 */
export function heartbeatCadence(timings: ElectionTimings): { interval: number; renewInterval: number } {
  const interval = Math.max(1, Math.floor(timings.renewDeadline / 3));
  return { interval, renewInterval: Math.max(1, Math.min(timings.retryPeriod, Math.floor(interval / 2))) };
}

/**
 * A lock record as a one-shot reader (`dromedary status`) should judge it: in heartbeat mode its
 * holder renews the heartbeat, not the record, so the heartbeat's renewTime counts while it lists the lock.
 */
export function renewedRecord(lock: string, record: LockRecord, beat: VersionedHeartbeat | undefined): LockRecord {
  const { heartbeat: _key, ...rest } = record;
  if (!beat || heartbeatPart(beat, lock, record.holderInstance) !== beat.version) return rest;
  return Date.parse(beat.record.renewTime) > Date.parse(record.renewTime) ? { ...rest, renewTime: beat.record.renewTime } : rest;
}
