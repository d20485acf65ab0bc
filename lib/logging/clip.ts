/**
 * How many characters of a body a log line shows by default, in the log: component (its maxChars) and in the
 * log step: a 20 MB body logged whole would flood the log and stall the route on the write.
 */
export const LOG_MAX_CHARS = 10_000;

/** `text` cut after `max` characters (0: no limit), with a note of what was cut. */
export function clip(text: string, max: number, what: string): string {
  return max > 0 && text.length > max ? `${text.slice(0, max)}... [${what} clipped after ${max} chars, total length is ${text.length}]` : text;
}
