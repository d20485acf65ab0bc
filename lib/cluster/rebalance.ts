import { createHash } from 'node:crypto';
import type { Logger } from '../logging/logger.ts';

/**
 * Rebalancing (Camel's `rebalancing`): members spread the leaders of their locks evenly. Every
 * member computes the same target assignment from what it sees (the lock names and the live member
 * ids), without talking to the others:
 * - with L locks and M members, each member's quota is ⌊L/M⌋ or ⌈L/M⌉ (which members get the
 *   larger one is decided by a hash of their ids), so no member is assigned more than ⌈L/M⌉;
 * - locks go to members by rendezvous hashing (highest hash of lock and member first), skipping a
 *   member whose quota is full, so a change of membership moves few locks, and the same locks and
 *   members always give the same assignment.
 * A leader hands over (a graceful release, after its routes drained) each lock assigned to another
 * member, once its view of the membership has been steady for `settleMs`; a follower competes for a
 * lock only when it is assigned that lock, or the assignee is not seen alive, or the lock has had
 * no leader for `graceMs` (the assignee does not run that lock, or cannot reach the store). No ping-pong:
 * the assignment is a fixed function of the membership, and a lock this member took by that last
 * rule stays with it for a grace, twice as long each time it comes back so, until its assignee leads it.
 */
export function assignLocks(locks: readonly string[], members: readonly string[]): Map<string, string> {
  const assignment = new Map<string, string>();
  const ids = [...new Set(members)].sort();
  const names = [...new Set(locks)].sort();
  if (ids.length === 0) return assignment;
  const base = Math.floor(names.length / ids.length);
  const extra = names.length % ids.length;
  const quota = new Map<string, number>();
  // Which members lead one more than the others, by a hash of the lock names too: with fewer locks
  // than members, different apps' locks then go to different members.
  const set = names.join('\n');
  [...ids].sort((a, b) => compareWeights(weight(set, a), weight(set, b), a, b)).forEach((id, i) => quota.set(id, base + (i < extra ? 1 : 0)));
  const pairs: Array<{ lock: string; member: string; w: bigint }> = [];
  for (const lock of names) for (const member of ids) pairs.push({ lock, member, w: weight(lock, member) });
  pairs.sort((a, b) => compareWeights(a.w, b.w, `${a.lock}\n${a.member}`, `${b.lock}\n${b.member}`));
  for (const { lock, member } of pairs) {
    if (assignment.has(lock) || quota.get(member)! <= 0) continue;
    assignment.set(lock, member);
    quota.set(member, quota.get(member)! - 1);
  }
  return assignment;
}

/** Rendezvous weight of a (lock, member) pair: the first 52 bits of its SHA-256. */
function weight(lock: string, member: string): bigint {
  return BigInt(`0x${createHash('sha256').update(`${lock}\n${member}`).digest('hex').slice(0, 13)}`);
}

/** Highest weight first; ties (vanishingly rare) by name, so every member orders alike. */
function compareWeights(a: bigint, b: bigint, nameA: string, nameB: string): number {
  if (a !== b) return a > b ? -1 : 1;
  return nameA < nameB ? -1 : nameA > nameB ? 1 : 0;
}

/** One lock as this member sees it now. */
export interface LockSight {
  readonly lock: string;
  readonly isLeader: boolean;
  /** The member believed to lead (this one while it leads), or undefined when none is known to. */
  readonly leader: string | undefined;
  /** The members the store reports alive for this lock (heartbeat records, pods, candidates' keys). */
  readonly members: readonly string[];
}

/** What the rebalancer needs of its cluster service. */
export interface RebalanceHost {
  readonly memberId: string;
  sight(): LockSight[];
  /** Hands `lock` over gracefully (drain its routes, then release with the marker); resolves when done or given up. */
  handOver(lock: string, to: string): Promise<void>;
}

export interface RebalancerOptions {
  /** How often it looks again, and the unit of its waits (the elector's renew interval). */
  intervalMs: number;
  /** How long the membership must stay unchanged before this member hands a lock over. */
  settleMs: number;
  /** How long a lock may have no known leader before any member may take it, whatever the assignment. */
  graceMs: number;
  logger: Logger;
  now?: () => number;
}

export class Rebalancer {
  readonly #host: RebalanceHost;
  readonly #options: RebalancerOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** The membership and locks the assignment was computed from, and since when they are unchanged. */
  #signature = '';
  #steadySince = 0;
  #assignment = new Map<string, string>();
  #live = new Set<string>();
  /** Per lock, since when this member has seen no leader of it. */
  readonly #leaderless = new Map<string, number>();
  /**
   * Locks this member took outside the assignment (grace), and until when it keeps them: a lock its
   * assignee did not take. The wait doubles each time (up to 32 graces), so a lock whose assignee
   * never takes it (it does not run that lock) changes hands seldom, and one whose assignee only saw
   * the membership late still reaches it.
   */
  readonly #kept = new Map<string, number>();
  readonly #comebacks = new Map<string, number>();
  /** Locks being handed over now, and locks whose hand-over was given up (not before the time given). */
  readonly #handing = new Set<string>();
  readonly #backoff = new Map<string, number>();

  constructor(host: RebalanceHost, options: RebalancerOptions) {
    this.#host = host;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The member assigned `lock` under the current membership (for tests and logs). */
  assigneeOf(lock: string): string | undefined {
    return this.#assignment.get(lock);
  }

  /**
   * Whether this member may try to take `lock` now (the elector asks before a write that would make
   * it holder): when the lock is assigned to it, or its assignee is not seen alive, or the lock has
   * had no known leader for graceMs.
   */
  mayAcquire(lock: string): boolean {
    this.#refresh();
    const me = this.#host.memberId;
    const assignee = this.#assignment.get(lock);
    if (assignee === undefined || assignee === me || !this.#live.has(assignee)) return true;
    const since = this.#leaderless.get(lock);
    if (since !== undefined && this.#now() - since >= this.#options.graceMs) {
      // Its assignee does not take it (it may not run this lock): lead it, and keep it while the
      // membership stays as it is, or it would go back and forth.
      const comebacks = this.#comebacks.get(lock) ?? 0;
      this.#comebacks.set(lock, comebacks + 1);
      this.#kept.set(lock, this.#now() + this.#options.graceMs * 2 ** Math.min(comebacks, 5));
      return true;
    }
    return false;
  }

  /** Looks at every lock and hands over those this member leads but are assigned to another. */
  tick(): void {
    const sight = this.#refresh();
    const now = this.#now();
    if (now - this.#steadySince < this.#options.settleMs) return;
    const me = this.#host.memberId;
    for (const { lock, isLeader } of sight) {
      const to = this.#assignment.get(lock);
      if (!isLeader || to === undefined || to === me || (this.#kept.get(lock) ?? -Infinity) > now || this.#handing.has(lock)) continue;
      if ((this.#backoff.get(lock) ?? -Infinity) > now) continue;
      this.#handing.add(lock);
      this.#options.logger.info(`Rebalancing: member ${me} hands ${lock} over to ${to}`, { lock, member: me, to });
      void this.#host
        .handOver(lock, to)
        .catch((err: unknown) => this.#options.logger.warn(`Rebalancing: handing ${lock} over failed: ${err instanceof Error ? err.message : String(err)}`, { lock }))
        .finally(() => {
          this.#handing.delete(lock);
          // Still leading it afterwards (the drain timed out, the release failed): try again later, not at once.
          this.#backoff.set(lock, this.#now() + 4 * this.#options.settleMs);
        });
    }
  }

  /** Recomputes the membership, the assignment and the leaderless clocks from what the host sees now. */
  #refresh(): LockSight[] {
    const sight = this.#host.sight();
    const now = this.#now();
    const live = new Set<string>([this.#host.memberId]);
    for (const s of sight) {
      for (const m of s.members) live.add(m);
      // A leader this member sees renewing (its lease running by this member's clock) is alive.
      if (s.leader !== undefined) live.add(s.leader);
    }
    const members = [...live].sort();
    const locks = sight.map((s) => s.lock).sort();
    const signature = `${members.join('\n')}\n\n${locks.join('\n')}`;
    if (signature !== this.#signature) {
      this.#signature = signature;
      this.#steadySince = now;
      this.#assignment = assignLocks(locks, members);
      this.#kept.clear();
      this.#backoff.clear();
      // Not when the last lock closed (the service stopping): nothing is assigned then.
      if (locks.length > 0) this.#options.logger.info(`Rebalancing: members seen alive ${members.join(', ')}; ${locks.length} locks`, { members });
    }
    this.#live = live;
    for (const s of sight) {
      // Its assignee leads it: the hand-over worked, so a later grace take starts from the shortest wait again.
      if (s.leader !== undefined && s.leader === this.#assignment.get(s.lock)) this.#comebacks.delete(s.lock);
      if (s.leader !== undefined) this.#leaderless.delete(s.lock);
      else if (!this.#leaderless.has(s.lock)) this.#leaderless.set(s.lock, now);
    }
    for (const lock of this.#leaderless.keys()) if (!sight.some((s) => s.lock === lock)) this.#leaderless.delete(lock);
    for (const lock of this.#comebacks.keys()) if (!sight.some((s) => s.lock === lock)) this.#comebacks.delete(lock);
    return sight;
  }
}
