import { ResolveEndpointError } from '../errors.ts';
import { maskUri } from './mask.ts';

/**
 * Camel's property placeholders in endpoint URIs: `{{key}}`, `{{key:default}}`, `{{env:NAME}}` and
 * `{{env:NAME:default}}`. They are resolved once, when the endpoint is created; the URI as written
 * (placeholders intact) is what gets printed, so a resolved value never reaches a log line or an error.
 */

/** One placeholder of a URI and the value it resolved to. */
export interface ResolvedPlaceholder {
  /** As written, braces included: `{{env:TG_TOKEN}}`. */
  readonly text: string;
  readonly value: string;
}

export interface Resolution {
  /** The text with every placeholder replaced by its value. */
  readonly text: string;
  readonly placeholders: readonly ResolvedPlaceholder[];
}

export type Properties = Readonly<Record<string, string | number | boolean>>;

const OPEN = '{{';
const CLOSE = '}}';
const MAX_DEPTH = 20;

/** Whether the text holds a placeholder (so it cannot be checked before the properties are known). */
export function hasPlaceholders(text: string): boolean {
  return text.includes(OPEN);
}

/** The placeholders written in a text, braces included, in order of appearance. */
export function placeholdersIn(text: string): string[] {
  const found: string[] = [];
  let at = text.indexOf(OPEN);
  while (at !== -1) {
    const end = text.indexOf(CLOSE, at + OPEN.length);
    if (end === -1) break;
    found.push(text.slice(at, end + CLOSE.length));
    at = text.indexOf(OPEN, end + CLOSE.length);
  }
  return found;
}

/** The index of the first `char` that is not inside a `{{…}}`, or -1. */
export function indexOutsidePlaceholders(text: string, char: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i += 1) {
    if (text.startsWith(OPEN, i)) {
      depth += 1;
      i += OPEN.length - 1;
    } else if (depth > 0 && text.startsWith(CLOSE, i)) {
      depth -= 1;
      i += CLOSE.length - 1;
    } else if (depth === 0 && text[i] === char) {
      return i;
    }
  }
  return -1;
}

/**
 * Resolves placeholders from the properties given to the Context and from the environment.
 * A property's value may itself hold placeholders; environment values and defaults are taken as they are.
 */
export class PropertyResolver {
  readonly #properties: Properties;
  readonly #env: NodeJS.ProcessEnv;

  constructor(properties: Properties = {}, env: NodeJS.ProcessEnv = process.env) {
    this.#properties = properties;
    this.#env = env;
  }

  /** Resolves every placeholder of an endpoint URI; errors name the URI as written (masked), never a value. */
  resolve(uri: string): Resolution {
    if (!hasPlaceholders(uri)) return { text: uri, placeholders: [] };
    const placeholders: ResolvedPlaceholder[] = [];
    const text = this.#substitute(uri, maskUri(uri), [], placeholders);
    return { text, placeholders };
  }

  /** `masked` is the URI as written, masked: what every error names. */
  #substitute(text: string, masked: string, chain: readonly string[], out: ResolvedPlaceholder[]): string {
    let result = '';
    let from = 0;
    for (;;) {
      const open = text.indexOf(OPEN, from);
      if (open === -1) return result + text.slice(from);
      const close = text.indexOf(CLOSE, open + OPEN.length);
      if (close === -1) {
        throw new ResolveEndpointError(masked, `the property placeholder "${maskUri(text.slice(open))}" has no closing "}}"`);
      }
      const placeholder = text.slice(open, close + CLOSE.length);
      const value = this.#lookup(placeholder, text.slice(open + OPEN.length, close), masked, chain, out);
      out.push({ text: placeholder, value });
      result += text.slice(from, open) + value;
      from = close + CLOSE.length;
    }
  }

  #lookup(placeholder: string, inner: string, masked: string, chain: readonly string[], out: ResolvedPlaceholder[]): string {
    if (inner.startsWith('env:')) {
      const body = inner.slice('env:'.length);
      const colon = body.indexOf(':');
      const name = colon === -1 ? body : body.slice(0, colon);
      if (name === '') throw new ResolveEndpointError(masked, `the placeholder ${placeholder} names no environment variable: write {{env:NAME}}`);
      const value = this.#env[name] ?? this.#env[name.toUpperCase().replace(/[.-]/g, '_')];
      if (value !== undefined && value !== '') return value;
      if (colon !== -1) return body.slice(colon + 1);
      throw new ResolveEndpointError(
        masked,
        `the environment variable ${name} of the placeholder ${placeholder} is not set. Set ${name}, or give a default: {{env:${name}:value}}`,
      );
    }
    if (inner.startsWith('sys:')) {
      throw new ResolveEndpointError(masked, `${placeholder}: Node.js has no system properties; read an environment variable with {{env:NAME}} or a context property with {{name}}`);
    }
    if (inner.startsWith('?')) {
      throw new ResolveEndpointError(masked, `${placeholder}: optional placeholders ({{?key}}) are not supported; give a default instead: {{key:value}}`);
    }
    const colon = inner.indexOf(':');
    const key = colon === -1 ? inner : inner.slice(0, colon);
    if (key === '' || key.includes(OPEN)) throw new ResolveEndpointError(masked, `the placeholder ${placeholder} names no property: write {{key}} or {{key:default}}`);
    if (chain.includes(key)) {
      throw new ResolveEndpointError(masked, `circular property placeholder: ${[...chain, key].map((k) => `{{${k}}}`).join(' → ')}`);
    }
    if (chain.length >= MAX_DEPTH) throw new ResolveEndpointError(masked, `property placeholders nested more than ${MAX_DEPTH} deep at ${placeholder}`);
    if (Object.hasOwn(this.#properties, key)) {
      // Nested placeholders resolve to values too; record them so they are hidden as well.
      return this.#substitute(String(this.#properties[key]), masked, [...chain, key], out);
    }
    if (colon !== -1) return inner.slice(colon + 1);
    const known = Object.keys(this.#properties);
    throw new ResolveEndpointError(
      masked,
      `the property "${key}" of the placeholder ${placeholder} is not defined. ` +
        `Define it in new Context({ properties: { '${key}': … } })${known.length > 0 ? ` (defined: ${known.sort().join(', ')})` : ' (no properties are defined)'}, ` +
        `give a default: {{${key}:value}}, or read the environment with {{env:NAME}}`,
    );
  }
}

/** Replaces every resolved value in a text by the placeholder it came from (longest values first). */
export function hidePlaceholderValues(text: string, placeholders: readonly ResolvedPlaceholder[]): string {
  let out = text;
  for (const p of byLongestValue(placeholders)) out = out.split(p.value).join(p.text);
  return out;
}

/** Rewrites an error's message and stack so no resolved value is left in them; returns the same error. */
export function hideValuesInError<T>(err: T, placeholders: readonly ResolvedPlaceholder[]): T {
  if (placeholders.length === 0 || !(err instanceof Error)) return err;
  err.message = hidePlaceholderValues(err.message, placeholders);
  if (err.stack) err.stack = hidePlaceholderValues(err.stack, placeholders);
  return err;
}

function byLongestValue(placeholders: readonly ResolvedPlaceholder[]): ResolvedPlaceholder[] {
  return placeholders.filter((p) => p.value.length > 0).sort((a, b) => b.value.length - a.value.length);
}
