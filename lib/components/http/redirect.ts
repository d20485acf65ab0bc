import { isSensitiveKey } from '../../uri/mask.ts';

/**
 * Which request headers are secrets that must not follow a redirect to another origin (scheme, host
 * or port; a subdomain is another origin too). follow-redirects drops only Authorization,
 * Proxy-Authorization and Cookie, and keeps them for subdomains; a token in `X-Auth-Token` or a
 * `dromedary.headerEnv.*` header would reach whatever server the redirect names.
 *
 * A secret header is: Authorization, Proxy-Authorization, Cookie, every header set with
 * `dromedary.headerEnv.<Name>` (its value came from the environment to stay out of the URI), and
 * every header named like a credential (token, key, secret, auth, session, password, signature,
 * credential, … as `isSensitiveKey` decides: X-Auth-Token, X-Api-Key, X-Amz-Security-Token).
 */
export function isSecretHeader(name: string, fromEnvironment: ReadonlySet<string>): boolean {
  const lower = name.toLowerCase();
  return lower === 'authorization' || lower === 'proxy-authorization' || lower === 'cookie' || fromEnvironment.has(lower) || isSensitiveKey(name);
}

/** The origin of a URL, or undefined when it cannot be parsed (then it counts as another origin). */
function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** Options follow-redirects hands to `beforeRedirect`: the next request, its headers mutable. */
export interface RedirectOptions {
  href?: string;
  headers?: Record<string, unknown>;
}

/**
 * A `beforeRedirect` hook for one request: once a redirect leaves the request's origin, every secret
 * header is removed, and stays removed for the rest of the chain (even back on the first origin).
 */
export function secretHeaderGuard(requestUrl: string, fromEnvironment: readonly string[]): (options: RedirectOptions) => void {
  const origin = originOf(requestUrl);
  const env = new Set(fromEnvironment.map((n) => n.toLowerCase()));
  let left = false;
  return (options) => {
    if (!left && options.href !== undefined && origin !== undefined && originOf(options.href) === origin) return;
    left = true;
    const headers = options.headers;
    if (!headers) return;
    for (const name of Object.keys(headers)) if (isSecretHeader(name, env)) delete headers[name];
  };
}
