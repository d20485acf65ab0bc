/**
 * Java SimpleDateFormat patterns (what Camel's `${date:now:yyyy-MM-dd}` uses), compiled once into a
 * list of field writers. Letters outside quotes are fields; `'text'` is literal and `''` is a quote.
 */

export type DateFormatter = (epochMs: number) => string;

/** Where in the pattern a problem is, and what it is; the caller turns it into its own error. */
export type PatternFailure = (index: number, problem: string) => never;

interface Fields {
  year: number;
  /** 0-11 */
  month: number;
  day: number;
  hours: number;
  minutes: number;
  seconds: number;
  millis: number;
  /** 0 = Sunday */
  weekday: number;
  /** minutes east of UTC */
  offset: number;
}

type FieldReader = (epochMs: number) => Fields;
type Writer = (f: Fields, epochMs: number) => string;

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const SUPPORTED = 'G y M L d D E u a H k K h m s S z Z X';

function pad(n: number, width: number): string {
  const s = String(Math.abs(n));
  const padded = s.length >= width ? s : '0'.repeat(width - s.length) + s;
  return n < 0 ? `-${padded}` : padded;
}

function offsetText(offset: number, withColon: boolean, hoursOnly: boolean): string {
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const hh = pad(Math.floor(abs / 60), 2);
  const mm = pad(abs % 60, 2);
  if (hoursOnly) return abs % 60 === 0 ? `${sign}${hh}` : `${sign}${hh}${mm}`;
  return withColon ? `${sign}${hh}:${mm}` : `${sign}${hh}${mm}`;
}

function localFields(ms: number): Fields {
  const d = new Date(ms);
  return {
    year: d.getFullYear(),
    month: d.getMonth(),
    day: d.getDate(),
    hours: d.getHours(),
    minutes: d.getMinutes(),
    seconds: d.getSeconds(),
    millis: d.getMilliseconds(),
    weekday: d.getDay(),
    offset: -d.getTimezoneOffset(),
  };
}

function utcFields(ms: number): Fields {
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth(),
    day: d.getUTCDate(),
    hours: d.getUTCHours(),
    minutes: d.getUTCMinutes(),
    seconds: d.getUTCSeconds(),
    millis: d.getUTCMilliseconds(),
    weekday: d.getUTCDay(),
    offset: 0,
  };
}

/** Fields in a named IANA zone; the zone is validated once here, so a bad name fails at compile time. */
function zoneFields(timeZone: string): FieldReader {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
    weekday: 'short',
  });
  const weekdays: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
  return (ms) => {
    const out: Record<string, string> = {};
    for (const p of parts.formatToParts(ms)) out[p.type] = p.value;
    const year = Number(out.year);
    const month = Number(out.month) - 1;
    const day = Number(out.day);
    const hours = Number(out.hour);
    const minutes = Number(out.minute);
    const seconds = Number(out.second);
    const millis = ((ms % 1000) + 1000) % 1000;
    const wall = Date.UTC(year, month, day, hours, minutes, seconds, millis);
    return { year, month, day, hours, minutes, seconds, millis, weekday: weekdays[out.weekday!] ?? 0, offset: Math.round((wall - ms) / 60_000) };
  };
}

function readerFor(timeZone: string | undefined): FieldReader {
  if (timeZone === undefined) return localFields;
  if (/^(utc|gmt|z)$/i.test(timeZone)) return utcFields;
  return zoneFields(timeZone);
}

function zoneName(timeZone: string | undefined, style: 'short' | 'long'): (ms: number) => string {
  if (timeZone !== undefined && /^(utc|gmt|z)$/i.test(timeZone)) return () => (style === 'short' ? 'UTC' : 'Coordinated Universal Time');
  const fmt = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: style });
  return (ms) => fmt.formatToParts(ms).find((p) => p.type === 'timeZoneName')?.value ?? '';
}

function fieldWriter(letter: string, count: number, timeZone: string | undefined, fail: () => never): Writer {
  switch (letter) {
    case 'G':
      return (f) => (f.year > 0 ? 'AD' : 'BC');
    case 'y':
      return count === 2 ? (f) => pad(f.year % 100, 2) : (f) => pad(f.year, count);
    case 'M':
    case 'L':
      if (count >= 4) return (f) => MONTHS[f.month]!;
      if (count === 3) return (f) => MONTHS[f.month]!.slice(0, 3);
      return (f) => pad(f.month + 1, count);
    case 'd':
      return (f) => pad(f.day, count);
    case 'D':
      return (f) => pad(Math.round((Date.UTC(f.year, f.month, f.day) - Date.UTC(f.year, 0, 1)) / 86_400_000) + 1, count);
    case 'E':
      return count >= 4 ? (f) => DAYS[f.weekday]! : (f) => DAYS[f.weekday]!.slice(0, 3);
    case 'u':
      return (f) => pad(f.weekday === 0 ? 7 : f.weekday, count);
    case 'a':
      return (f) => (f.hours < 12 ? 'AM' : 'PM');
    case 'H':
      return (f) => pad(f.hours, count);
    case 'k':
      return (f) => pad(f.hours === 0 ? 24 : f.hours, count);
    case 'K':
      return (f) => pad(f.hours % 12, count);
    case 'h':
      return (f) => pad(f.hours % 12 === 0 ? 12 : f.hours % 12, count);
    case 'm':
      return (f) => pad(f.minutes, count);
    case 's':
      return (f) => pad(f.seconds, count);
    case 'S':
      return (f) => pad(f.millis, count);
    case 'z': {
      const name = zoneName(timeZone, count >= 4 ? 'long' : 'short');
      return (_f, ms) => name(ms);
    }
    case 'Z':
      return (f) => offsetText(f.offset, false, false);
    case 'X':
      if (count > 3) return fail();
      return (f) => (f.offset === 0 ? 'Z' : offsetText(f.offset, count === 3, count === 1));
    default:
      return fail();
  }
}

/**
 * Compiles a SimpleDateFormat pattern. `timeZone` is an IANA name or UTC; without it the process's
 * local zone is used, as Camel uses the JVM default. Unknown letters and unterminated quotes are
 * reported through `fail` with their index in the pattern.
 */
export function compileDateFormat(pattern: string, fail: PatternFailure, timeZone?: string): DateFormatter {
  const writers: Array<string | Writer> = [];
  let literal = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "'") {
      if (pattern[i + 1] === "'") {
        literal += "'";
        i += 2;
        continue;
      }
      const start = i;
      i += 1;
      for (;;) {
        if (i >= pattern.length) fail(start, "unterminated quote in the date pattern; close it with ' (write '' for a literal quote)");
        if (pattern[i] === "'") {
          if (pattern[i + 1] === "'") {
            literal += "'";
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        literal += pattern[i];
        i += 1;
      }
      continue;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      let count = 1;
      while (pattern[i + count] === c) count += 1;
      const at = i;
      const writer = fieldWriter(c, count, timeZone, () =>
        fail(at, `unsupported date pattern letter '${c.repeat(count)}'; supported letters are ${SUPPORTED}; quote literal text like 'T'`),
      );
      if (literal) writers.push(literal);
      literal = '';
      writers.push(writer);
      i += count;
      continue;
    }
    literal += c;
    i += 1;
  }
  if (literal) writers.push(literal);

  const read = readerFor(timeZone);
  return (ms) => {
    const f = read(ms);
    let out = '';
    for (const w of writers) out += typeof w === 'string' ? w : w(f, ms);
    return out;
  };
}
