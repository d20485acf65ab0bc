import type { Logger } from '../logging/logger.ts';
import type { ClusterService, HandOverEvent, LeadershipTerm } from './cluster-service.ts';
import { trackSingleton } from './singleton-registry.ts';

/**
 * What a singleton service gets when it starts: the leadership term it runs for. A term ends when
 * this member's leadership lapses (a pause or a partition past renewDeadline), another member takes
 * the lock, or the singleton closes; a later leadership of this member is a new term, with a new start.
 */
export interface SingletonTerm {
  readonly lock: string;
  readonly memberId: string;
  /**
   * The term's fencing token: strictly greater than every earlier term's of this lock, on any member.
   * Send it with each write, so a store that keeps the highest token it has seen refuses a stale leader.
   */
  readonly token: number;
  /** Aborted (with a LeadershipLostError) when the term ends: stop the work, cancel what waits. */
  readonly signal: AbortSignal;
  /**
   * The gate: true while this term's leadership is valid at this instant, judged on the monotonic
   * clock. Check it before each unit of work. A member resumed after a pause (SIGSTOP, a long GC)
   * may run a due timer before any timer has noticed the lapse; then it is already false (and the
   * signal aborts). Bound to the term, so `const { isLeader } = term` works.
   */
  isLeader(): boolean;
  /** The same as isLeader(), as a LeadershipTerm has it: a SingletonTerm is one, e.g. for `view.state.set(key, value, { term })`. */
  readonly isCurrent: boolean;
}

/** A custom singleton service: started on the leader of the lock, stopped when its term ends. */
export interface SingletonService {
  /** Starts the work for `term`; a service written as `start()` may ignore it. */
  start(term: SingletonTerm): void | Promise<void>;
  /** Called once the term ended (after its signal aborted), or on close. Optional for a service that stops on the signal. */
  stop?(): void | Promise<void>;
}

export interface SingletonHandle {
  /** Whether the service is started on this member now. */
  readonly running: boolean;
  /** The term the service runs for while it runs here. */
  readonly term: SingletonTerm | undefined;
  /** Stops the service if it runs here and releases the view (and, if it was the last one, the lock). */
  close(): Promise<void>;
}

/**
 * Runs `service` only on the member that leads `lock`: started with the term when this member
 * becomes leader, stopped when the term ends. Starts and stops are serialised, so there is never a
 * second start before the previous stop has finished, and a new term of the same member stops the
 * old term's service before starting it again. A start that throws is logged and tried again at the
 * next leadership change.
 *
 * Two members never run a unit of work at once when the service checks `isLeader()` before each
 * unit: a member's term is valid only until renewDeadline after its last successful renewal, and
 * another member takes the lock only after leaseDuration (> renewDeadline) without seeing a renewal.
 * Starting and stopping alone cannot promise that: the stop runs from a timer or a notification,
 * which a paused member runs late, after its own due timers.
 */
export function singleton(cluster: ClusterService, lock: string, service: SingletonService, logger?: Logger): SingletonHandle {
  const view = cluster.view(lock);
  let current: { term: LeadershipTerm; handed: SingletonTerm } | undefined;
  let closed = false;
  /** A rebalancing hand-over is under way: the service stops first, while this member still leads. */
  let steppingDown = false;
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (action: () => Promise<void>) => {
    queue = queue.then(action, action);
    return queue;
  };
  const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));
  // Level-triggered: each leadership change (or a term's end) brings the service to the view's state.
  const sync = async () => {
    const wanted = closed || steppingDown ? undefined : view.term;
    if (current && current.term !== wanted) {
      current = undefined;
      try {
        await service.stop?.();
      } catch (err) {
        logger?.error(`Singleton service for ${lock} failed to stop: ${describe(err)}`, { lock });
      }
    }
    if (!wanted || current || closed || !wanted.isCurrent) return;
    const handed = handOut(wanted);
    try {
      await service.start(handed);
    } catch (err) {
      logger?.error(`Singleton service for ${lock} failed to start: ${describe(err)}`, { lock });
      return;
    }
    current = { term: wanted, handed };
    // The term may end without a leadership event reaching this view first (its end is noticed by
    // isLeader()); the signal always fires, so the stop follows every end.
    if (wanted.signal.aborted) void enqueue(sync);
    else wanted.signal.addEventListener('abort', () => void enqueue(sync), { once: true });
  };
  // The leadership that follows a hand-over (another member's, or this one's again when it was called off) ends the step-down.
  const onLeadership = () => {
    steppingDown = false;
    void enqueue(sync);
  };
  const onHandOver = (event: HandOverEvent) => {
    steppingDown = true;
    event.defer(enqueue(sync).then(() => true));
  };
  view.on('leadership', onLeadership);
  view.on('handover', onHandOver);
  return trackSingleton(cluster, {
    get running() {
      return current !== undefined;
    },
    get term() {
      return current?.handed;
    },
    async close() {
      if (closed) return queue;
      closed = true;
      view.off('leadership', onLeadership);
      view.off('handover', onHandOver);
      await enqueue(sync);
      await view.close();
    },
  });
}

function handOut(term: LeadershipTerm): SingletonTerm {
  return {
    lock: term.lock,
    memberId: term.memberId,
    token: term.token,
    signal: term.signal,
    isLeader: () => term.isCurrent,
    get isCurrent() {
      return term.isCurrent;
    },
  };
}
