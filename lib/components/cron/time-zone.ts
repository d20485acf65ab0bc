/**
 * UTC offsets of an IANA time zone, read from Intl (the ICU data Node ships), so that the cron
 * schedule can be computed on the wall clock of any zone without a time zone library.
 */
const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** The process's own zone (TZ, else the system's), which a cron endpoint uses without `timezone`. */
export function processTimeZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** An error text when Intl does not know the zone, with the name it probably meant. */
export function checkTimeZone(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    const wanted = zone.trim().toLowerCase().replace(/ /g, '_');
    const known = Intl.supportedValuesOf('timeZone');
    const guess = wanted === '' ? undefined : known.find((z) => z.toLowerCase() === wanted) ?? known.find((z) => z.toLowerCase().endsWith(`/${wanted}`));
    return (
      `expected an IANA time zone name such as America/New_York, Europe/Paris or UTC` +
      (guess ? `. Did you mean "${guess}"?` : '') +
      ` Leave the option out to use the process's time zone`
    );
  }
}

/** The zone's offset from UTC at `instant`, in ms (negative west of Greenwich). */
export function offsetAt(zone: string, instant: number): number {
  let format = offsetFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    offsetFormats.set(zone, format);
  }
  const name = format.formatToParts(instant).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const match = /^GMT([+-])(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(name);
  if (!match) return 0;
  const [, sign, hours, minutes, seconds] = match as unknown as [string, string, string, string, string | undefined];
  const ms = ((Number(hours) * 60 + Number(minutes)) * 60 + Number(seconds ?? 0)) * 1000;
  return sign === '-' ? -ms : ms;
}

/** Offsets of real zones change a few times a year at most, never twice in a day: probing daily finds every change. */
const PROBE = 86_400_000;

/** The first instant in (after, until] at which the zone's offset differs from the one at `after`. */
export function nextOffsetChange(zone: string, after: number, until: number): number | undefined {
  const offset = offsetAt(zone, after);
  let lo = after;
  while (lo < until) {
    const hi = Math.min(lo + PROBE, until);
    if (offsetAt(zone, hi) !== offset) return bisect(zone, offset, lo, hi);
    lo = hi;
  }
  return undefined;
}

/** The first instant in (lo, hi] off `offset`, given that `lo` is on it and `hi` is not. */
function bisect(zone: string, offset: number, lo: number, hi: number): number {
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetAt(zone, mid) === offset) lo = mid;
    else hi = mid;
  }
  return hi;
}
