/**
 * Camel's cron URIs use Quartz syntax: seconds first, `?` for "no specific value", `a/b` for
 * "from a every b", an optional seventh field for the year, and day-of-week counted 1 = Sunday …
 * 7 = Saturday. node-cron reads `*` for `?`, `a-max/b` for `a/b`, has no year field and counts
 * 0 = Sunday. A five-field schedule is classic cron (no seconds, 0 or 7 = Sunday) and keeps its
 * weekdays. Returns the node-cron expression, or an error text.
 */
const FIELD_MAX = [59, 59, 23, 31, 12, 7];
const DAY_OF_WEEK = 5;
const QUARTZ_DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

export function quartzToNodeCron(schedule: string): { expression: string } | { error: string } {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length === 7) {
    const year = fields.pop()!;
    if (year !== '*' && year !== '?') return { error: `the year field ("${year}") is not supported; use * or leave it out` };
  }
  if (fields.length !== 5 && fields.length !== 6) {
    return { error: `expected 6 fields (second minute hour day-of-month month day-of-week) or 5 (without seconds), got ${fields.length}` };
  }
  const quartz = fields.length === 6;
  const offset = quartz ? 0 : 1;
  const translated: string[] = [];
  for (const [i, field] of fields.entries()) {
    if (quartz && i === DAY_OF_WEEK) {
      const weekdays = quartzWeekdays(field);
      if ('error' in weekdays) return weekdays;
      translated.push(weekdays.expression);
      continue;
    }
    translated.push(
      field
        .split(',')
        .map((part) => {
          if (part === '?') return '*';
          const step = /^(\d+)\/(\d+)$/.exec(part);
          return step ? `${step[1]}-${FIELD_MAX[i + offset]}/${step[2]}` : part;
        })
        .join(','),
    );
  }
  return { expression: translated.join(' ') };
}

/**
 * Quartz's day-of-week field in node-cron's numbering, in every form: `2`, `MON`, `2-6`, `6-2`
 * (wrapping), `2,4`, `2/2` and `*\/2` (from a day every n days, up to Saturday), `2-6/2`, `6#3`
 * (third Friday), `6L` (last Friday), `L` (Saturday).
 */
function quartzWeekdays(field: string): { expression: string } | { error: string } {
  const parts: string[] = [];
  for (const part of field.split(',')) {
    const upper = part.toUpperCase();
    let translated: string | { error: string };
    if (upper === '?' || upper === '*') translated = '*';
    else if (upper === 'L') translated = '6';
    else if (/^\w+#\w+$/.test(upper)) translated = nth(upper, part);
    else if (/^\w+L$/.test(upper) && !QUARTZ_DAY_NAMES.includes(upper)) translated = last(upper.slice(0, -1), part);
    else translated = rangeOrStep(upper, part);
    if (typeof translated !== 'string') return translated;
    parts.push(translated);
  }
  return { expression: parts.join(',') };
}

function nth(upper: string, part: string): string | { error: string } {
  const [day, which] = upper.split('#') as [string, string];
  const weekday = nodeCronWeekday(day, part);
  if (typeof weekday !== 'number') return weekday;
  if (!/^[1-5]$/.test(which)) return { error: `day-of-week "${part}": the number after # is which one in the month, 1 to 5` };
  return `${weekday}#${which}`;
}

function last(day: string, part: string): string | { error: string } {
  const weekday = nodeCronWeekday(day, part);
  return typeof weekday === 'number' ? `${weekday}L` : weekday;
}

function rangeOrStep(upper: string, part: string): string | { error: string } {
  const match = /^(\*|\w+)(?:-(\w+))?(?:\/(\d+))?$/.exec(upper);
  if (!match) return { error: `day-of-week "${part}" is not a Quartz day-of-week expression (1-7 or SUN-SAT, ranges, lists, a/b, n#k, nL, L)` };
  const [, from, to, step] = match as unknown as [string, string, string | undefined, string | undefined];
  if (from === '*') {
    if (to !== undefined) return { error: `day-of-week "${part}": * cannot start a range` };
    return step === undefined ? '*' : `0-6/${step}`;
  }
  const start = nodeCronWeekday(from, part);
  if (typeof start !== 'number') return start;
  if (to === undefined) return step === undefined ? String(start) : `${start}-6/${step}`;
  const end = nodeCronWeekday(to, part);
  if (typeof end !== 'number') return end;
  return step === undefined ? `${start}-${end}` : `${start}-${end}/${step}`;
}

/** A Quartz day (1 = Sunday … 7 = Saturday, or SUN … SAT) as node-cron's 0 = Sunday … 6 = Saturday. */
function nodeCronWeekday(day: string, part: string): number | { error: string } {
  const named = QUARTZ_DAY_NAMES.indexOf(day);
  if (named >= 0) return named;
  if (/^\d+$/.test(day)) {
    const n = Number(day);
    if (n >= 1 && n <= 7) return n - 1;
  }
  return {
    error:
      `day-of-week "${part}": "${day}" is not a day; Quartz counts 1 = Sunday, 2 = Monday … 7 = Saturday ` +
      `(or write SUN, MON, TUE, WED, THU, FRI, SAT)`,
  };
}
