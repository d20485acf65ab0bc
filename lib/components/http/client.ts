import type { AxiosInstance } from 'axios';
import type { Agent } from 'node:https';
import { formatDuration } from '../../uri/duration.ts';
import { HttpAbortedError, HttpRequestError } from './errors.ts';
import { secretHeaderGuard } from './redirect.ts';
import type { Redactor } from './target.ts';
import { tlsHint } from './tls.ts';

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  data?: Buffer;
  /** Bounds the whole request, connection setup included (axios' own timeout does not). */
  timeout: number;
  /** Aborted when the endpoint stops: the request ends at once. */
  stop: AbortSignal;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  data: Buffer;
}

/** One axios instance per endpoint; every status comes back as a response, and only missing responses throw. */
export class HttpClient {
  readonly #axios: AxiosInstance;
  readonly #redactor: Redactor;
  readonly #envHeaders: readonly string[];

  private constructor(axios: AxiosInstance, redactor: Redactor, envHeaders: readonly string[]) {
    this.#axios = axios;
    this.#redactor = redactor;
    this.#envHeaders = envHeaders;
  }

  /** Loads axios on first use, so routes without http never pay for it. */
  static async create(options: { followRedirects: boolean; redactor: Redactor; httpsAgent?: Agent; envHeaders?: readonly string[] }): Promise<HttpClient> {
    const { default: axios } = await import('axios');
    const instance = axios.create({
      validateStatus: () => true,
      responseType: 'arraybuffer',
      transformResponse: [(data: unknown) => data],
      maxRedirects: options.followRedirects ? 5 : 0,
      httpsAgent: options.httpsAgent,
    });
    return new HttpClient(instance, options.redactor, options.envHeaders ?? []);
  }

  async send(request: HttpRequest, maskedUrl: string): Promise<HttpResponse> {
    const timeout = AbortSignal.timeout(request.timeout);
    try {
      const response = await this.#axios.request<ArrayBuffer>({
        method: request.method,
        url: request.url,
        headers: request.headers,
        data: request.data,
        signal: AbortSignal.any([request.stop, timeout]),
        // Secret headers never follow a redirect to another origin (see redirect.ts).
        beforeRedirect: secretHeaderGuard(request.url, this.#envHeaders),
      });
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers ?? {})) {
        if (value === undefined || value === null) continue;
        headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
      }
      const data = Buffer.isBuffer(response.data) ? response.data : Buffer.from(response.data ?? new ArrayBuffer(0));
      return { status: response.status, statusText: response.statusText ?? '', headers, data };
    } catch (err) {
      // The axios error holds the request config, headers included: never let it out, only its text.
      if (request.stop.aborted) throw new HttpAbortedError(maskedUrl);
      if (timeout.aborted) throw new HttpRequestError(maskedUrl, `no response within ${formatDuration(request.timeout)} (requestTimeout)`, true);
      const e = err as { code?: string; message?: string };
      const reason = [e.code, e.message, tlsHint(e.code)].filter(Boolean).join(': ') || String(err);
      throw new HttpRequestError(maskedUrl, this.#redactor.redact(reason), false);
    }
  }
}
