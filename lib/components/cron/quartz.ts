/**
 * Camel's cron URIs use Quartz syntax: seconds first, `?` for "no specific value", `a/b` for
 * "from a every b", and an optional seventh field for the year. node-cron reads `*` for `?` and
 * `a-max/b` for `a/b`, and has no year field. Returns the node-cron expression, or an error text.
 */
const FIELD_MAX = [59, 59, 23, 31, 12, 7];

export function quartzToNodeCron(schedule: string): { expression: string } | { error: string } {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length === 7) {
    const year = fields.pop()!;
    if (year !== '*' && year !== '?') return { error: `the year field ("${year}") is not supported; use * or leave it out` };
  }
  if (fields.length !== 5 && fields.length !== 6) {
    return { error: `expected 6 fields (second minute hour day-of-month month day-of-week) or 5 (without seconds), got ${fields.length}` };
  }
  const offset = fields.length === 5 ? 1 : 0;
  const translated = fields.map((field, i) =>
    field
      .split(',')
      .map((part) => {
        if (part === '?') return '*';
        const step = /^(\d+)\/(\d+)$/.exec(part);
        return step ? `${step[1]}-${FIELD_MAX[i + offset]}/${step[2]}` : part;
      })
      .join(','),
  );
  return { expression: translated.join(' ') };
}
