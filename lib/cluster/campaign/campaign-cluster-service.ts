import { EventEmitter } from 'node:events';
import type { Logger } from '../../logging/logger.ts';
import { ServiceSupport } from '../../spi/service.ts';
import type { LeaderState, ClusterMember, ClusterService, ClusterView, ClusterViewEvents, LeadershipEvent, LeadershipTerm, LockStats, MembershipEvent } from '../cluster-service.ts';
import { askListenersToHandOver } from '../hand-over.ts';
import { LeaderStateSupport } from '../leader-state-support.ts';
import { Rebalancer } from '../rebalance.ts';
import type { Campaign } from './campaign.ts';

interface Entry {
  campaign: Campaign;
  state: LeaderStateSupport;
  views: Set<CampaignView>;
  release: boolean;
  stats: { transitions: number };
}

export interface CampaignClusterServiceOptions {
  kind: string;
  memberId: string;
  logger: Logger;
  /** The wait before a leader state write that failed (not refused) is tried again: the election's retryPeriod. */
  retryPeriod: number;
  /** Builds the election of one lock. */
  campaign(lock: string, logger: Logger): Campaign;
  /** Closes the server connection once every campaign has stopped. */
  close(): Promise<void>;
  /**
   * Spread the leaders of this service's locks over the members (see rebalance.ts), looking again
   * every intervalMs; routes get leaseDurationMs to drain before a hand-over. Needs a campaign whose
   * leader sees every candidate of the lock in its members (etcd's; not ZooKeeper's, whose leader
   * watches nothing, nor PostgreSQL's, whose members are the holder and itself).
   */
  rebalance?: { intervalMs: number; leaseDurationMs: number };
}

/**
 * A cluster service whose locks are elected by the server's own primitives (a Campaign per lock).
 * Views are reference-counted per lock, as in ElectorClusterService: the first view starts the
 * campaign (once the service runs); closing the last one stops it, giving the lock up unless some
 * view closed with `release: false`.
 */
export class CampaignClusterService extends ServiceSupport implements ClusterService {
  readonly kind: string;
  readonly memberId: string;
  readonly #logger: Logger;
  readonly #options: CampaignClusterServiceOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #rebalancer: Rebalancer | undefined;
  #stopping = false;

  constructor(options: CampaignClusterServiceOptions) {
    super();
    this.kind = options.kind;
    this.memberId = options.memberId;
    this.#options = options;
    this.#logger = options.logger.child({ member: options.memberId });
    const rebalance = options.rebalance;
    if (rebalance) {
      this.#rebalancer = new Rebalancer(
        { memberId: this.memberId, sight: () => this.#sight(), handOver: (lock, to) => this.#handOver(lock, to) },
        { intervalMs: rebalance.intervalMs, settleMs: 2 * rebalance.intervalMs, graceMs: rebalance.leaseDurationMs, logger: this.#logger },
      );
    }
  }

  #sight() {
    return [...this.#entries].map(([lock, { campaign }]) => {
      const isLeader = campaign.isLeader;
      return { lock, isLeader, leader: isLeader ? this.memberId : campaign.leader, members: campaign.members };
    });
  }

  /**
   * A rebalancing hand-over on a server that elects by queue (the oldest candidate leads): the views'
   * listeners drain, then this member gives the lock up and queues again behind the others. The next
   * candidate in the queue leads; if it is not the assignee either, it does the same, so the lock
   * reaches its assignee within as many hand-overs as candidates queued before it. Only towards a
   * member that is a candidate of this very lock, or it would go round for ever.
   */
  async #handOver(lock: string, to: string): Promise<void> {
    const entry = this.#entries.get(lock);
    if (!entry || !entry.release || !entry.campaign.isLeader || !entry.campaign.members.includes(to)) return;
    const views = [...entry.views];
    const drained = (await Promise.all(views.map((v) => v.prepareHandOver(to, this.#options.rebalance!.leaseDurationMs)))).every(Boolean);
    if (!drained || this.#entries.get(lock) !== entry || !entry.campaign.isLeader || this.#stopping) {
      for (const view of views) view.resumeAfterHandOver();
      return;
    }
    await entry.campaign.stop({ release: true });
    if (this.#entries.get(lock) === entry && !this.#stopping) entry.campaign.start();
  }

  get locks(): string[] {
    return [...this.#entries.keys()];
  }

  view(lock: string): ClusterView {
    let entry = this.#entries.get(lock);
    if (!entry) {
      const campaign = this.#options.campaign(lock, this.#logger);
      let last: string | undefined;
      const stats = { transitions: 0, leader: undefined as string | undefined, isLocal: false, term: undefined as LeadershipTerm | undefined };
      campaign.on('change', () => {
        // LockStats' transitions: each term begun, each stop of leading, each change between other leaders.
        const term = campaign.term;
        if (term && term !== stats.term) stats.transitions += 1;
        if (stats.isLocal && !term) stats.transitions += 1;
        const other = term ? undefined : campaign.leader;
        if (other !== undefined && stats.leader !== undefined && other !== stats.leader && !stats.isLocal) stats.transitions += 1;
        if (term || other !== undefined) stats.leader = term ? this.memberId : other;
        stats.isLocal = term !== undefined;
        stats.term = term;
        const leader = campaign.leader;
        if (leader === last) return;
        last = leader;
        if (leader) this.#logger.info(`member ${leader} is now leader of ${lock}${leader === this.memberId ? ' (this member)' : ''}`, { lock, leader });
        else this.#logger.info(`no member leads ${lock} now`, { lock });
      });
      // One per lock, shared by its views, so their writes are coalesced together.
      const state = new LeaderStateSupport({
        lock,
        memberId: this.memberId,
        currentTerm: () => campaign.term,
        read: () => campaign.readState(),
        commit: (term, update) => campaign.commitState(term, update),
        retryDelay: this.#options.retryPeriod,
      });
      entry = { campaign, state, views: new Set(), release: true, stats };
      this.#entries.set(lock, entry);
      if (this.isStarted) campaign.start();
    }
    const view = new CampaignView(entry.campaign, entry.state, entry.stats, (v, options) => this.#close(lock, v, options));
    entry.views.add(view);
    return view;
  }

  isLeader(lock: string): boolean {
    return this.#entries.get(lock)?.campaign.isLeader ?? false;
  }

  async #close(lock: string, view: CampaignView, options: { release: boolean }): Promise<void> {
    const entry = this.#entries.get(lock);
    if (!entry || !entry.views.delete(view)) return;
    if (!options.release) entry.release = false;
    if (entry.views.size > 0) return;
    this.#entries.delete(lock);
    await entry.campaign.stop({ release: entry.release });
  }

  protected doStart(): void {
    this.#stopping = false;
    this.#rebalancer?.start();
    for (const { campaign } of this.#entries.values()) campaign.start();
    this.#logger.info(`Cluster service ${this.kind} started as member ${this.memberId}`, { member: this.memberId });
  }

  protected async doStop(): Promise<void> {
    this.#stopping = true;
    this.#rebalancer?.stop();
    await Promise.all([...this.#entries.values()].map(({ campaign, release }) => campaign.stop({ release })));
    await this.#options.close();
  }
}

/** One lock seen from this member; a listener added late is told the current state at once. */
class CampaignView extends EventEmitter<ClusterViewEvents> implements ClusterView {
  readonly lock: string;
  readonly #campaign: Campaign;
  readonly #state: LeaderState;
  readonly #counts: { transitions: number };
  readonly #close: (view: CampaignView, options: { release: boolean }) => Promise<void>;
  readonly #detach: () => void;
  #closed = false;
  #lastTerm: LeadershipTerm | undefined;
  #lastLeader: string | undefined;
  #lastLocal = false;

  constructor(campaign: Campaign, state: LeaderState, counts: { transitions: number }, close: (view: CampaignView, options: { release: boolean }) => Promise<void>) {
    super();
    this.lock = campaign.lock;
    this.#campaign = campaign;
    this.#state = state;
    this.#counts = counts;
    this.#close = close;
    const onChange = () => {
      const event = this.#leadershipEvent();
      // Report what changed: the leader, whether it is this member, or its term.
      if (event.leader === this.#lastLeader && event.isLocal === this.#lastLocal && event.term === this.#lastTerm) return;
      this.#lastLeader = event.leader;
      this.#lastLocal = event.isLocal;
      this.#lastTerm = event.term;
      this.emit('leadership', event);
    };
    const onMembers = (members: string[]) => this.emit('membership', { lock: this.lock, members, added: [], removed: [] } satisfies MembershipEvent);
    campaign.on('change', onChange);
    campaign.on('members', onMembers);
    this.#detach = () => {
      campaign.off('change', onChange);
      campaign.off('members', onMembers);
    };
    (this as EventEmitter).on('newListener', (event: string | symbol, listener: (...args: unknown[]) => void) => {
      if (this.#closed) return;
      if (event === 'leadership') queueMicrotask(() => (listener as (e: LeadershipEvent) => void)(this.#leadershipEvent()));
      if (event === 'membership') {
        const members = [...campaign.members];
        queueMicrotask(() => (listener as (e: MembershipEvent) => void)({ lock: this.lock, members, added: members, removed: [] }));
      }
    });
  }

  get stats(): LockStats {
    const renewedAt = this.#campaign.renewedAt;
    return { transitions: this.#counts.transitions, lastRenewAgeMs: renewedAt === undefined ? undefined : performance.now() - renewedAt };
  }

  #leadershipEvent(): LeadershipEvent {
    const term = this.#campaign.term;
    const isLocal = term !== undefined;
    return { lock: this.lock, leader: isLocal ? this.#campaign.memberId : this.#campaign.leader, isLocal, ...(term ? { term } : {}) };
  }

  get isLeader(): boolean {
    return !this.#closed && this.#campaign.isLeader;
  }

  get leader(): string | undefined {
    return this.#campaign.leader;
  }

  get term(): LeadershipTerm | undefined {
    return this.#closed ? undefined : this.#campaign.term;
  }

  get state(): LeaderState {
    return this.#state;
  }

  get localMember(): ClusterMember {
    return { id: this.#campaign.memberId, isLocal: true, isLeader: this.isLeader };
  }

  get members(): readonly ClusterMember[] {
    const leader = this.leader;
    const ids = new Set([...this.#campaign.members, this.#campaign.memberId, ...(leader ? [leader] : [])]);
    return [...ids].sort().map((id) => ({ id, isLocal: id === this.#campaign.memberId, isLeader: id === leader }));
  }

  /** See LockView.prepareHandOver. */
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
    await this.#close(this, { release: options.release ?? true });
  }
}
