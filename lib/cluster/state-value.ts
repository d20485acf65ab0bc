import { ConfigurationError, LeaderStateTooLargeError } from '../errors.ts';
import { LEADER_STATE_MAX_BYTES, type JsonValue } from '../spi/leader-state.ts';

/** A lock's whole leader state: its keys and their JSON values. */
export type StateRecord = Record<string, JsonValue>;

/**
 * A copy of `value` made of JSON only, or a ConfigurationError naming the key and the part JSON
 * cannot represent. JSON.stringify would not fail on most of these: it drops functions and
 * undefined, writes NaN and Infinity as null, a Map or Set as {}, a Date as a string. The next
 * leader would then read something else than was saved, so it is refused at the call instead.
 */
export function jsonCopy(lock: string, key: string, value: unknown): JsonValue {
  const refuse = (path: string, what: string, fix: string) =>
    new ConfigurationError(`The leader state of lock ${lock} cannot store key ${key}: ${path} is ${what}, which JSON cannot represent; ${fix}`);
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): JsonValue => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return v;
      case 'number':
        if (!Number.isFinite(v)) throw refuse(path, String(v), 'store a finite number, or null');
        return v;
      case 'undefined':
        throw refuse(path, 'undefined', 'leave the property out or store null');
      case 'bigint':
        throw refuse(path, 'a BigInt', 'store it as a string');
      case 'function':
      case 'symbol':
        throw refuse(path, `a ${typeof v}`, 'store data only');
    }
    if (v === null) return null;
    const object = v as object;
    if (seen.has(object)) throw refuse(path, 'a reference back to an enclosing value (a cycle)', 'store a tree of plain objects and arrays');
    seen.add(object);
    try {
      if (Array.isArray(object)) {
        const copy: JsonValue[] = [];
        for (let i = 0; i < object.length; i += 1) {
          if (!(i in object)) throw refuse(`${path}[${i}]`, 'a hole in a sparse array', 'fill it, e.g. with null');
          copy.push(walk(object[i], `${path}[${i}]`));
        }
        return copy;
      }
      const proto = Object.getPrototypeOf(object);
      if (proto !== Object.prototype && proto !== null) {
        const name = (proto?.constructor as { name?: string } | undefined)?.name || 'an object with a prototype';
        throw refuse(path, `a ${name}`, name === 'Date' ? 'store date.toISOString() or date.getTime()' : 'store a plain object or an array');
      }
      const copy: StateRecord = {};
      for (const [k, item] of Object.entries(object)) copy[k] = walk(item, `${path}.${k}`);
      return copy;
    } finally {
      seen.delete(object);
    }
  };
  return walk(value, 'the value');
}

/** Throws a ConfigurationError unless `key` can name a value of the lock's leader state: a non-empty string. */
export function checkStateKey(lock: string, key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '') {
    throw new ConfigurationError(`The leader state of lock ${lock} needs a non-empty string key, not ${JSON.stringify(key) ?? String(key)}`);
  }
}

/** How many bytes the state takes as UTF-8 JSON: what LEADER_STATE_MAX_BYTES bounds. */
export function stateBytes(state: StateRecord | undefined): number {
  return state === undefined ? 0 : Buffer.byteLength(JSON.stringify(state), 'utf8');
}

/** Throws LeaderStateTooLargeError when `state` (the result of setting `key`) is above the bound. */
export function checkStateSize(lock: string, key: string, state: StateRecord | undefined): void {
  const bytes = stateBytes(state);
  if (bytes > LEADER_STATE_MAX_BYTES) throw new LeaderStateTooLargeError(lock, key, bytes, LEADER_STATE_MAX_BYTES);
}

/** `base` with `changes` applied (undefined removes a key); undefined when no key is left. */
export function withChanges(base: StateRecord | undefined, changes: Iterable<readonly [string, JsonValue | undefined]>): StateRecord | undefined {
  const next: StateRecord = { ...base };
  for (const [key, value] of changes) {
    if (value === undefined) delete next[key];
    else next[key] = value;
  }
  return Object.keys(next).length > 0 ? next : undefined;
}

/**
 * The state a store holds as text (a Lease annotation, a ConfigMap key), or undefined when there is
 * none, or it is not a JSON object (someone edited it by hand): a record without state, which the
 * next write replaces.
 */
export function parseState(text: string | undefined): StateRecord | undefined {
  if (text === undefined || text === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isStateRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a parsed value can be a lock's state: a JSON object (not null, not an array). */
export function isStateRecord(value: unknown): value is StateRecord {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Whether two records' states hold the same keys and values. */
export function sameState(a: StateRecord | undefined, b: StateRecord | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return canonical(a) === canonical(b);
}

/** JSON with object keys sorted, so the same state read back from any store compares equal. */
function canonical(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  return `{${Object.keys(value)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(value[k]!)}`)
    .join(',')}}`;
}
