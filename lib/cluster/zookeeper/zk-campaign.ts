import { EventEmitter } from 'node:events';
import type { Logger } from '../../logging/logger.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { LeadershipLostError } from '../../errors.ts';
import type { LeadershipTerm } from '../cluster-service.ts';
import { parseLeaderState, type LeaderStateRecord, type LeaderStateUpdate } from '../leader-state-support.ts';
import { pause, type Campaign } from '../campaign/campaign.ts';
import { Term } from '../term.ts';
import type { ElectionTimings } from '../election/timings.ts';
import type { ZkClient } from './zk-client.ts';
import type { ZkSession, ZkSessions } from './zk-session.ts';

export interface ZkCampaignOptions {
  sessions: ZkSessions;
  lock: string;
  memberId: string;
  /** The lock's parent node is `<root>/<encoded lock>`. */
  root: string;
  timings: ElectionTimings;
  logger: Logger;
}

/**
 * One lock's election on ZooKeeper, after Curator's LeaderLatch:
 *
 * - Each member creates an ephemeral sequential node `latch-<member>-<sequence>` under the lock's
 *   node, in its session. The lowest sequence leads. Every other member watches only the node just
 *   before its own (no herd) and looks again when that one is deleted.
 * - This member leads while its node is the lowest and its session is valid (zk-session.ts: an
 *   answered request within renewDeadline). A node goes when its session is closed or expired, or
 *   when it is deleted; its owner's term has ended on its own clock before ZooKeeper could expire it.
 * - The fencing token is the node's creation zxid, ZooKeeper's global transaction counter: a later
 *   leader's node was created later, so its token is higher, even if the lock's node was recreated.
 * - Someone deleting this member's node ends its term when the watch on it fires.
 * - The lock's leader state is the JSON data of the lock's node `<root>/<encoded lock>` (persistent,
 *   so it outlives every session). The leader writes it in a multi() that checks its term's node
 *   still exists and sets the data only at the version it read: a deposed leader's write fails in
 *   ZooKeeper. Like any answered request, the write also renews the session's validity.
 */
export class ZkCampaign extends EventEmitter<{ change: []; members: [string[]] }> implements Campaign {
  readonly lock: string;
  readonly memberId: string;
  readonly #sessions: ZkSessions;
  readonly #base: string;
  readonly #timings: ElectionTimings;
  readonly #logger: Logger;

  #running = false;
  #stop = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  #run: AbortController | undefined;
  #session: ZkSession | undefined;
  #node: string | undefined;
  #token = 0;
  #term: Term | undefined;
  /** The state this term wrote last and the lock node's version after it, so its next write need not read first. */
  #written: { term: LeadershipTerm; state: LeaderStateRecord; version: number } | undefined;
  #leader: string | undefined;
  #members: string[] = [];
  #release = true;
  #checking = false;
  #checkAgain = false;

  constructor(options: ZkCampaignOptions) {
    super();
    this.lock = options.lock;
    this.memberId = options.memberId;
    this.#sessions = options.sessions;
    this.#base = `${options.root}/${encodeURIComponent(options.lock)}`;
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
    return this.#session?.valid === true && !term.ended;
  }

  get term(): LeadershipTerm | undefined {
    return this.isLeader ? this.#term : undefined;
  }

  get leader(): string | undefined {
    if (this.isLeader) return this.memberId;
    return this.#leader === this.memberId ? undefined : this.#leader;
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
      let onLost: (() => void) | undefined;
      try {
        const session = await this.#sessions.acquire();
        this.#session = session;
        onLost = () => this.#end(run, `its ZooKeeper session ended (${(session.lost.reason as Error).message})`);
        session.lost.addEventListener('abort', onLost, { once: true });
        if (session.lost.aborted) onLost();
        await session.client.mkdirp(this.#base);
        const node = await session.client.createEphemeralSequential(`${this.#base}/latch-${encodeURIComponent(this.memberId)}-`, this.memberId);
        this.#node = node;
        const token = await session.client.created(node, () => this.#end(run, 'its ZooKeeper node was deleted'));
        if (token === undefined) throw new Error(`its node ${node} was deleted at once`);
        this.#token = token;
        await this.#check(run);
        await untilAborted(run.signal);
      } catch (err) {
        if (this.#running) this.#logger.warn(maskSecrets(`Leader election for ${this.lock} could not use ZooKeeper: ${message(err)}`), { lock: this.lock, member: this.memberId });
      }
      if (onLost) this.#session?.lost.removeEventListener('abort', onLost);
      await this.#leave();
      if (this.#running) await pause(this.#timings.retryPeriod, this.#stop.signal);
    }
  }

  async readState(): Promise<LeaderStateRecord> {
    const session = await this.#sessions.acquire();
    return (await this.#readState(session.client)).state;
  }

  async #readState(client: ZkClient): Promise<{ state: LeaderStateRecord; version: number }> {
    const node = await client.data(this.#base);
    return { state: parseLeaderState(node?.data.toString('utf8')), version: node?.version ?? 0 };
  }

  async commitState(term: LeadershipTerm, update: (current: LeaderStateRecord) => LeaderStateUpdate): Promise<void> {
    // Someone else setting the lock node's data (by hand) moves its version: read again, a few times.
    for (let attempt = 1; ; attempt++) {
      const session = this.#session;
      const node = this.#node;
      if (term !== this.#term || !term.isCurrent || !session || !node) throw lost(term, 'its term has ended');
      const known = this.#written?.term === term ? this.#written : await this.#readState(session.client);
      const next = update(known.state);
      const started = performance.now();
      const outcome = await session.client.setDataIfHeld(node, this.#base, Buffer.from(next.json, 'utf8'), known.version);
      if (outcome === 'done') {
        this.#written = { term, state: next.state, version: known.version + 1 };
        // ZooKeeper heard from the session when it ran the write: as a check would, it renews validity.
        if (session.valid && started < session.validUntil) session.validUntil = Math.max(session.validUntil, started + this.#timings.renewDeadline);
        return;
      }
      this.#written = undefined;
      if (outcome === 'held') {
        const reason = 'ZooKeeper refused its leader state write: its node no longer exists';
        if (this.#term === term && this.#run) this.#end(this.#run, reason);
        throw lost(term, reason);
      }
      if (attempt >= 3) throw new Error(`the leader state in ZooKeeper node ${this.#base} of ${this.lock} changed under each of ${attempt} writes`);
    }
  }

  /** Lists the candidates: leads when first, else watches the one just before. */
  async #check(run: AbortController): Promise<void> {
    if (this.#checking) {
      this.#checkAgain = true;
      return;
    }
    this.#checking = true;
    try {
      do {
        this.#checkAgain = false;
        if (run.signal.aborted) return;
        const session = this.#session!;
        const children = (await session.client.children(this.#base)).filter((c) => c.startsWith('latch-')).sort((a, b) => sequence(a) - sequence(b));
        if (run.signal.aborted) return;
        const mine = this.#node!.slice(this.#base.length + 1);
        const index = children.indexOf(mine);
        if (index < 0) return this.#end(run, 'its ZooKeeper node was deleted');
        this.#leader = member(children[0]!);
        const members = [...new Set(children.map(member))].sort();
        if (members.join('\n') !== this.#members.join('\n')) {
          this.#members = members;
          this.emit('members', members);
        }
        if (index === 0) {
          if (!this.#term && session.valid) this.#term = new Term(this.lock, this.memberId, this.#token, () => this.isLeader);
        } else {
          const before = `${this.#base}/${children[index - 1]!}`;
          const exists = await session.client.created(before, () => void this.#check(run).catch((err: unknown) => this.#end(run, `ZooKeeper failed: ${message(err)}`)));
          if (exists === undefined) this.#checkAgain = true;
        }
        this.emit('change');
      } while (this.#checkAgain);
    } finally {
      this.#checking = false;
    }
  }

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
    queueMicrotask(() => this.emit('change'));
  }

  /** A released lock's node is deleted so the next candidate leads at once; with `release: false` it stays for leaseDuration. */
  async #leave(): Promise<void> {
    const wasLeading = this.#term !== undefined;
    this.#endTerm(this.#running ? 'its ZooKeeper session or node ended' : 'it stopped campaigning');
    this.#leader = undefined;
    this.emit('change');
    const node = this.#node;
    const session = this.#session;
    this.#node = this.#session = undefined;
    if (!node || !session || session.lost.aborted) return;
    if (!this.#running && !this.#release) {
      this.#sessions.keepUntilExpiry = true;
      if (wasLeading) this.#logger.warn(`Member ${this.memberId} did not release ${this.lock}: work of its term may still run, so followers wait for leaseDuration`, { lock: this.lock });
      setTimeout(() => void session.client.remove(node).catch(() => undefined), this.#timings.leaseDuration).unref();
      return;
    }
    try {
      await session.client.remove(node);
      if (!this.#running && wasLeading) this.#logger.info(`Member ${this.memberId} released ${this.lock}`, { lock: this.lock });
    } catch (err) {
      this.#logger.debug(`Could not delete ${this.lock}'s ZooKeeper node: ${message(err)}`, { lock: this.lock });
    }
  }
}

/** The sequence number of a candidate's node `latch-<member>-<sequence>`; the lowest leads. */
export function sequence(name: string): number {
  return Number(name.slice(name.lastIndexOf('-') + 1));
}

/** The member id in a candidate's node name. */
export function member(name: string): string {
  return decodeURIComponent(name.slice('latch-'.length, name.lastIndexOf('-')));
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

function lost(term: LeadershipTerm, reason: string): LeadershipLostError {
  return new LeadershipLostError(term.lock, term.memberId, reason, term.token);
}
