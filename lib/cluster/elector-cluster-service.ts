import { ServiceSupport } from '../spi/service.ts';
import type { Logger } from '../logging/logger.ts';
import type { ClusterService, ClusterView, StoreRequests } from './cluster-service.ts';
import { Elector, type ElectorOptions } from './election/elector.ts';
import { newInstanceId } from './election/instance.ts';
import { InstrumentedLockStore } from './election/instrumented-store.ts';
import type { LockStore } from './election/lock-store.ts';
import type { ElectionTimings } from './election/timings.ts';
import { assertLockName } from './lock-name.ts';
import { Rebalancer } from './rebalance.ts';
import { LockView } from './view.ts';

export interface ElectorClusterServiceOptions {
  kind: string;
  memberId: string;
  /** This process's instance id; a fresh one by default (see election/instance.ts). */
  instanceId?: string;
  store: LockStore;
  timings: ElectionTimings;
  logger: Logger;
  /** Extra elector settings a protocol needs (ConfigMap mode's acquireDelay and holderValid). */
  elector?: Partial<Pick<ElectorOptions, 'acquireDelay' | 'holderValid' | 'callTimeout' | 'now' | 'renewInterval'>>;
  /** Spread the leaders of this service's locks evenly over the live members (see rebalance.ts). Default false. */
  rebalance?: boolean;
}

interface Entry {
  elector: Elector;
  views: Set<LockView>;
  /** Detaches the leadership log listener. */
  quiet: () => void;
}

/**
 * A cluster service whose locks are elected by one Elector each over a LockStore. Views are
 * reference-counted per lock: the first view starts the lock's election (once the service runs),
 * and closing the last one stops it, releasing the lock.
 */
export class ElectorClusterService extends ServiceSupport implements ClusterService {
  readonly kind: string;
  readonly memberId: string;
  readonly instanceId: string;
  readonly timings: ElectionTimings;
  readonly #store: InstrumentedLockStore;
  readonly #logger: Logger;
  readonly #electorOptions: ElectorClusterServiceOptions['elector'];
  readonly #entries = new Map<string, Entry>();
  readonly #rebalancer: Rebalancer | undefined;

  constructor(options: ElectorClusterServiceOptions) {
    super();
    this.kind = options.kind;
    this.memberId = options.memberId;
    this.instanceId = options.instanceId ?? newInstanceId();
    this.timings = options.timings;
    // Every election request goes through the counting wrapper, so metrics can tell the store's health.
    this.#store = new InstrumentedLockStore(options.store);
    this.#logger = options.logger.child({ member: options.memberId });
    this.#electorOptions = options.elector;
    if (options.rebalance) {
      const interval = options.elector?.renewInterval ?? this.timings.retryPeriod;
      this.#rebalancer = new Rebalancer(
        { memberId: this.memberId, sight: () => this.#sight(), handOver: (lock, to) => this.#handOver(lock, to) },
        // Hand over once the membership held still for two renewals; take a lock outside the
        // assignment once it went a whole lease without a leader.
        { intervalMs: interval, settleMs: 2 * interval, graceMs: this.timings.leaseDuration, logger: this.#logger },
      );
    }
  }

  get storeRequests(): StoreRequests {
    return this.#store;
  }

  get locks(): string[] {
    return [...this.#entries.keys()];
  }

  view(lock: string): ClusterView {
    let entry = this.#entries.get(lock);
    if (!entry) {
      assertLockName(lock);
      const elector = new Elector({
        lock,
        memberId: this.memberId,
        instanceId: this.instanceId,
        store: this.#store,
        timings: this.timings,
        logger: this.#logger,
        ...this.#electorOptions,
        ...(this.#rebalancer ? { mayAcquire: () => this.#rebalancer!.mayAcquire(lock) } : {}),
      });
      let last: string | undefined;
      const onChange = ({ leader, isLocal }: { leader: string | undefined; isLocal: boolean }) => {
        // Keyed by whether it is this process too: another process under this member's id (a duplicate
        // id, or this member restarted) leading, then this one, are two changes.
        const who = isLocal ? ' (this member)' : leader === this.memberId ? ' (another process with this member id)' : '';
        const key = leader === undefined ? undefined : `${leader}${who}`;
        if (key === last) return;
        last = key;
        if (key) this.#logger.info(`member ${leader} is now leader of ${lock}${who}`, { lock, leader });
        else this.#logger.info(`no member leads ${lock} now`, { lock });
      };
      elector.on('change', onChange);
      entry = { elector, views: new Set(), quiet: () => elector.off('change', onChange) };
      this.#entries.set(lock, entry);
      if (this.isStarted) elector.start();
    }
    const view = new LockView(entry.elector, (v, options) => this.#release(lock, v, options));
    entry.views.add(view);
    return view;
  }

  isLeader(lock: string): boolean {
    return this.#entries.get(lock)?.elector.isLeader ?? false;
  }

  async #release(lock: string, view: LockView, options: { release: boolean }): Promise<void> {
    const entry = this.#entries.get(lock);
    if (!entry || !entry.views.delete(view)) return;
    if (!options.release) entry.elector.keepUntilExpiry();
    if (entry.views.size > 0) return;
    this.#entries.delete(lock);
    await this.#stopElector(entry);
  }

  /**
   * The elector says itself what became of the lock (released, left to expire, or a release that
   * failed), so the "no member leads" line, which would claim a handover, is not logged on stop.
   */
  async #stopElector(entry: Entry): Promise<void> {
    entry.quiet();
    await entry.elector.stop();
  }

  /** Each open lock as this member sees it, for the rebalancer. */
  #sight() {
    return [...this.#entries].map(([lock, { elector }]) => {
      const isLeader = elector.isLeader;
      return { lock, isLeader, leader: isLeader ? this.memberId : elector.leader, members: elector.members };
    });
  }

  /**
   * A rebalancing hand-over: the views' listeners (master: routes) stop taking work and drain while
   * this member still leads, then the elector releases the lock with its marker and goes on as a
   * follower. Called off, with the listeners resumed, when one could not drain within a lease.
   */
  async #handOver(lock: string, to: string): Promise<void> {
    const entry = this.#entries.get(lock);
    if (!entry || !entry.elector.isLeader) return;
    const views = [...entry.views];
    const drained = (await Promise.all(views.map((v) => v.prepareHandOver(to, this.timings.leaseDuration)))).every(Boolean);
    const outcome = drained && this.#entries.get(lock) === entry ? await entry.elector.yield() : 'none';
    if (outcome !== 'released') {
      if (!drained) this.#logger.warn(`Rebalancing: ${lock} stays with member ${this.memberId}: its routes did not drain within ${this.timings.leaseDuration}ms`, { lock });
      for (const view of views) view.resumeAfterHandOver();
    }
  }

  protected doStart(): void {
    this.#rebalancer?.start();
    for (const { elector } of this.#entries.values()) elector.start();
    this.#logger.info(`Cluster service ${this.kind} started as member ${this.memberId} (instance ${this.instanceId})`, { member: this.memberId, instance: this.instanceId });
  }

  protected async doStop(): Promise<void> {
    this.#rebalancer?.stop();
    await Promise.all([...this.#entries.values()].map((entry) => this.#stopElector(entry)));
    await this.#store.close?.();
  }
}
