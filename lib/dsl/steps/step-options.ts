import { parseDuration } from '../../uri/duration.ts';

/**
 * Checks a DSL step's options object: a misspelt option is reported with the valid ones, instead of
 * being silently ignored. Throws TypeError, which the route definition reports with the route and line.
 */
export function checkStepOptions(options: unknown, valid: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`the options must be an object with any of: ${valid.join(', ')}`);
  }
  const unknown = Object.keys(options).filter((k) => !valid.includes(k));
  if (unknown.length > 0) throw new TypeError(`unknown option(s) ${unknown.join(', ')}; valid options: ${valid.join(', ')}`);
}

/** A positive whole number, or a TypeError naming the option and the value given. */
export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`${name} must be a positive whole number, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/** A duration option (milliseconds or units such as `5s`) that must be more than zero, in milliseconds. */
export function checkPositiveDuration(name: string, value: number | string): number {
  const ms = parseDuration(value);
  if (ms === undefined || !(ms > 0)) {
    throw new TypeError(`${name} ${JSON.stringify(value)} is not a positive duration: use milliseconds or units such as 500ms, 5s, 1m`);
  }
  return ms;
}

/** Options that must be booleans when given: a string such as 'false' would otherwise read as true. */
export function checkBooleanOptions(options: object | undefined, names: readonly string[]): void {
  for (const name of names) {
    const value = (options as Record<string, unknown> | undefined)?.[name];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new TypeError(`${name} must be true or false, got ${JSON.stringify(value) ?? String(value)}`);
    }
  }
}
