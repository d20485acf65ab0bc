import { ConfigurationError } from '../../errors.ts';

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
