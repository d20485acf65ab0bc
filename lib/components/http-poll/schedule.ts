/** When the next poll runs: a jittered fixed delay after success, exponential backoff after failures, Retry-After when the server says so. */

export interface PollSchedule {
  /** Wait after a successful poll. */
  delay: number;
  /** Fraction of a wait added or removed at random: 0.1 makes 1s anything in [0.9s, 1.1s]. */
  jitter: number;
  /** Wait after the first failure. */
  backoffDelay: number;
  /** Factor between consecutive failures' waits. */
  backoffMultiplier: number;
  /** Cap on the backoff wait (a Retry-After is honoured even above it). */
  backoffMax: number;
}

export function jittered(ms: number, jitter: number, random: () => number = Math.random): number {
  if (ms <= 0 || jitter <= 0) return Math.max(0, ms);
  return Math.max(0, Math.round(ms * (1 - jitter + 2 * jitter * random())));
}

/** The wait after `failures` consecutive failures (1 = the first), jittered and never above the cap. */
export function backoff(failures: number, schedule: PollSchedule, random: () => number = Math.random): number {
  const raw = schedule.backoffDelay * schedule.backoffMultiplier ** Math.max(0, failures - 1);
  const capped = Math.min(schedule.backoffMax, raw);
  return Math.min(schedule.backoffMax, jittered(capped, schedule.jitter, random));
}

/** Retry-After as milliseconds from now: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
