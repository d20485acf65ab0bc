import { ServiceSupport } from '../spi/service.ts';
import type { Logger } from '../logging/logger.ts';
import type { ClusterService, ClusterView } from './cluster-service.ts';
import { Elector, type ElectorOptions } from './election/elector.ts';
import { newInstanceId } from './election/instance.ts';
import type { LockStore } from './election/lock-store.ts';
import type { ElectionTimings } from './election/timings.ts';
import { assertLockName } from './lock-name.ts';
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
  readonly #store: LockStore;
  readonly #logger: Logger;
  readonly #electorOptions: ElectorClusterServiceOptions['elector'];
  readonly #entries = new Map<string, Entry>();

  constructor(options: ElectorClusterServiceOptions) {
    super();
    this.kind = options.kind;
    this.memberId = options.memberId;
    this.instanceId = options.instanceId ?? newInstanceId();
    this.timings = options.timings;
    this.#store = options.store;
    this.#logger = options.logger.child({ member: options.memberId });
    this.#electorOptions = options.elector;
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
      });
      let last: string | undefined;
      const onChange = ({ leader, isLocal }: { leader: string | undefined; isLocal: boolean }) => {
        if (leader === last) return;
        last = leader;
        if (leader) this.#logger.info(`member ${leader} is now leader of ${lock}${isLocal ? ' (this member)' : ''}`, { lock, leader });
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

  protected doStart(): void {
    for (const { elector } of this.#entries.values()) elector.start();
    this.#logger.info(`Cluster service ${this.kind} started as member ${this.memberId} (instance ${this.instanceId})`, { member: this.memberId, instance: this.instanceId });
  }

  protected async doStop(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((entry) => this.#stopElector(entry)));
    await this.#store.close?.();
  }
}
