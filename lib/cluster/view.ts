import { EventEmitter } from 'node:events';
import type { LeaderState, ClusterMember, ClusterView, ClusterViewEvents, LeadershipEvent, LeadershipTerm, LockStats, MembershipEvent } from './cluster-service.ts';
import { askListenersToHandOver } from './hand-over.ts';
import type { Elector } from './election/elector.ts';
import { LeadershipLostError } from '../errors.ts';

/**
 * A view of one lock, backed by that lock's elector. Listeners added after the fact are told the
 * current leadership at once (Camel replays it too), so a late master route or custom service
 * never waits for the next change to learn that it leads.
 */
export class LockView extends EventEmitter<ClusterViewEvents> implements ClusterView {
  readonly lock: string;
  readonly #elector: Elector;
  readonly #release: (view: LockView, options: { release: boolean }) => Promise<void>;
  /** The lock's leader state, kept in its record by the elector (see Elector.writeState). */
  readonly state: LeaderState;
  #closed = false;
  readonly #detach: () => void;

  constructor(elector: Elector, release: (view: LockView, options: { release: boolean }) => Promise<void>) {
    super();
    this.lock = elector.lock;
    this.#elector = elector;
    this.#release = release;
    this.state = {
      get: (key) => elector.readState(key),
      // A closed view has no current term of its own; work that still holds its term may write with it.
      set: (key, value, options) =>
        this.#closed && options?.term === undefined
          ? Promise.reject(new LeadershipLostError(this.lock, elector.memberId, 'this view of the lock was closed, and the write named no term'))
          : elector.writeState(key, value, options?.term),
    };
    const onChange = () => this.emit('leadership', this.#leadershipEvent());
    const onMembers = (members: string[]) => this.emit('membership', { lock: this.lock, members, added: [], removed: [] } satisfies MembershipEvent);
    elector.on('change', onChange);
    elector.on('members', onMembers);
    this.#detach = () => {
      elector.off('change', onChange);
      elector.off('members', onMembers);
    };
    (this as EventEmitter).on('newListener', (event: string | symbol, listener: (...args: unknown[]) => void) => {
      if (this.#closed) return;
      if (event === 'leadership') queueMicrotask(() => (listener as (e: LeadershipEvent) => void)(this.#leadershipEvent()));
      if (event === 'membership') {
        const members = [...elector.members];
        queueMicrotask(() => (listener as (e: MembershipEvent) => void)({ lock: this.lock, members, added: members, removed: [] }));
      }
    });
  }

  #leadershipEvent(): LeadershipEvent {
    const term = this.#elector.term;
    const isLocal = term !== undefined;
    return { lock: this.lock, leader: isLocal ? this.#elector.memberId : this.#elector.leader, isLocal, ...(term ? { term } : {}) };
  }

  get isLeader(): boolean {
    return !this.#closed && this.#elector.isLeader;
  }

  get leader(): string | undefined {
    return this.#elector.isLeader ? this.#elector.memberId : this.#elector.leader;
  }

  get term(): LeadershipTerm | undefined {
    return this.#closed ? undefined : this.#elector.term;
  }

  get stats(): LockStats {
    return this.#elector.stats;
  }

  get localMember(): ClusterMember {
    return { id: this.#elector.memberId, isLocal: true, isLeader: this.isLeader };
  }

  get members(): readonly ClusterMember[] {
    const self = this.#elector.memberId;
    const isLeader = this.isLeader;
    const leader = this.leader;
    const ids = new Set([...this.#elector.members, self, ...(leader ? [leader] : [])]);
    const members = [...ids].sort().map((id) => ({ id, isLocal: id === self, isLeader: id === self ? isLeader : id === leader }));
    // Another process under this member's id leads (a duplicate id, or this member restarted): it is
    // not this one, so it is listed beside it rather than marking this one leader.
    if (leader === self && !isLeader) members.push({ id: leader, isLocal: false, isLeader: true });
    return members;
  }

  /**
   * Asks this view's listeners to step down before a hand-over (see HandOverEvent): true once all
   * drained, false when one could not (then call resumeAfterHandOver).
   */
  async prepareHandOver(to: string, timeoutMs: number): Promise<boolean> {
    if (this.#closed) return true;
    return askListenersToHandOver(this, this.lock, to, timeoutMs);
  }

  /** The hand-over was called off: tell the listeners the leadership as it is now. */
  resumeAfterHandOver(): void {
    if (!this.#closed) this.emit('leadership', this.#leadershipEvent());
  }

  async close(options: { release?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach();
    this.removeAllListeners();
    await this.#release(this, { release: options.release ?? true });
  }
}
