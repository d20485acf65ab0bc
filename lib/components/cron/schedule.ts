import { nextOffsetChange, offsetAt } from './time-zone.ts';

/** The parts of a cron expression the schedule walks; days are checked by `dayMatches`. */
export interface CronFields {
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  /** Whether the date (month 1-12) matches the day-of-month, month and day-of-week fields. */
  dayMatches(year: number, month: number, day: number): boolean;
}

/** Far enough for the rarest schedules (the fifth Monday of February); beyond it there is no fire. */
const MAX_DAYS = 366 * 30;
const DAY = 86_400_000;

/**
 * The fire times of a cron expression on the wall clock of a time zone, as Quartz reads it, with
 * the daylight-saving switches made explicit:
 * - clocks forward: wall times that do not exist that night never fire (no catch-up);
 * - clocks back: the repeated wall times fire in both passes when the schedule runs in every hour
 *   (every second, every 5 minutes: elapsed time goes on, so must the fires); a schedule limited to
 *   some hours (at 01:30) names a wall-clock time, which fires once, in the first pass.
 *
 * The search runs on wall-clock time (UTC arithmetic on local fields) one offset period at a time,
 * so nothing depends on how a library resolves an ambiguous or missing local time.
 */
export class CronSchedule {
  readonly #fields: CronFields;
  readonly #zone: string;
  readonly #repeatsInFold: boolean;

  constructor(fields: CronFields, zone: string) {
    this.#fields = { seconds: sorted(fields.seconds), minutes: sorted(fields.minutes), hours: sorted(fields.hours), dayMatches: fields.dayMatches };
    this.#zone = zone;
    this.#repeatsInFold = new Set(fields.hours).size === 24;
  }

  /** The first fire time strictly after `instant` (ms since the epoch), or undefined if there is none. */
  nextAfter(instant: number): number | undefined {
    let from = instant;
    let offset = offsetAt(this.#zone, from);
    let wallFrom = from + offset;
    let wall = this.#nextWall(wallFrom);
    // Each pass crosses one offset change: a far fire time of a rare schedule may cross a few dozen.
    for (let pass = 0; pass < 256 && wall !== undefined; pass += 1) {
      const candidate = wall - offset;
      const change = nextOffsetChange(this.#zone, from, candidate);
      if (change === undefined) return candidate;
      const next = offsetAt(this.#zone, change);
      // Clocks back by (offset - next): wall times from change + next up to change + offset come again.
      const skipRepeat = next < offset && !this.#repeatsInFold;
      const nextWallFrom = change + (skipRepeat ? offset : next) - 1;
      // No wall time between wallFrom and wall matched; search again only what the change brought back.
      if (nextWallFrom < wallFrom || wall <= nextWallFrom) wall = this.#nextWall(nextWallFrom);
      wallFrom = nextWallFrom;
      from = change;
      offset = next;
    }
    return undefined;
  }

  /** The first matching wall-clock second strictly after `wall` (a local time written as UTC ms). */
  #nextWall(wall: number): number | undefined {
    const { seconds, minutes, hours } = this.#fields;
    const lower = new Date(Math.floor(wall / 1000) * 1000 + 1000);
    let bound: [number, number, number] | undefined = [lower.getUTCHours(), lower.getUTCMinutes(), lower.getUTCSeconds()];
    let day = Date.UTC(lower.getUTCFullYear(), lower.getUTCMonth(), lower.getUTCDate());
    for (let i = 0; i < MAX_DAYS; i += 1, day += DAY, bound = undefined) {
      const date = new Date(day);
      if (!this.#fields.dayMatches(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate())) continue;
      const time = firstTime(hours, minutes, seconds, bound);
      if (time !== undefined) return day + time;
    }
    return undefined;
  }
}

/** ms after midnight of the first hour:minute:second at or after `bound` (all of them without one). */
function firstTime(
  hours: readonly number[],
  minutes: readonly number[],
  seconds: readonly number[],
  bound: [number, number, number] | undefined,
): number | undefined {
  const at = (h: number, m: number, s: number) => ((h * 60 + m) * 60 + s) * 1000;
  if (!bound) return at(hours[0]!, minutes[0]!, seconds[0]!);
  const [bh, bm, bs] = bound;
  for (const h of hours) {
    if (h < bh) continue;
    if (h > bh) return at(h, minutes[0]!, seconds[0]!);
    for (const m of minutes) {
      if (m < bm) continue;
      if (m > bm) return at(h, m, seconds[0]!);
      for (const s of seconds) if (s >= bs) return at(h, m, s);
    }
  }
  return undefined;
}

function sorted(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}
