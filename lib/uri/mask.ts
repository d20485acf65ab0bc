/**
 * Masking of secrets wherever a URI or a configuration value is printed.
 * Follows Camel's URISupport.sanitizeUri: user-info passwords and the values of query
 * parameters with secret-looking names are replaced by `xxxxxx`. Values that look like
 * credentials whatever their name (JWTs, well-known token formats, long random strings,
 * Telegram bot tokens in paths) are masked too.
 *
 * Only values are masked: a name, and the product's own words around it, stay as they are.
 */
export const MASK = 'xxxxxx';

/**
 * Words that name a secret wherever they appear: in a URI, a header, JSON, `NAME=value`.
 * A name is split into words (`X-Amz-Security-Token` → x amz security token, `sessionId` → session id)
 * and each word, and each pair of neighbouring words joined (`api`+`key`), is looked up.
 */
const SECRET_WORDS = new Set([
  'password', 'passwd', 'passphrase', 'pass', 'secret', 'secrets', 'token', 'jwt', 'credential', 'credentials',
  'signature', 'authorization', 'auth', 'authtoken', 'apikey', 'accesskey', 'secretkey', 'privatekey', 'authkey',
  'signingkey', 'subscriptionkey', 'masterkey', 'encryptionkey', 'accountkey', 'clientkey', 'licensekey',
  'sessionid', 'sessionkey', 'sessiontoken', 'cookie',
]);
/** Compound words ending so (`accesstoken`, `clientsecret`, `jsessionid`) name a secret too. */
const SECRET_SUFFIXES = ['password', 'passwd', 'passphrase', 'secret', 'token', 'credential', 'credentials', 'signature', 'apikey', 'sessionid', 'sessid'];
/**
 * Words that name a secret as a query parameter or header (Google's `key`, Azure SAS `sig`, an OAuth
 * `code`, Azure Functions' `code`) but are ordinary words in prose (`exit code=1`, `key=value`).
 */
const PARAMETER_WORDS = new Set(['key', 'code', 'sig', 'sas', 'pwd', 'session', 'otp', 'pin', 'ticket', 'hmac']);

/**
 * Words that make a parameter word name an ordinary thing: `routingKey`, `partitionKey`, `statusCode`,
 * `errorCode` are routing and protocol data that a reader of the log needs, not secrets.
 */
const ORDINARY_QUALIFIERS = new Set([
  'routing', 'partition', 'sort', 'primary', 'foreign', 'message', 'cache', 'hash', 'range', 'shard', 'row', 'group',
  'status', 'error', 'exit', 'response', 'reason', 'return', 'country', 'currency', 'language', 'lang', 'zip', 'postal',
  'area', 'product', 'event', 'source', 'color',
]);

function namesOrdinaryThing(name: string): boolean {
  const words = cachedWords(name);
  return words.some((word) => ORDINARY_QUALIFIERS.has(word));
}

function wordsOf(name: string): string[] {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  const out = [...words];
  for (let i = 0; i + 1 < words.length; i += 1) out.push(words[i]! + words[i + 1]!);
  return out;
}

/** Names recur (every line of a poll names the same parameters): their words are kept. */
const WORDS_CACHE = new Map<string, string[]>();

function cachedWords(name: string): string[] {
  let words = WORDS_CACHE.get(name);
  if (!words) {
    if (WORDS_CACHE.size >= 1000) WORDS_CACHE.clear();
    WORDS_CACHE.set(name, (words = wordsOf(name)));
  }
  return words;
}

function namesSecret(name: string, parameter: boolean): boolean {
  for (const word of cachedWords(name)) {
    if (SECRET_WORDS.has(word)) return true;
    if (parameter && PARAMETER_WORDS.has(word) && !namesOrdinaryThing(name)) return true;
    if (SECRET_SUFFIXES.some((s) => word.length > s.length && word.endsWith(s))) return true;
  }
  return false;
}

/**
 * Whether a query parameter, header, option or config key of this name holds a secret:
 * password, pwd, token, access_token, id_token, refresh_token, client_secret, code, key, apiKey,
 * X-Api-Key, auth, Authorization, Proxy-Authorization, Cookie, jwt, sessionid, sig, X-Amz-Signature,
 * X-Amz-Credential, X-Amz-Security-Token, X-Goog-Signature, …
 */
export function isSensitiveKey(name: string): boolean {
  return namesSecret(name, true);
}

/** The stricter test for names found in prose (`NAME=value`, `"name": "value"`, `name: value`). */
export function isSecretName(name: string): boolean {
  return namesSecret(name, false);
}

const UPPER = /[A-Z]/;
const LOWER = /[a-z]/;
const DIGIT = /[0-9]/;
const JWT = /^eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*$/;
const KNOWN_TOKEN = /^(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,}|xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}|[sr]k_(live|test)_[A-Za-z0-9]{16,}|(AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{36})$/;

/**
 * Whether a value looks like a credential whatever it is called: a JWT, a well-known token format
 * (GitHub, Slack, Stripe, AWS access key id, Google API key, GitLab, npm), or a long random string.
 * Random means: 24 characters or more of a token alphabet, mixing letters and digits, with the
 * character class changing often (identifiers and words change class rarely) and no character
 * dominating. UUIDs and hex digests (only lower-case and digits, as ids are) are not masked.
 */
export function looksLikeCredential(value: string): boolean {
  if (JWT.test(value) || KNOWN_TOKEN.test(value)) return true;
  if (value.length < 24 || !/^[A-Za-z0-9_~+/=.-]+$/.test(value)) return false;
  if (!UPPER.test(value) || !LOWER.test(value) || !DIGIT.test(value)) return false;
  return randomLooking(value);
}

function randomLooking(value: string): boolean {
  const alnum = value.replace(/[^A-Za-z0-9]/g, '');
  if (alnum.length < 20) return false;
  let switches = 0;
  const cls = (c: string): number => (DIGIT.test(c) ? 0 : UPPER.test(c) ? 1 : 2);
  for (let i = 1; i < alnum.length; i += 1) if (cls(alnum[i]!) !== cls(alnum[i - 1]!)) switches += 1;
  const counts = new Map<string, number>();
  for (const c of alnum) counts.set(c, (counts.get(c) ?? 0) + 1);
  let entropy = 0;
  for (const n of counts.values()) entropy -= (n / alnum.length) * Math.log2(n / alnum.length);
  return switches >= alnum.length * 0.3 && entropy >= Math.min(4, Math.log2(alnum.length) - 0.6);
}

// Sticky (y): matched at lastIndex, so a long text is never copied per URI.
const HOST_AFTER_AT = /@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(:\d*)?(?=[/?#\s"'<>),;\\]|$)/y;
const USER_PREFIX = /[^\s:/@?#"'<>]*:/y;

/**
 * Masks the password of every `scheme://user:password@host`. The password may hold `@`, `#`, `/`, `?`
 * or spaces unencoded (a hand-written AMQP_URL often does): it runs to the last `@host` of the URI
 * (of the whitespace-free run first, else of the line), so no tail of it is left.
 */
function maskUserInfo(text: string): string {
  let out = '';
  let from = 0;
  // Found by their `://` (a plain indexOf) rather than a regex run over every position of a long text.
  for (let sep = text.indexOf('://'); sep !== -1; sep = text.indexOf('://', sep + 3)) {
    const start = sep + 3;
    if (start < from || !hasScheme(text, sep)) continue;
    USER_PREFIX.lastIndex = start;
    const user = USER_PREFIX.exec(text);
    if (!user) continue;
    const passStart = start + user[0].length;
    const end = passwordEnd(text, passStart);
    if (end === -1 || isExample(text, start, end)) continue;
    out += text.slice(from, passStart) + MASK;
    from = end;
  }
  return out + text.slice(from);
}

/** Whether `://` at `sep` follows a scheme: a letter, then letters, digits, `+`, `.` or `-`. */
function hasScheme(text: string, sep: number): boolean {
  let i = sep - 1;
  while (i >= 0 && /[A-Za-z0-9+.-]/.test(text[i]!)) i -= 1;
  return i + 1 < sep && /[A-Za-z]/.test(text[i + 1]!);
}

/** `user:password@host`, as the product's own hints write an example URL, is not a secret. */
function isExample(text: string, userStart: number, at: number): boolean {
  return text.slice(userStart, at) === 'user:password' && text.startsWith('@host', at);
}

/** The index of the `@` that ends the password starting at `at`, or -1 when there is no user-info. */
const PASSWORD_STOP = /[\r\n"'<>`]/g;
const RAW_END = /\)(?=[&\s"'<>,]|$)|[\r\n]/g;
const VALUE_END = /[&\s"'<>]/g;
const WHITESPACE = /\s/;
const RAW_VALUE = /^RAW\((.*)\)$/s;

function passwordEnd(text: string, at: number): number {
  PASSWORD_STOP.lastIndex = at;
  let limit = PASSWORD_STOP.exec(text)?.index ?? text.length;
  // The next URI of the text ends this one's password (its scheme start is the limit).
  for (let sep = text.indexOf('://', at); sep !== -1 && sep < limit; sep = text.indexOf('://', sep + 3)) {
    if (!hasScheme(text, sep)) continue;
    let schemeStart = sep;
    while (schemeStart > at && /[A-Za-z0-9+.-]/.test(text[schemeStart - 1]!)) schemeStart -= 1;
    limit = schemeStart;
    break;
  }
  const region = text.slice(at, limit);
  const runEnd = region.search(WHITESPACE);
  const lastHostAt = (end: number): number => {
    let found = -1;
    for (let i = region.indexOf('@'); i !== -1 && at + i < end; i = region.indexOf('@', i + 1)) {
      HOST_AFTER_AT.lastIndex = i;
      if (HOST_AFTER_AT.test(region)) found = at + i;
    }
    return found;
  };
  if (runEnd !== -1) {
    const inRun = lastHostAt(at + runEnd);
    if (inRun !== -1) return inRun;
  }
  return lastHostAt(limit);
}

const QUERY_KEY = /([?&;])([^=&#\s?"'<>]+)=/g;

/** The end of the query value starting at `at`: a `RAW(...)` value runs to its closing parenthesis. */
function queryValueEnd(text: string, at: number): number {
  if (text.startsWith('RAW(', at)) {
    RAW_END.lastIndex = at + 4;
    const m = RAW_END.exec(text);
    if (!m) return text.length;
    return m[0] === ')' ? m.index + 1 : m.index;
  }
  VALUE_END.lastIndex = at;
  return VALUE_END.exec(text)?.index ?? text.length;
}

/** Masks query values named like secrets, or that look like credentials, RAW(...) values whole. */
function maskQuery(text: string): string {
  let out = '';
  let from = 0;
  QUERY_KEY.lastIndex = 0;
  for (let m = QUERY_KEY.exec(text); m; m = QUERY_KEY.exec(text)) {
    const valueStart = m.index + m[0].length;
    if (m.index < from) continue;
    const end = queryValueEnd(text, valueStart);
    const value = text.slice(valueStart, end);
    if (value !== '' && value !== MASK && (isSensitiveKey(safeDecode(m[2]!)) || (value.length >= 20 && looksLikeCredential(rawOrDecoded(value))))) {
      out += text.slice(from, valueStart) + MASK;
      from = end;
      QUERY_KEY.lastIndex = end;
    }
  }
  return out + text.slice(from);
}

/** Telegram bot tokens (`<bot id>:<35 characters>`), in `/bot<token>/` paths or anywhere: the id stays. */
const TELEGRAM_TOKEN = /\b(\d{5,15}):[A-Za-z0-9_-]{30,}/g;
const JWT_ANYWHERE = /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
/** Runs of a token alphabet long enough to be a credential (20: an AWS access key id). */
const TOKEN_RUN = /(?<![A-Za-z0-9_+-])[A-Za-z0-9_+-]{20,}={0,2}/g;
const HAS_DIGIT = /[0-9]/;

function maskCredentialValues(text: string): string {
  let masked = text;
  if (masked.includes('eyJ')) masked = masked.replace(JWT_ANYWHERE, MASK);
  if (masked.includes(':')) masked = masked.replace(TELEGRAM_TOKEN, (_m, id: string) => `${id}:${MASK}`);
  return masked.replace(TOKEN_RUN, (run) => (HAS_DIGIT.test(run) && looksLikeCredential(run) ? MASK : run));
}

/**
 * Masks one URL given as a value (a configured broker URL, not a line of text): its password runs
 * from the user's `:` to the last `@` of the value, whatever it holds, spaces included.
 */
export function maskUrlValue(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^\s:/@?#]*:)(.*)@/is.exec(url);
  const masked = m ? `${m[1]}${MASK}@${url.slice(m[0].length)}` : url;
  return maskCredentialValues(maskQuery(masked));
}

/** Masks `scheme://user:pass@` and secret query values in one URI (or any text that contains URIs). */
export function maskUri(uri: string): string {
  return maskCredentialValues(maskQuery(maskUserInfo(uri)));
}

const JSON_PAIR = /("([^"\\]{1,64})"\s*:\s*)"(?:[^"\\]|\\.)*"/g;
const ENV_PAIR = /\b([A-Za-z_][A-Za-z0-9_.-]{0,63})=([^\s&,;]+)/g;
const COLON_PAIR = /(^|[\s{,(])([A-Za-z_][A-Za-z0-9_.-]{0,63}):[ \t]+("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;]+)/gm;
/** Header lines whose whole value is a credential, spaces included. */
const CREDENTIAL_HEADER = /\b((?:Proxy-)?Authorization|Cookie|Set-Cookie):[ \t]*([^\r\n]+)/gi;
const AUTH_SCHEME = /\b(Bearer|AWS4-HMAC-SHA256)\s+[A-Za-z0-9._~+/=,:-]+/g;
/** Basic credentials are base64: a word of prose after "Basic" (`Basic setup`) is left alone. */
const BASIC = /\bBasic\s+(?=[A-Za-z0-9+/]*(?:[0-9+/=]|[a-z][A-Z]))[A-Za-z0-9+/]{4,}={0,2}/g;

/**
 * Masks secrets in free text: URIs, `"password":"..."` in JSON, `API_TOKEN=...` pairs, `token: ...`
 * (YAML, headers), Authorization values and credential-looking values. Used as the last line of
 * defence on every log line. Names that are ordinary words in prose (`key`, `code`) are masked only
 * inside URIs, so the product's own text (`give a file of key=value lines`) is never touched.
 */
export function maskSecrets(text: string): string {
  let out = maskUri(text);
  // Each pattern runs only when the text can hold it: most log lines hold none, some are megabytes.
  if (out.includes('"')) out = out.replace(JSON_PAIR, (m, head: string, key: string) => (isSecretName(key) ? `${head}"${MASK}"` : m));
  if (out.includes('=')) out = out.replace(ENV_PAIR, (m, key: string, value: string) => (isSecretName(key) && value !== MASK ? `${key}=${MASK}` : m));
  if (out.includes(':')) {
    if (/authorization|cookie/i.test(out)) out = out.replace(CREDENTIAL_HEADER, (_m, name: string) => `${name}: ${MASK}`);
    if (/:[ \t]/.test(out)) {
      out = out.replace(COLON_PAIR, (m, before: string, key: string, value: string) => (isSecretName(key) && value !== MASK ? `${before}${key}: ${MASK}` : m));
    }
  }
  if (out.includes('Bearer') || out.includes('AWS4-')) out = out.replace(AUTH_SCHEME, (_m, scheme: string) => `${scheme} ${MASK}`);
  if (out.includes('Basic')) out = out.replace(BASIC, `Basic ${MASK}`);
  return out;
}

/** Masks the values of sensitive keys in a plain config object (one level deep and nested objects). */
export function maskConfig<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => maskConfig(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSensitiveKey(k) && v !== undefined && v !== null && typeof v !== 'object' ? MASK : maskConfig(v);
    }
    return out as T;
  }
  return typeof value === 'string' ? (maskUri(value) as T) : value;
}

/** A query value as the option parser reads it: RAW(...) verbatim, otherwise percent-decoded. */
function rawOrDecoded(value: string): string {
  const raw = RAW_VALUE.exec(value);
  return raw ? raw[1]! : safeDecode(value);
}

function safeDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
