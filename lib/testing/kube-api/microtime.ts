/**
 * metav1.MicroTime and metav1.Time as the apiserver parses and prints them. MicroTime parsing is
 * Go's `time.Parse(RFC3339Micro)`, which demands exactly six fractional digits; the error text
 * mimics Go's, element by element, because clients log it and people search for it.
 */

export const RFC3339_MICRO = '2006-01-02T15:04:05.000000Z07:00';

type Element = { layout: string; digits?: number; literal?: string; frac?: boolean; tz?: boolean };

const ELEMENTS: Element[] = [
  { layout: '2006', digits: 4 },
  { layout: '-', literal: '-' },
  { layout: '01', digits: 2 },
  { layout: '-', literal: '-' },
  { layout: '02', digits: 2 },
  { layout: 'T', literal: 'T' },
  { layout: '15', digits: 2 },
  { layout: ':', literal: ':' },
  { layout: '04', digits: 2 },
  { layout: ':', literal: ':' },
  { layout: '05', digits: 2 },
  { layout: '.000000', frac: true },
  { layout: 'Z07:00', tz: true },
];

/** Thrown with Go's `parsing time "v" as "layout": …` text. */
export class TimeParseError extends Error {
  constructor(value: string, layout: string, detail: string) {
    super(`parsing time ${JSON.stringify(value)} as ${JSON.stringify(layout)}: ${detail}`);
    this.name = 'TimeParseError';
  }
}

const isDigits = (s: string): boolean => /^\d+$/.test(s);

/** Parses an RFC3339Micro value; returns epoch milliseconds and the microsecond remainder. */
export function parseMicroTime(value: string): { ms: number; micros: number } {
  let rest = value;
  const nums: number[] = [];
  let micros = 0;
  let offsetMinutes = 0;
  const fail = (layoutRest: string): never => {
    throw new TimeParseError(value, RFC3339_MICRO, `cannot parse ${JSON.stringify(rest)} as ${JSON.stringify(layoutRest)}`);
  };
  for (const el of ELEMENTS) {
    if (el.literal !== undefined) {
      if (!rest.startsWith(el.literal)) fail(el.literal);
      rest = rest.slice(el.literal.length);
    } else if (el.digits !== undefined) {
      const chunk = rest.slice(0, el.digits);
      if (chunk.length < el.digits || !isDigits(chunk)) fail(el.layout);
      nums.push(Number(chunk));
      rest = rest.slice(el.digits);
    } else if (el.frac) {
      const chunk = rest.slice(0, 7);
      if (chunk.length < 7 || chunk[0] !== '.' || !isDigits(chunk.slice(1))) fail(el.layout);
      micros = Number(chunk.slice(1));
      rest = rest.slice(7);
    } else if (el.tz) {
      if (rest.startsWith('Z')) {
        rest = rest.slice(1);
      } else {
        const m = /^([+-])(\d\d):(\d\d)/.exec(rest);
        if (!m) fail(el.layout);
        offsetMinutes = (m![1] === '-' ? -1 : 1) * (Number(m![2]) * 60 + Number(m![3]));
        rest = rest.slice(6);
      }
    }
  }
  if (rest.length > 0) throw new TimeParseError(value, RFC3339_MICRO, `extra text: ${JSON.stringify(rest)}`);
  const [year, month, day, hour, minute, second] = nums as [number, number, number, number, number, number];
  const outOfRange = (what: string): never => {
    throw new TimeParseError(value, RFC3339_MICRO, `${what} out of range`);
  };
  if (month < 1 || month > 12) outOfRange('month');
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) outOfRange('day');
  if (hour > 23) outOfRange('hour');
  if (minute > 59) outOfRange('minute');
  if (second > 59) outOfRange('second');
  const ms = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000 + Math.floor(micros / 1000);
  return { ms, micros: micros % 1000 };
}

/** Canonical output: UTC with exactly six fractional digits. */
export function formatMicroTime(t: { ms: number; micros: number }): string {
  const iso = new Date(t.ms).toISOString(); // …SS.mmmZ
  return `${iso.slice(0, 23)}${String(t.micros).padStart(3, '0')}Z`;
}

/** metav1.Time output: RFC3339 to the second, UTC. */
export function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** metav1.Time input: RFC3339 with any fraction (or none); returns epoch ms, or undefined if unparsable. */
export function parseTime(value: string): number | undefined {
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value)) return undefined;
  const ms = Date.parse(value.replace(/\.(\d{3})\d+/, '.$1'));
  return Number.isNaN(ms) ? undefined : ms;
}
