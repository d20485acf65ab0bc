import { ConfigurationError } from '../../errors.ts';
import { formatDuration } from '../../uri/duration.ts';

/** How often and how long leadership is claimed; client-go's names, meanings and defaults. */
export interface ElectionTimings {
  /** How long a follower waits, after it last saw the record change, before it may take the lock (15 s). */
  leaseDuration: number;
  /** How long the leader keeps leading without a successful renew before it steps down by itself (10 s). */
  renewDeadline: number;
  /** Time between attempts to acquire or renew (2 s). */
  retryPeriod: number;
  /** Followers wait retryPeriod × (1 + random × (jitter − 1)) between attempts (1.2). */
  jitter: number;
}

/** The longest delay a Node.js timer holds: 2^31 − 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * The shortest timings renewals keep up with: a renewal is a store write (an fsync'd file or an API
 * request, milliseconds to tens of milliseconds) and a loaded event loop runs timers tens of
 * milliseconds late, so a leader must have several such renewals' time within its lease.
 */
export const MIN_LEASE_DURATION = 200;
export const MIN_RETRY_PERIOD = 20;

const SETTINGS = { leaseDuration: 'DROMEDARY_LEASE_DURATION', renewDeadline: 'DROMEDARY_RENEW_DEADLINE', retryPeriod: 'DROMEDARY_RETRY_PERIOD' } as const;

export const DEFAULT_TIMINGS: Readonly<ElectionTimings> = { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000, jitter: 1.2 };

/**
 * Safety rests on these: the leader stops (renewDeadline) strictly before any follower may take over
 * (leaseDuration after it last saw a renew), and several renew attempts fit in renewDeadline.
 */
export function validateTimings(partial: Partial<ElectionTimings> = {}): ElectionTimings {
  const t: ElectionTimings = { ...DEFAULT_TIMINGS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  for (const [name, value] of Object.entries(t)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigurationError(`election timing ${name} must be a positive number of milliseconds, got ${String(value)}`);
    }
  }
  if (t.jitter < 1) throw new ConfigurationError(`election jitter must be >= 1, got ${t.jitter}`);
  for (const name of ['leaseDuration', 'renewDeadline', 'retryPeriod'] as const) {
    // A longer delay makes Node fire the timer after 1 ms instead (TimeoutOverflowWarning): a busy loop.
    if ((name === 'retryPeriod' ? t.jitter : 1) * t[name] + 1 > MAX_TIMER_MS) {
      throw new ConfigurationError(
        `${name} (${SETTINGS[name]}) of ${+(t[name] / 86_400_000).toFixed(2)} days is longer than a Node.js timer can wait: at most ${MAX_TIMER_MS}ms (about 24.8 days)${name === 'retryPeriod' ? ` divided by the jitter ${t.jitter}` : ''}`,
      );
    }
  }
  if (t.retryPeriod < MIN_RETRY_PERIOD || t.leaseDuration < MIN_LEASE_DURATION) {
    throw new ConfigurationError(
      `leaseDuration ${formatDuration(t.leaseDuration)} and retryPeriod ${formatDuration(t.retryPeriod)} are too short for renewals to keep up: ` +
        `use at least ${MIN_LEASE_DURATION}ms and ${MIN_RETRY_PERIOD}ms (the defaults are 15s and 2s). Each renewal is a store write (an fsync'd file, an API request) ` +
        'and a busy machine delays timers by tens of milliseconds; with less time than that the leader misses its renewals and leadership flaps. ' +
        'Set DROMEDARY_LEASE_DURATION, DROMEDARY_RENEW_DEADLINE and DROMEDARY_RETRY_PERIOD with units, e.g. 15s, 10s, 2s.',
    );
  }
  if (!(t.leaseDuration > t.renewDeadline)) {
    throw new ConfigurationError(
      `leaseDuration (${t.leaseDuration}ms) must be greater than renewDeadline (${t.renewDeadline}ms): the leader must step down before a follower may take over. ` +
        'Set DROMEDARY_LEASE_DURATION higher or DROMEDARY_RENEW_DEADLINE lower.',
    );
  }
  if (!(t.renewDeadline > t.jitter * t.retryPeriod)) {
    throw new ConfigurationError(
      `renewDeadline (${t.renewDeadline}ms) must be greater than jitter × retryPeriod (${t.jitter} × ${t.retryPeriod}ms): the leader needs several renew attempts inside it. ` +
        'Set DROMEDARY_RENEW_DEADLINE higher or DROMEDARY_RETRY_PERIOD lower.',
    );
  }
  return t;
}
