import { EventEmitter } from 'node:events';
import type { Logger } from '../../logging/logger.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { LeadershipLostError } from '../../errors.ts';
import type { LeadershipTerm } from '../cluster-service.ts';
import { parseLeaderState, type LeaderStateRecord, type LeaderStateUpdate } from '../leader-state-support.ts';
import type { Campaign } from '../campaign/campaign.ts';
import { Term } from '../term.ts';
import type { ElectionTimings } from '../election/timings.ts';
import type { PgConnection } from './pg-connection.ts';
import type { PgSchema } from './pg-schema.ts';

export interface PgCampaignOptions {
  connection: PgConnection;
  schema: PgSchema;
  lock: string;
  memberId: string;
  /** This process's random id: two processes with the same member id never take each other's lease. */
  instance: string;
  timings: ElectionTimings;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}

/**
 * One lock's election on PostgreSQL: a row of a lease table, taken and renewed by single
 * conditional statements, with the expiry judged by the server's clock alone.
 *
 * - Taking the lock: one upsert that succeeds only when the row is free (released), its lease has
 *   expired by the server's `clock_timestamp()`, or it is this process's own row. It draws the term's
 *   fencing token from a sequence, so every term of any lock has a higher token than all before,
 *   even if someone deletes the row.
 * - Renewing: an UPDATE that matches only this process's row with this term's token, moving the
 *   expiry to the server's now + leaseDuration. No row matched means the term is over.
 * - The leader stops first: its leadership is valid until the start of its last successful take or
 *   renew plus renewDeadline, on its own monotonic clock, read at every `isLeader`. The server set
 *   the expiry to leaseDuration after it ran that statement, which is later; a follower's take
 *   succeeds only after that expiry. Only the clocks' rates must agree.
 * - Followers wait exactly until the expiry the server reports, then try once; a released lock is
 *   announced with NOTIFY, so they try at once then. A graceful stop releases; `release: false`
 *   leaves the row to expire.
 * - The lock's leader state is the row's `state` column, which takes and releases leave alone. The
 *   leader writes it with an UPDATE that matches only this process's row with this term's token: a
 *   deposed leader's write matches no row. The write moves the expiry on too, so it renews the term.
 */
export class PgCampaign extends EventEmitter<{ change: []; members: [string[]] }> implements Campaign {
  readonly lock: string;
  readonly memberId: string;
  readonly #connection: PgConnection;
  readonly #schema: PgSchema;
  readonly #instance: string;
  readonly #timings: ElectionTimings;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #renewInterval: number;

  #running = false;
  #busy = false;
  #again = false;
  #cycle: Promise<void> = Promise.resolve();
  #nextTimer: NodeJS.Timeout | undefined;
  #lapseTimer: NodeJS.Timeout | undefined;
  #term: Term | undefined;
  /** The state this term wrote last: the row is this term's, so its next write need not read first. */
  #written: { term: LeadershipTerm; state: LeaderStateRecord } | undefined;
  #validUntil = -Infinity;
  #holder: string | undefined;
  #holderUntil = -Infinity;
  #members: string[] = [];

  constructor(options: PgCampaignOptions) {
    super();
    this.lock = options.lock;
    this.memberId = options.memberId;
    this.#connection = options.connection;
    this.#schema = options.schema;
    this.#instance = options.instance;
    this.#timings = options.timings;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#renewInterval = Math.max(options.timings.retryPeriod, options.timings.renewDeadline / 3);
  }

  get renewedAt(): number | undefined {
    // Validity runs renewDeadline from the start of the last answered renewal (keep-alive, statement, ping).
    return this.isLeader ? this.#validUntil - this.#timings.renewDeadline : undefined;
  }

  get isLeader(): boolean {
    const term = this.#term;
    if (!term || term.ended) return false;
    if (this.#now() >= this.#validUntil) {
      this.#lapse();
      return false;
    }
    return true;
  }

  get term(): LeadershipTerm | undefined {
    return this.isLeader ? this.#term : undefined;
  }

  get leader(): string | undefined {
    if (this.isLeader) return this.memberId;
    return this.#holderUntil > this.#now() && this.#holder !== this.memberId ? this.#holder : undefined;
  }

  get members(): readonly string[] {
    return this.#members;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#kick();
  }

  /** A NOTIFY said this lock was released: a follower tries at once. */
  released(): void {
    if (this.#running && !this.#term) this.#kick();
  }

  async stop(options: { release: boolean }): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    for (const t of [this.#nextTimer, this.#lapseTimer]) if (t) clearTimeout(t);
    this.#nextTimer = this.#lapseTimer = undefined;
    await this.#cycle;
    const term = this.#term;
    this.#endTerm('it stopped campaigning');
    this.#holder = undefined;
    this.emit('change');
    if (!term) return;
    if (!options.release) {
      this.#logger.warn(`Member ${this.memberId} did not release ${this.lock}: work of its term may still run, so followers wait for the lease to expire`, { lock: this.lock });
      return;
    }
    try {
      await this.#connection.query(this.#schema.release, [this.lock, this.#instance, term.token, this.#schema.channel]);
      this.#logger.info(`Member ${this.memberId} released ${this.lock}`, { lock: this.lock });
    } catch (err) {
      this.#logger.debug(`Could not release ${this.lock}: ${message(err)}`, { lock: this.lock });
    }
  }

  async readState(): Promise<LeaderStateRecord> {
    await this.#schema.ready();
    const [row] = await this.#connection.query<{ state: string | null }>(this.#schema.readState, [this.lock]);
    return parseLeaderState(row?.state);
  }

  async commitState(term: LeadershipTerm, update: (current: LeaderStateRecord) => LeaderStateUpdate): Promise<void> {
    if (term !== this.#term || !term.isCurrent) throw lost(term, 'its term has ended');
    // Read after this term's take: an earlier leader's write, which needed its own token, is in it or never lands.
    const known = this.#written?.term === term ? this.#written.state : await this.readState();
    const next = update(known);
    const started = this.#now();
    const rows = await this.#connection.query(this.#schema.writeState, [this.lock, this.#instance, term.token, next.json, this.#timings.leaseDuration]);
    if (rows.length === 0) {
      const reason = "PostgreSQL refused its leader state write: the lock's row no longer carries its term";
      if (this.#term === term) {
        this.#logger.warn(`Member ${this.memberId} lost ${this.lock}: ${reason}`, { lock: this.lock });
        this.#endTerm(reason);
        queueMicrotask(() => this.#kick());
      }
      throw lost(term, reason);
    }
    this.#written = { term, state: next.state };
    if (this.#term === term && this.isLeader && started < this.#validUntil) this.#validUntil = Math.max(this.#validUntil, started + this.#timings.renewDeadline);
  }

  #kick(): void {
    if (!this.#running) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    if (this.#nextTimer) clearTimeout(this.#nextTimer);
    this.#nextTimer = undefined;
    this.#cycle = this.#run();
  }

  async #run(): Promise<void> {
    this.#busy = true;
    let wait = this.#timings.retryPeriod;
    try {
      do {
        this.#again = false;
        wait = await this.#attempt();
      } while (this.#again && this.#running);
    } finally {
      this.#busy = false;
    }
    if (this.#running) this.#nextTimer = setTimeout(() => this.#kick(), wait);
  }

  /** One take or renew; returns how long to wait before the next. */
  async #attempt(): Promise<number> {
    const started = this.#now();
    const jittered = this.#timings.retryPeriod * (1 + this.#random() * (this.#timings.jitter - 1));
    try {
      await this.#schema.ready();
      const term = this.#term;
      if (term && !term.ended) {
        const rows = await this.#connection.query(this.#schema.renew, [this.lock, this.#instance, term.token, this.#timings.leaseDuration]);
        if (rows.length === 0) {
          const reason = 'another member holds the lock now, or its row was released or deleted';
          this.#logger.warn(`Member ${this.memberId} lost ${this.lock}: ${reason}`, { lock: this.lock });
          this.#endTerm(reason);
          return 0;
        }
        // A renew that began after the term lapsed cannot revive it (the getter ended it already).
        if (!this.isLeader || started >= this.#validUntil) return 0;
        this.#validUntil = started + this.#timings.renewDeadline;
        this.#armLapse();
        return this.#renewInterval;
      }
      const [row] = await this.#connection.query<{ won: string | null; holder: string | null; remaining: number | null }>(this.#schema.take, [
        this.lock,
        this.memberId,
        this.#instance,
        this.#timings.leaseDuration,
      ]);
      if (row?.won !== null && row?.won !== undefined) {
        this.#validUntil = started + this.#timings.renewDeadline;
        this.#term = new Term(this.lock, this.memberId, Number(row.won), () => this.isLeader);
        this.#holder = this.memberId;
        this.#armLapse();
        this.#setMembers();
        this.emit('change');
        return this.#renewInterval;
      }
      const remaining = Math.max(0, Number(row?.remaining ?? 0));
      const holder = row?.holder || undefined;
      const changed = holder !== this.leader;
      this.#holder = holder;
      this.#holderUntil = holder ? this.#now() + remaining : -Infinity;
      this.#setMembers();
      if (changed) this.emit('change');
      // Try again when the server says the lease runs out, not a poll later; a release is announced.
      return holder && remaining > 0 ? Math.ceil(remaining) + 1 : jittered;
    } catch (err) {
      this.#logger.warn(maskSecrets(`Leader election for ${this.lock} could not use PostgreSQL: ${message(err)}`), { lock: this.lock, member: this.memberId });
      return this.#term ? this.#timings.retryPeriod : jittered;
    }
  }

  #setMembers(): void {
    const members = [...new Set([this.memberId, ...(this.#holder ? [this.#holder] : [])])].sort();
    if (members.join('\n') === this.#members.join('\n')) return;
    this.#members = members;
    this.emit('members', members);
  }

  #armLapse(): void {
    if (this.#lapseTimer) clearTimeout(this.#lapseTimer);
    // Timers run on libuv's cached loop time, which may lag the clock: check, and wait out the rest.
    const check = () => {
      const early = this.#validUntil - this.#now();
      if (early > 0) {
        this.#lapseTimer = setTimeout(check, Math.ceil(early) + 1);
        return;
      }
      this.#lapseTimer = undefined;
      this.#lapse();
    };
    this.#lapseTimer = setTimeout(check, Math.max(0, this.#validUntil - this.#now()) + 1);
  }

  /** No successful renew within renewDeadline, noticed by a read of isLeader or by the lapse timer. */
  #lapse(): void {
    if (!this.#term) return;
    this.#logger.warn(`Member ${this.memberId} could not renew ${this.lock} within renewDeadline (${this.#timings.renewDeadline}ms): stepping down`, { lock: this.lock });
    this.#endTerm('its lease could not be renewed within renewDeadline');
    queueMicrotask(() => this.#kick());
  }

  #endTerm(reason: string): void {
    const term = this.#term;
    if (!term) return;
    this.#term = undefined;
    this.#validUntil = -Infinity;
    if (this.#holder === this.memberId) this.#holder = undefined;
    term.end(reason);
    // Possibly inside an isLeader read: tell listeners once that read is done.
    queueMicrotask(() => this.emit('change'));
  }
}

function lost(term: LeadershipTerm, reason: string): LeadershipLostError {
  return new LeadershipLostError(term.lock, term.memberId, reason, term.token);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
