import { ResolveEndpointError } from '../errors.ts';
import { maskUri } from './mask.ts';
import { hasPlaceholders, hideValuesInError, type PropertyResolver, type ResolvedPlaceholder } from './placeholders.ts';

/** A component URI split into its parts. Nothing here knows about any particular component. */
export interface ParsedUri {
  /** The URI as written, property placeholders (`{{env:TOKEN}}`) intact. */
  readonly template: string;
  /** The URI with its placeholders resolved: what the component uses. Never print it; print `masked`. */
  readonly raw: string;
  /** The URI as written (placeholders, not their values) with secrets masked, for messages and logs. */
  readonly masked: string;
  /** The placeholders resolved in `raw`; components that print text built from `raw` hide these values. */
  readonly placeholders: readonly ResolvedPlaceholder[];
  /** Lower-cased scheme, e.g. `timer`. */
  readonly scheme: string;
  /** Everything after `scheme:` (and an optional `//`) up to the first `?`, percent-encoding intact. */
  readonly rawPath: string;
  /** `rawPath` percent-decoded. */
  readonly path: string;
  /** Everything after the first `?`, untouched; nesting components (master:) hand it to their delegate. */
  readonly rawQuery: string;
  /** Decoded query parameters. */
  readonly params: Readonly<Record<string, string>>;
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/**
 * Parses `scheme:path?query` and `scheme://path?query`. In `master:lock1:timer:clock?period=500`
 * the scheme is `master`, the path `lock1:timer:clock` and the query `period=500`.
 * Query values may be wrapped in `RAW(...)` to keep them verbatim (Camel's convention for secrets
 * with `&` or `+` in them); otherwise `+` means space and `%XX` is decoded.
 * With a resolver, property placeholders are resolved first (as in Camel, before the URI is parsed);
 * every error then names the URI as written and never a resolved value.
 */
export function parseUri(template: string, resolver?: PropertyResolver): ParsedUri {
  if (typeof template !== 'string' || template.trim() === '') {
    throw new ResolveEndpointError(String(template), 'the URI is empty. Expected scheme:path?options, e.g. timer:tick?period=1000');
  }
  const masked = maskUri(template);
  const { text: uri, placeholders } = resolver ? resolver.resolve(template) : { text: template, placeholders: [] };
  try {
    return parseResolved(template, uri, masked, placeholders);
  } catch (err) {
    throw hideValuesInError(err, placeholders);
  }
}

function parseResolved(template: string, uri: string, masked: string, placeholders: readonly ResolvedPlaceholder[]): ParsedUri {
  if (uri.trim() === '') {
    throw new ResolveEndpointError(masked, 'the URI is empty once its placeholders are resolved. Expected scheme:path?options');
  }
  if (uri !== uri.trim()) {
    throw new ResolveEndpointError(masked, 'the URI has leading or trailing whitespace');
  }
  const colon = uri.indexOf(':');
  if (colon <= 0) {
    throw new ResolveEndpointError(masked, 'the URI has no scheme. Expected scheme:path?options, e.g. timer:tick?period=1000');
  }
  const scheme = uri.slice(0, colon);
  if (!SCHEME.test(scheme)) {
    throw new ResolveEndpointError(masked, `"${scheme}" is not a valid scheme: it must start with a letter and contain only letters, digits, "+", "-" and "."`);
  }
  let rest = uri.slice(colon + 1);
  if (rest.startsWith('//')) rest = rest.slice(2);
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  const rawQuery = q === -1 ? '' : rest.slice(q + 1);
  if (/\s/.test(rawPath)) {
    throw new ResolveEndpointError(masked, 'the path contains whitespace; percent-encode it (%20)');
  }
  const path = decode(rawPath, masked, 'path');
  const params = parseQuery(rawQuery, masked);
  return { template, raw: uri, masked, placeholders, scheme: scheme.toLowerCase(), rawPath, path, rawQuery, params };
}

/**
 * The early syntax check of the DSL (a typo fails where the route is defined). A URI with property
 * placeholders is checked when the context resolves it, at startup: `{{env:TARGET}}` alone has no scheme yet.
 */
export function checkUriSyntax(uri: string): void {
  if (typeof uri === 'string' && hasPlaceholders(uri)) return;
  parseUri(uri);
}

export function parseQuery(rawQuery: string, maskedUri = rawQuery): Record<string, string> {
  const params: Record<string, string> = {};
  if (rawQuery === '') return params;
  for (const pair of splitQuery(rawQuery)) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const key = decode(rawKey.replace(/\+/g, ' '), maskedUri, 'option name');
    if (key === '') throw new ResolveEndpointError(maskedUri, `an option has no name ("${pair.startsWith('=') ? '=…' : pair}")`);
    if (Object.hasOwn(params, key)) {
      throw new ResolveEndpointError(maskedUri, `the option "${key}" is given more than once`);
    }
    const raw = /^RAW\((.*)\)$/s.exec(rawValue);
    params[key] = raw ? raw[1]! : decode(rawValue.replace(/\+/g, ' '), maskedUri, `value of option "${key}"`);
  }
  return params;
}

/** Splits on `&`, but not inside RAW(...), whose content may hold any character. */
export function splitQuery(rawQuery: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  while (i < rawQuery.length) {
    if (rawQuery.startsWith('RAW(', i)) {
      const close = rawQuery.indexOf(')', i + 4);
      const nextAmp = rawQuery.indexOf('&', close === -1 ? i : close);
      i = close === -1 ? rawQuery.length : close + 1;
      if (nextAmp === -1) break;
      continue;
    }
    if (rawQuery[i] === '&') {
      parts.push(rawQuery.slice(start, i));
      start = i + 1;
    }
    i += 1;
  }
  parts.push(rawQuery.slice(start));
  return parts;
}

function decode(text: string, maskedUri: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ResolveEndpointError(maskedUri, `the ${what} has invalid percent-encoding ("${maskUri(text)}"); write "%" as %25`);
  }
}

/** Builds `key=value&...` with percent-encoding, the inverse of parseQuery. */
export function formatQuery(params: Record<string, string | number | boolean | undefined>): string {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
}
