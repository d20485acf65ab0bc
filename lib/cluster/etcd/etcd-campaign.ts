import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from '../../logging/logger.ts';
import { maskSecrets } from '../../uri/mask.ts';
import type { LeadershipTerm } from '../cluster-service.ts';
import { CampaignTerm, pause, withTimeout, type Campaign } from '../campaign/campaign.ts';
import type { ElectionTimings } from '../election/timings.ts';

export interface EtcdCampaignOptions {
  client: Etcd3;
  lock: string;
  memberId: string;
  /** Key prefix of every lock; this lock's candidates live under `<prefix><encoded lock>/`. */
  prefix: string;
  timings: ElectionTimings;
  logger: Logger;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
}

interface Candidate {
  readonly revision: number;
  readonly member: string;
}

/**
 * One lock's election on etcd, after etcd's own concurrency.Election recipe, with the leadership
 * judged on this member's monotonic clock:
 *
 * - A session is an etcd lease of TTL ⌈leaseDuration⌉ seconds, kept alive every retryPeriod. The
 *   session is valid until the start of its last successful keep-alive plus renewDeadline. The
 *   server ends the lease no sooner than TTL after it received that keep-alive, which is later:
 *   so this member's term is over, on its own clock, before the server can delete its key.
 * - Each session puts one key `<lock>/<lease id>` attached to the lease. The candidate whose key has
 *   the lowest create revision leads; the others watch the lock's keys and lead once every
 *   lower key is gone (deleted on release, or by the server when its lease expired).
 * - The leader's create revision is its fencing token: a later leader's key was created later, so
 *   its revision is higher. A session whose validity lapsed (a pause, a cut) is abandoned, its lease
 *   revoked, and a new one made: a new term always has a new key, so a new, higher token.
 * - Someone deleting this member's key ends its term at once when the watch reports it.
 */
export class EtcdCampaign extends EventEmitter<{ change: []; members: [string[]] }> implements Campaign {
  readonly lock: string;
  readonly memberId: string;
  readonly #client: Etcd3;
  readonly #base: string;
  readonly #timings: ElectionTimings;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #ttlSeconds: number;
  readonly #callTimeout: number;

  #running = false;
  #stop = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  /** Aborted when the current session is lost (lapsed, lease gone, key deleted, watch failed). */
  #session: AbortController | undefined;
  #lease: string | undefined;
  #key: string | undefined;
  #revision = 0;
  #validUntil = -Infinity;
  #candidates = new Map<string, Candidate>();
  #term: CampaignTerm | undefined;
  #members: string[] = [];
  #renewTimer: NodeJS.Timeout | undefined;
  #lapseTimer: NodeJS.Timeout | undefined;
  #release = true;

  constructor(options: EtcdCampaignOptions) {
    super();
    this.lock = options.lock;
    this.memberId = options.memberId;
    this.#client = options.client;
    this.#base = `${options.prefix}${encodeURIComponent(options.lock)}/`;
    this.#timings = options.timings;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#ttlSeconds = Math.ceil(options.timings.leaseDuration / 1000);
    // Several keep-alives must fit in renewDeadline, and one hung call must not use it all up.
    this.#callTimeout = etcdCallTimeout(options.timings);
  }

  get isLeader(): boolean {
    if (!this.#term) return false;
    if (this.#now() >= this.#validUntil) {
      this.#lapse('its etcd lease could not be kept alive within renewDeadline');
      return false;
    }
    return !this.#term.ended;
  }

  get term(): LeadershipTerm | undefined {
    return this.isLeader ? this.#term : undefined;
  }

  get leader(): string | undefined {
    if (this.isLeader) return this.memberId;
    const first = this.#first();
    if (!first || first[0] === this.#key) return undefined;
    return first[1].member;
  }

  get members(): readonly string[] {
    return this.#members;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#release = true;
    this.#stop = new AbortController();
    this.#loop = this.#run();
  }

  async stop(options: { release: boolean }): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#release = options.release;
    this.#stop.abort();
    this.#session?.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const session = new AbortController();
      this.#session = session;
      let watcher: Watcher | undefined;
      try {
        watcher = await this.#open(session);
        await untilAborted(session.signal);
      } catch (err) {
        if (this.#running) this.#logger.warn(maskSecrets(`Leader election for ${this.lock} could not use etcd: ${message(err)}`), { lock: this.lock, member: this.memberId });
      }
      await this.#close(watcher);
      if (this.#running) await pause(this.#timings.retryPeriod, this.#stop.signal);
    }
  }

  /** Grants a lease, puts this session's key, lists the candidates and watches them from that revision on. */
  async #open(session: AbortController): Promise<Watcher> {
    const started = this.#now();
    const grant = await this.#call('lease grant', (options) => this.#client.leaseClient.leaseGrant({ TTL: this.#ttlSeconds }, options));
    this.#lease = grant.ID;
    this.#validUntil = started + this.#timings.renewDeadline;
    this.#armTimers(session);
    this.#key = `${this.#base}${grant.ID}`;
    const put = await this.#call('put', (options) => this.#client.put(this.#key!).value(this.memberId).lease(grant.ID).options(options).exec());
    this.#revision = Number(put.header.revision);
    const listed = await this.#call('range', (options) => this.#client.getAll().prefix(this.#base).sort('Create', 'Ascend').options(options).exec());
    this.#candidates = new Map(listed.kvs.map((kv) => [kv.key.toString(), candidate(kv)]));
    const watcher = this.#client.watch().prefix(this.#base).startRevision(String(Number(listed.header.revision) + 1)).watcher();
    watcher.on('put', (kv) => {
      this.#candidates.set(kv.key.toString(), candidate(kv));
      this.#evaluate(session);
    });
    watcher.on('delete', (kv) => {
      const key = kv.key.toString();
      this.#candidates.delete(key);
      if (key === this.#key) this.#lose(session, 'its etcd key was deleted (its lease ended, or someone deleted it)');
      this.#evaluate(session);
    });
    // A compacted or cancelled watch cannot be resumed from its revision: start a new session.
    watcher.on('error', (err) => this.#lose(session, `its etcd watch failed: ${message(err)}`));
    await this.#call('watch', () => new Promise<void>((resolve) => watcher.once('connected', () => resolve()))).catch(async (err: unknown) => {
      await watcher.cancel().catch(() => undefined);
      throw err;
    });
    this.#evaluate(session);
    return watcher;
  }

  /** Leads when this session's key is the oldest candidate and the session is valid. */
  #evaluate(session: AbortController): void {
    if (session.signal.aborted || this.#session !== session) return;
    const first = this.#first();
    const mine = first !== undefined && first[0] === this.#key;
    if (mine && !this.#term && this.#now() < this.#validUntil) {
      this.#term = new CampaignTerm(this.lock, this.memberId, this.#revision, () => this.isLeader);
    } else if (!mine && this.#term) {
      this.#endTerm('an older etcd key leads the lock');
    }
    const members = [...new Set([...this.#candidates.values()].map((c) => c.member))].sort();
    if (members.join('\n') !== this.#members.join('\n')) {
      this.#members = members;
      this.emit('members', members);
    }
    this.emit('change');
  }

  #first(): [string, Candidate] | undefined {
    let first: [string, Candidate] | undefined;
    for (const entry of this.#candidates) if (!first || entry[1].revision < first[1].revision) first = entry;
    return first;
  }

  /** Keep-alives every retryPeriod; the lapse timer ends the term when none succeeded within renewDeadline. */
  #armTimers(session: AbortController): void {
    const renew = async () => {
      this.#renewTimer = undefined;
      if (session.signal.aborted) return;
      const started = this.#now();
      try {
        const ttl = await this.#call('lease keep-alive', () => this.#keepAliveOnce(this.#lease!));
        if (session.signal.aborted) return;
        if (ttl <= 0) return this.#lose(session, 'its etcd lease expired on the server');
        // A keep-alive that began after the session lapsed cannot revive it: the term is over.
        if (started >= this.#validUntil) return this.#lose(session, 'its etcd lease lapsed before this keep-alive');
        this.#validUntil = started + this.#timings.renewDeadline;
        this.#armLapse(session);
      } catch (err) {
        this.#logger.debug(maskSecrets(`Keep-alive of ${this.lock}'s etcd lease failed: ${message(err)}`), { lock: this.lock });
      }
      if (!session.signal.aborted) this.#renewTimer = setTimeout(renew, this.#timings.retryPeriod);
    };
    this.#renewTimer = setTimeout(renew, this.#timings.retryPeriod);
    this.#armLapse(session);
  }

  #armLapse(session: AbortController): void {
    if (this.#lapseTimer) clearTimeout(this.#lapseTimer);
    // Timers run on libuv's cached loop time, which may lag the clock: check, and wait out the rest.
    const check = () => {
      const early = this.#validUntil - this.#now();
      if (early > 0) {
        this.#lapseTimer = setTimeout(check, Math.ceil(early) + 1);
        return;
      }
      this.#lapseTimer = undefined;
      this.#lose(session, `its etcd lease could not be kept alive within renewDeadline (${this.#timings.renewDeadline}ms)`);
    };
    this.#lapseTimer = setTimeout(check, Math.max(0, this.#validUntil - this.#now()) + 1);
  }

  async #keepAliveOnce(id: string): Promise<number> {
    const stream = await this.#client.leaseClient.leaseKeepAlive();
    try {
      return await new Promise<number>((resolve, reject) => {
        stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
        stream.on('error', reject);
        stream.write({ ID: id });
      });
    } finally {
      stream.end();
    }
  }

  /** The session is over: end the term now (its signal aborts), and let the loop open a new one. */
  #lose(session: AbortController, reason: string): void {
    if (session.signal.aborted) return;
    if (this.#running) this.#logger.warn(`Member ${this.memberId} lost its etcd session for ${this.lock}: ${reason}`, { lock: this.lock });
    this.#endTerm(reason);
    session.abort();
  }

  /** Called from the isLeader getter when the validity ran out before the lapse timer could run. */
  #lapse(reason: string): void {
    if (this.#session) this.#lose(this.#session, reason);
    else this.#endTerm(reason);
  }

  #endTerm(reason: string): void {
    const term = this.#term;
    if (!term) return;
    this.#term = undefined;
    term.end(reason);
    this.emit('change');
  }

  async #close(watcher: Watcher | undefined): Promise<void> {
    for (const t of [this.#renewTimer, this.#lapseTimer]) if (t) clearTimeout(t);
    this.#renewTimer = this.#lapseTimer = undefined;
    const wasLeading = this.#term !== undefined;
    this.#endTerm(this.#running ? 'its etcd session ended' : 'it stopped campaigning');
    this.#validUntil = -Infinity;
    this.#candidates = new Map();
    this.emit('change');
    void watcher?.cancel().catch(() => undefined);
    const lease = this.#lease;
    this.#lease = this.#key = undefined;
    if (!lease) return;
    if (!this.#running && !this.#release) {
      if (wasLeading) this.#logger.warn(`Member ${this.memberId} did not release ${this.lock}: work of its term may still run, so followers wait for the etcd lease to expire`, { lock: this.lock });
      return;
    }
    // Revoking deletes this session's key, so the next candidate leads at once. When etcd cannot be
    // reached the lease simply expires.
    try {
      await this.#call('lease revoke', (options) => this.#client.leaseClient.leaseRevoke({ ID: lease }, options));
      if (!this.#running && wasLeading) this.#logger.info(`Member ${this.memberId} released ${this.lock}`, { lock: this.lock });
    } catch (err) {
      this.#logger.debug(`Could not revoke ${this.lock}'s etcd lease: ${message(err)}`, { lock: this.lock });
    }
  }

  #call<T>(what: string, fn: (options: { deadline: Date }) => Promise<T>): Promise<T> {
    return withTimeout(fn({ deadline: new Date(Date.now() + this.#callTimeout) }), this.#callTimeout, `etcd ${what} for ${this.lock}`);
  }
}

/** A store call's timeout: a few fit in renewDeadline, and it is never shorter than a loaded machine needs. */
export function etcdCallTimeout(timings: ElectionTimings): number {
  return Math.min(timings.renewDeadline / 3, Math.max(timings.retryPeriod, 500));
}

function candidate(kv: IKeyValue): Candidate {
  return { revision: Number(kv.create_revision), member: kv.value.toString() };
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
