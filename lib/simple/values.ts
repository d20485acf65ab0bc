import { Headers } from '../exchange/headers.ts';

/** Keys that would reach into the prototype chain instead of the data; navigation treats them as missing. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export type PathKey = string | number;

/** One navigation step that never throws: a missing or unreachable step is undefined. */
export function step(value: unknown, key: PathKey): unknown {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Headers) return value.get(String(key));
  if (value instanceof Map) return value.has(key) ? value.get(key) : value.get(String(key));
  if (typeof key === 'number') {
    if (Array.isArray(value) || typeof value === 'string') return value[key < 0 ? value.length + key : key];
    if (typeof value === 'object') return (value as Record<number, unknown>)[key];
    return undefined;
  }
  if (key === 'last' && Array.isArray(value)) return value[value.length - 1];
  if (UNSAFE_KEYS.has(key)) return undefined;
  if (typeof value === 'object' || typeof value === 'function' || typeof value === 'string') {
    return (value as Record<string, unknown>)[key];
  }
  return undefined;
}

/** A getter for a fixed path, specialised for the short paths that dominate real expressions. */
export function pathGetter(keys: readonly PathKey[]): (value: unknown) => unknown {
  if (keys.length === 0) return (v) => v;
  if (keys.length === 1) {
    const [a] = keys as [PathKey];
    return (v) => step(v, a);
  }
  if (keys.length === 2) {
    const [a, b] = keys as [PathKey, PathKey];
    return (v) => step(step(v, a), b);
  }
  return (v) => {
    let cur = v;
    for (const k of keys) {
      if (cur === null || cur === undefined) return undefined;
      cur = step(cur, k);
    }
    return cur;
  };
}

/**
 * The string form used when a value is spliced into text: null/undefined are empty, dates are
 * ISO-8601, bytes are UTF-8, errors read as "Error: message", other objects are JSON.
 */
export function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  if (value instanceof Error) return String(value);
  if (value instanceof Headers) return safeJson(value.toObject());
  if (value instanceof Map) return safeJson(Object.fromEntries(value));
  if (value instanceof Set) return safeJson([...value]);
  if (typeof value === 'object') return safeJson(value);
  return String(value);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? '';
  } catch {
    // Circular structures: fall back to the object's own string form rather than failing the route.
    return String(value);
  }
}

const NUMERIC = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** The number a value stands for (numbers and numeric text), or undefined when it is not numeric. */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isNaN(value) ? undefined : value;
  if (typeof value === 'string') return NUMERIC.test(value) ? Number(value) : undefined;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/** Truth of a lone value used as a predicate, after Camel: booleans as is, 'true'/'false' text, empty is false. */
export function truthy(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === null || value === undefined) return false;
  if (typeof value === 'string') {
    const s = value.trim().toLowerCase();
    if (s === 'false' || s === '') return false;
    return true;
  }
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (Array.isArray(value)) return value.length > 0;
  if (value instanceof Map || value instanceof Set || value instanceof Headers) return value.size > 0;
  return true;
}

/** Milliseconds since the epoch for a Date, a number or date text; undefined when it is none of them. */
export function toEpoch(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string') {
    const n = toNumber(value);
    if (n !== undefined) return n;
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

export const CONVERSION_TYPES = ['String', 'Number', 'Integer', 'Long', 'Double', 'Boolean'] as const;
export type ConversionType = (typeof CONVERSION_TYPES)[number];

/** Type conversion for bodyAs/headerAs; a value that cannot be converted becomes undefined, as Camel's bodyAs gives null. */
export function converter(type: ConversionType): (value: unknown) => unknown {
  switch (type) {
    case 'String':
      return (v) => (v === null || v === undefined ? v : toText(v));
    case 'Number':
    case 'Double':
      return (v) => (typeof v === 'boolean' ? Number(v) : toNumber(v));
    case 'Integer':
    case 'Long':
      return (v) => {
        const n = typeof v === 'boolean' ? Number(v) : toNumber(v);
        return n === undefined ? undefined : Math.trunc(n);
      };
    case 'Boolean':
      return (v) => {
        if (typeof v === 'boolean') return v;
        if (typeof v === 'number') return v !== 0;
        if (typeof v === 'string') {
          const s = v.trim().toLowerCase();
          if (s === 'true') return true;
          if (s === 'false') return false;
        }
        return undefined;
      };
  }
}
