/**
 * Masking of secrets wherever a URI or a configuration value is printed.
 * Follows Camel's URISupport.sanitizeUri: user-info passwords and the values of query
 * parameters with secret-looking names are replaced by `xxxxxx`.
 */
export const MASK = 'xxxxxx';

const SENSITIVE_KEY = /(pass(word|phrase|wd)?|secret|token|api[-_.]?key|access[-_.]?key|private[-_.]?key|signature|credential|authorization|auth[-_.]?(header|key|token)|^key$|[-_.]key$|sas)/i;

export function isSensitiveKey(name: string): boolean {
  return SENSITIVE_KEY.test(name);
}

const USER_INFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@?#]*):([^@\s/?#]*)@/gi;
const QUERY_PAIR = /([?&;])([^=&#\s?]+)=([^&#\s]*)/g;

/** Masks `scheme://user:pass@` and sensitive query values in one URI (or any text that contains URIs). */
export function maskUri(uri: string): string {
  return uri
    .replace(USER_INFO, (_m, head: string) => `${head}:${MASK}@`)
    .replace(QUERY_PAIR, (m, sep: string, key: string) => (isSensitiveKey(safeDecode(key)) ? `${sep}${key}=${MASK}` : m));
}

const JSON_PAIR = /("([^"\\]{1,64})"\s*:\s*)"(?:[^"\\]|\\.)*"/g;
const ENV_PAIR = /\b([A-Za-z_][A-Za-z0-9_.-]{0,63})=([^\s&,;]+)/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g;

/**
 * Masks secrets in free text: URIs, `"password":"..."` in JSON, `TOKEN=...` pairs and
 * Authorization header values. Used as the last line of defence on every log line.
 */
export function maskSecrets(text: string): string {
  return maskUri(text)
    .replace(JSON_PAIR, (m, head: string, key: string) => (isSensitiveKey(key) ? `${head}"${MASK}"` : m))
    .replace(ENV_PAIR, (m, key: string) => (isSensitiveKey(key) ? `${key}=${MASK}` : m))
    .replace(BEARER, (_m, scheme: string) => `${scheme} ${MASK}`);
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

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
