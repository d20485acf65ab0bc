import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from '../../logging/logger.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { LeadershipLostError } from '../../errors.ts';
import type { LeadershipTerm } from '../cluster-service.ts';
import { parseLeaderState, type LeaderStateRecord, type LeaderStateUpdate } from '../leader-state-support.ts';
import { pause, type Campaign } from '../campaign/campaign.ts';
import { Term } from '../term.ts';
import type { ElectionTimings } from '../election/timings.ts';
import { message, type EtcdSession, type EtcdSessions } from './etcd-session.ts';

export interface EtcdCampaignOptions {
  client: Etcd3;
  sessions: EtcdSessions;
  lock: string;
  memberId: string;
  /** Key prefix of every lock; this lock's candidates live under `<prefix><encoded lock>/`. */
  prefix: string;
  timings: ElectionTimings;
  logger: Logger;
}

interface Candidate {
  readonly revision: number;
  readonly member: string;
}

/**
 * One lock's election on etcd, after etcd's own concurrency.Election recipe:
 *
 * - Each member puts one key `<lock>/<session lease id>`, attached to its session's lease
 *   (etcd-session.ts). The key with the lowest create revision leads. The others watch the lock's
 *   keys from the revision they listed at, so they see every key older than theirs go: deleted on
 *   release, revoked with a lapsed session, or by the server when the lease expired. No one reads
 *   again when a key goes; each just drops it from its list (no herd).
 * - This member leads while its key is the oldest and its session is valid on its monotonic clock.
 *   An older key goes only once its session is over on its owner's clock (see EtcdSession), or by
 *   its owner's release after its term ended: so two members never lead at once.
 * - The fencing token is the key's create revision. A later leader's key is younger, so its revision
 *   is higher; a new term of this member always puts a new key (the old one deleted first, a new
 *   session has a new name), so it too gets a higher revision.
 * - Someone deleting this member's key ends its term as soon as the watch reports it.
 * - The lock's leader state is the JSON value of the key `<prefix><encoded lock>` (no lease, so it
 *   outlives every session; outside the candidates' `<lock>/` range). The leader writes it in a
 *   transaction that puts it only if its term's key still exists with the term's create revision
 *   and the state key's mod revision is the one it read: a deposed leader's write fails in etcd.
 *   The put does not refresh the lease; the session's keep-alives go on doing that.
 */
export class EtcdCampaign extends EventEmitter<{ change: []; members: [string[]] }> implements Campaign {
  readonly lock: string;
  readonly memberId: string;
  readonly #client: Etcd3;
  readonly #sessions: EtcdSessions;
  readonly #base: string;
  readonly #stateKey: string;
  readonly #timings: ElectionTimings;
  readonly #logger: Logger;

  #running = false;
  #stop = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  /** Aborted when the current run is over (session lost, key deleted, watch failed, stop). */
  #run: AbortController | undefined;
  #session: EtcdSession | undefined;
  #key: string | undefined;
  #revision = 0;
  #candidates = new Map<string, Candidate>();
  #term: Term | undefined;
  /** The key that made the current term, which its leader state writes check. */
  #termKey: string | undefined;
  /** The state this term wrote last and its mod revision, so its next write need not read first. */
  #written: { term: LeadershipTerm; state: LeaderStateRecord; revision: number } | undefined;
  #members: string[] = [];
  #release = true;

  constructor(options: EtcdCampaignOptions) {
    super();
    this.lock = options.lock;
    this.memberId = options.memberId;
    this.#client = options.client;
    this.#sessions = options.sessions;
    this.#base = `${options.prefix}${encodeURIComponent(options.lock)}/`;
    this.#stateKey = `${options.prefix}${encodeURIComponent(options.lock)}`;
    this.#timings = options.timings;
    this.#logger = options.logger;
  }

  get renewedAt(): number | undefined {
    // Validity runs renewDeadline from the start of the last answered renewal (keep-alive, statement, ping).
    return this.isLeader && this.#session ? this.#session.validUntil - this.#timings.renewDeadline : undefined;
  }

  get isLeader(): boolean {
    const term = this.#term;
    if (!term || term.ended) return false;
    // Reading validity ends the session (and so the term) the moment it lapsed, timers or not.
    return this.#session?.valid === true && !term.ended;
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
    this.#loop = this.#campaign();
  }

  async stop(options: { release: boolean }): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#release = options.release;
    this.#stop.abort();
    this.#run?.abort();
    await this.#loop;
  }

  async #campaign(): Promise<void> {
    while (this.#running) {
      const run = new AbortController();
      this.#run = run;
      let watcher: Watcher | undefined;
      let onLost: (() => void) | undefined;
      try {
        const session = await this.#sessions.acquire();
        this.#session = session;
        onLost = () => this.#end(run, `its etcd session ended (${message(session.lost.reason)})`);
        session.lost.addEventListener('abort', onLost, { once: true });
        if (session.lost.aborted) onLost();
        watcher = await this.#enter(run, session);
        await untilAborted(run.signal);
      } catch (err) {
        if (this.#running) this.#logger.warn(maskSecrets(`Leader election for ${this.lock} could not use etcd: ${message(err)}`), { lock: this.lock, member: this.memberId });
      }
      if (onLost) this.#session?.lost.removeEventListener('abort', onLost);
      await this.#leave(watcher);
      if (this.#running) await pause(this.#timings.retryPeriod, this.#stop.signal);
    }
  }

  /** Puts this member's key, lists the candidates and watches them from that revision on. */
  async #enter(run: AbortController, session: EtcdSession): Promise<Watcher> {
    const key = `${this.#base}${session.id}`;
    this.#key = key;
    // A key left by an earlier run on this session would keep its old create revision: a new
    // term needs a new one, so the key is deleted and put afresh.
    await this.#sessions.call('delete', (options) => this.#client.delete().key(key).options(options).exec());
    const put = await this.#sessions.call('put', (options) => this.#client.put(key).value(this.memberId).lease(session.id).options(options).exec());
    this.#revision = Number(put.header.revision);
    const listed = await this.#sessions.call('range', (options) => this.#client.getAll().prefix(this.#base).options(options).exec());
    this.#candidates = new Map(listed.kvs.map((kv) => [kv.key.toString(), candidate(kv)]));
    const watcher = this.#client.watch().prefix(this.#base).startRevision(String(Number(listed.header.revision) + 1)).watcher();
    watcher.on('put', (kv) => this.#candidates.set(kv.key.toString(), candidate(kv)));
    watcher.on('delete', (kv) => {
      const deleted = kv.key.toString();
      this.#candidates.delete(deleted);
      if (deleted === key) this.#end(run, 'its etcd key was deleted');
    });
    // etcd3 emits a response's put and delete events one by one from its own 'data' listener, which
    // runs before this one: decide only once the whole response (one revision) is applied, or a member
    // whose key goes in the same transaction as an older one would lead for an instant.
    watcher.on('data', () => this.#evaluate(run));
    // A compacted or cancelled watch cannot resume from its revision: enter again.
    watcher.on('error', (err) => this.#end(run, `its etcd watch failed: ${message(err)}`));
    try {
      await this.#sessions.call('watch', () => new Promise<void>((resolve) => watcher.once('connected', () => resolve())));
    } catch (err) {
      void watcher.cancel().catch(() => undefined);
      throw err;
    }
    this.#evaluate(run);
    return watcher;
  }

  async readState(): Promise<LeaderStateRecord> {
    return (await this.#readState()).state;
  }

  async #readState(): Promise<{ state: LeaderStateRecord; revision: number }> {
    const res = await this.#sessions.call('range', (options) => this.#client.get(this.#stateKey).options(options).exec());
    const kv = res.kvs[0];
    return { state: parseLeaderState(kv?.value.toString()), revision: kv ? Number(kv.mod_revision) : 0 };
  }

  async commitState(term: LeadershipTerm, update: (current: LeaderStateRecord) => LeaderStateUpdate): Promise<void> {
    // Someone else writing the state key (by hand) makes the compare fail: read again, a few times.
    for (let attempt = 1; ; attempt++) {
      const key = this.#termKey;
      if (term !== this.#term || !term.isCurrent || !key) throw lost(term, 'its term has ended');
      const known = this.#written?.term === term ? this.#written : await this.#readState();
      const next = update(known.state);
      const res = await this.#sessions.call('txn', (options) =>
        this.#client
          .if(key, 'Create', '==', term.token)
          .and(this.#stateKey, 'Mod', '==', known.revision)
          .then(this.#client.put(this.#stateKey).value(next.json))
          .else(this.#client.get(key))
          .options(options)
          .commit(),
      );
      if (res.succeeded) {
        this.#written = { term, state: next.state, revision: Number(res.header.revision) };
        return;
      }
      this.#written = undefined;
      const held = res.responses[0]?.response_range?.kvs[0];
      if (!held || Number(held.create_revision) !== term.token) {
        const reason = 'etcd refused its leader state write: its key no longer holds the lock';
        if (this.#term === term && this.#run) this.#end(this.#run, reason);
        throw lost(term, reason);
      }
      if (attempt >= 3) throw new Error(`the leader state key ${this.#stateKey} of ${this.lock} changed under each of ${attempt} writes`);
    }
  }

  /** Leads when this member's key is the oldest candidate and its session is valid. */
  #evaluate(run: AbortController): void {
    if (run.signal.aborted || this.#run !== run) return;
    const first = this.#first();
    const mine = first !== undefined && first[0] === this.#key;
    if (mine && !this.#term && this.#session?.valid) {
      this.#term = new Term(this.lock, this.memberId, this.#revision, () => this.isLeader);
      this.#termKey = this.#key;
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

  /** This run is over: end the term now (its signal aborts), and let the loop enter again. */
  #end(run: AbortController, reason: string): void {
    if (run.signal.aborted) return;
    if (this.#running && this.#term) this.#logger.warn(`Member ${this.memberId} lost ${this.lock}: ${reason}`, { lock: this.lock });
    this.#endTerm(reason);
    run.abort();
  }

  #endTerm(reason: string): void {
    const term = this.#term;
    if (!term) return;
    this.#term = undefined;
    term.end(reason);
    // Possibly inside an isLeader read: tell listeners once that read is done.
    queueMicrotask(() => this.emit('change'));
  }

  /**
   * Leaves the election: a released or re-entered lock's key is deleted so the next candidate leads
   * at once; with `release: false` it stays until leaseDuration has passed (or the session expires).
   */
  async #leave(watcher: Watcher | undefined): Promise<void> {
    const wasLeading = this.#term !== undefined;
    this.#endTerm(this.#running ? 'its etcd session or key ended' : 'it stopped campaigning');
    this.#candidates = new Map();
    this.emit('change');
    void watcher?.cancel().catch(() => undefined);
    const key = this.#key;
    const session = this.#session;
    this.#key = this.#session = undefined;
    if (!key || !session || session.lost.aborted) return;
    const remove = () => this.#sessions.call('delete', (options) => this.#client.delete().key(key).options(options).exec());
    if (!this.#running && !this.#release) {
      this.#sessions.keepUntilExpiry = true;
      if (wasLeading) this.#logger.warn(`Member ${this.memberId} did not release ${this.lock}: work of its term may still run, so followers wait for leaseDuration`, { lock: this.lock });
      setTimeout(() => void remove().catch(() => undefined), this.#timings.leaseDuration).unref();
      return;
    }
    try {
      await remove();
      if (!this.#running && wasLeading) this.#logger.info(`Member ${this.memberId} released ${this.lock}`, { lock: this.lock });
    } catch (err) {
      this.#logger.debug(`Could not delete ${this.lock}'s etcd key: ${message(err)}`, { lock: this.lock });
    }
  }
}

function lost(term: LeadershipTerm, reason: string): LeadershipLostError {
  return new LeadershipLostError(term.lock, term.memberId, reason, term.token);
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
