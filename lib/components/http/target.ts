import { ResolveEndpointError } from '../../errors.ts';
import { MASK, maskSecrets } from '../../uri/mask.ts';
import { resolveOptions, type OptionSchema, type OptionValues } from '../../uri/options.ts';
import { parseQuery, splitQuery, type ParsedUri } from '../../uri/parse.ts';
import type { ResolvedPlaceholder } from '../../uri/placeholders.ts';

/**
 * Component options of `http:`, `https:` and `http-poll:` carry this prefix; every other query
 * parameter belongs to the target server and is sent verbatim, in order. Without the prefix a
 * Telegram `timeout`, `offset` or `limit` could not be told from an option of ours.
 */
export const OPTION_PREFIX = 'dromedary.';

/** `dromedary.header.<Name>=value`: a fixed request header. */
const HEADER = 'header.';
/** `dromedary.headerEnv.<Name>=VAR`: a request header whose value is read from an environment variable. */
const HEADER_ENV = 'headerEnv.';

/** The target of an HTTP endpoint, split from the component's own options. */
export interface HttpTarget<S extends OptionSchema> {
  /** scheme://authority/path, percent-encoding as written. */
  readonly base: string;
  /** The server's query pairs, exactly as written (still encoded), in order. */
  readonly query: readonly string[];
  readonly options: OptionValues<S>;
  /** Fixed headers, from the URI and from the environment. */
  readonly headers: Readonly<Record<string, string>>;
  /** Values read from the environment: never printed (see Redactor). */
  readonly secrets: readonly string[];
  /** Names of the headers set from the environment (`headerEnv`): never sent across origins on a redirect. */
  readonly envHeaders: readonly string[];
}

/**
 * Splits `<url>?a=1&dromedary.delay=5s&b=2` into the target `<url>?a=1&b=2` and the options
 * `{ delay: 5000 }`. Unknown `dromedary.*` names fail with the valid list and a suggestion.
 */
export function resolveTarget<S extends OptionSchema>(uri: ParsedUri, component: string, targetUrl: string, schema: S, env: NodeJS.ProcessEnv = process.env): HttpTarget<S> {
  const q = targetUrl.indexOf('?');
  const base = q === -1 ? targetUrl : targetUrl.slice(0, q);
  const rawQuery = q === -1 ? '' : targetUrl.slice(q + 1);
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new ResolveEndpointError(uri.masked, `"${maskSecrets(base)}" is not a valid URL. Expected ${component}:http://host:port/path?query`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ResolveEndpointError(uri.masked, `the target must be an http:// or https:// URL, got ${url.protocol}`);
  }
  if (url.hash !== '') throw new ResolveEndpointError(uri.masked, 'the target URL has a #fragment, which is never sent to a server; remove it');

  const query: string[] = [];
  const own: string[] = [];
  for (const pair of splitQuery(rawQuery)) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = safeDecode(eq === -1 ? pair : pair.slice(0, eq));
    if (key.startsWith(OPTION_PREFIX)) own.push(pair);
    else query.push(pair);
  }
  const params = parseQuery(own.join('&'), uri.masked);
  const headers: Record<string, string> = {};
  const secrets: string[] = [];
  const envHeaders: string[] = [];
  const plain: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    const name = key.slice(OPTION_PREFIX.length);
    if (name.startsWith(HEADER_ENV) && name.length > HEADER_ENV.length) {
      const header = name.slice(HEADER_ENV.length);
      const secret = env[value];
      if (secret === undefined || secret === '') {
        throw new ResolveEndpointError(uri.masked, `the environment variable ${value} (for the ${header} header) is not set. Set it, or remove ${key}`);
      }
      headers[header] = secret;
      secrets.push(secret);
      envHeaders.push(header);
    } else if (name.startsWith(HEADER) && name.length > HEADER.length) {
      headers[name.slice(HEADER.length)] = value;
    } else {
      plain[key] = value;
    }
  }
  const prefixed: Record<string, OptionSchema[string]> = {};
  for (const [name, spec] of Object.entries(schema)) prefixed[OPTION_PREFIX + name] = spec;
  // Listed so the error names them; a literal `<Name>` never reaches here.
  prefixed[`${OPTION_PREFIX}${HEADER}<Name>`] = { type: 'string' };
  prefixed[`${OPTION_PREFIX}${HEADER_ENV}<Name>`] = { type: 'string' };
  const resolved = resolveOptions(uri.masked, component, prefixed, plain) as Record<string, unknown>;
  const options: Record<string, unknown> = {};
  for (const name of Object.keys(schema)) options[name] = resolved[OPTION_PREFIX + name];
  return { base, query, options: options as OptionValues<S>, headers, secrets, envHeaders };
}

/** The component option names a target parameter could be mistaken for (said once, at startup). */
export function shadowedOptions(query: readonly string[], schema: OptionSchema): string[] {
  return query.map((pair) => safeDecode(pair.split('=')[0]!)).filter((key) => Object.hasOwn(schema, key));
}

/** Joins the base and query pairs back into a URL, replacing or appending one parameter. */
export function buildUrl(base: string, query: readonly string[], set?: { name: string; value: string }): string {
  const pairs = [...query];
  if (set) {
    const pair = `${encodeURIComponent(set.name)}=${encodeURIComponent(set.value)}`;
    const at = pairs.findIndex((p) => safeDecode(p.split('=')[0]!) === set.name);
    if (at === -1) pairs.push(pair);
    else pairs[at] = pair;
  }
  return pairs.length === 0 ? base : `${base}?${pairs.join('&')}`;
}

/**
 * Masks URIs and known secret values in text that may end up in a log line or an error: values read
 * from the environment become `xxxxxx`, resolved property placeholders become the placeholder as
 * written (`{{env:TG_TOKEN}}`), so a URL built from the resolved URI prints like the URI as written.
 */
export class Redactor {
  readonly #pattern: RegExp | undefined;
  readonly #replacements: ReadonlyMap<string, string>;

  constructor(secrets: readonly string[], placeholders: readonly ResolvedPlaceholder[] = []) {
    const replacements = new Map<string, string>();
    for (const p of placeholders) if (p.value.length > 0) replacements.set(p.value, p.text);
    for (const s of secrets) if (s.length > 0) replacements.set(s, MASK);
    this.#replacements = replacements;
    // One pass, longest value first, so a value containing another is replaced whole and a
    // replacement is never itself searched again.
    const values = [...replacements.keys()].sort((a, b) => b.length - a.length);
    this.#pattern = values.length === 0 ? undefined : new RegExp(values.map(escapeRegExp).join('|'), 'g');
  }

  redact(text: string): string {
    const out = this.#pattern ? text.replace(this.#pattern, (m) => this.#replacements.get(m) ?? MASK) : text;
    return maskSecrets(out);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
