import { ResolveEndpointError } from '../errors.ts';
import { isSensitiveKey, MASK } from './mask.ts';
import { parseDuration } from './duration.ts';

/** One endpoint option: its type, default and a line of documentation (shown by errors and docs). */
export type OptionSpec =
  | { type: 'string'; default?: string; description?: string }
  | { type: 'integer'; default?: number; min?: number; max?: number; description?: string }
  | { type: 'number'; default?: number; min?: number; max?: number; description?: string }
  | { type: 'boolean'; default?: boolean; description?: string }
  | { type: 'duration'; default?: number; min?: number; description?: string }
  | { type: 'enum'; values: readonly string[]; default?: string; description?: string };

export type OptionSchema = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S extends { type: 'string' }
  ? string
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { type: 'enum'; values: readonly (infer V)[] }
      ? V
      : number;

/** The typed result of resolving a schema: options with a default are always present. */
export type OptionValues<S extends OptionSchema> = {
  [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

/**
 * Checks and coerces the query parameters of an endpoint URI against its schema. Unknown options
 * fail the way Camel's do, and also list the valid names so the fix is obvious.
 */
export function resolveOptions<S extends OptionSchema>(
  maskedUri: string,
  component: string,
  schema: S,
  params: Readonly<Record<string, string>>,
): OptionValues<S> {
  const unknown = Object.keys(params).filter((k) => !Object.hasOwn(schema, k));
  if (unknown.length > 0) {
    const pairs = unknown.map((k) => `${k}=${isSensitiveKey(k) ? MASK : params[k]}`).join(', ');
    const hints = unknown
      .map((k) => [k, closest(k, Object.keys(schema))] as const)
      .filter(([, c]) => c !== undefined)
      .map(([k, c]) => ` Did you mean "${c}" instead of "${k}"?`)
      .join('');
    throw new ResolveEndpointError(
      maskedUri,
      `There are ${unknown.length} parameters that couldn't be set on the endpoint. ` +
        `Check the uri if the parameters are spelt correctly and that they are properties of the endpoint. ` +
        `Unknown parameters=[{${pairs}}].${hints} Valid options for ${component}: ${Object.keys(schema).sort().join(', ') || '(none)'}.`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema)) {
    const raw = params[name];
    out[name] = raw === undefined ? spec.default : coerce(maskedUri, name, spec, raw);
  }
  return out as OptionValues<S>;
}

export function coerce(maskedUri: string, name: string, spec: OptionSpec, raw: string): unknown {
  const shown = isSensitiveKey(name) ? MASK : raw;
  const invalid = (expected: string) =>
    new ResolveEndpointError(maskedUri, `option "${name}" has the invalid value "${shown}": expected ${expected}`);
  switch (spec.type) {
    case 'string':
      return raw;
    case 'boolean': {
      const v = raw.toLowerCase();
      if (v === 'true' || v === '') return true;
      if (v === 'false') return false;
      throw invalid('true or false');
    }
    case 'integer':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (spec.type === 'integer' && !Number.isInteger(n))) {
        throw invalid(spec.type === 'integer' ? 'a whole number' : 'a number');
      }
      if (spec.min !== undefined && n < spec.min) throw invalid(`a number >= ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw invalid(`a number <= ${spec.max}`);
      return n;
    }
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined) throw invalid('a duration such as 500, 500ms, 5s, 1m or 1h');
      if (spec.min !== undefined && ms < spec.min) throw invalid(`a duration of at least ${spec.min}ms`);
      return ms;
    }
    case 'enum': {
      const hit = spec.values.find((v) => v.toLowerCase() === raw.toLowerCase());
      if (hit === undefined) throw invalid(`one of ${spec.values.join(', ')}`);
      return hit;
    }
  }
}

/** The nearest name by edit distance, when it is close enough to be a likely typo. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
