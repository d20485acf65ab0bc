import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from './kubeconfig.ts';

/** Per-call options: the signal aborts the request (the API server is never waited on forever). */
export interface CallOptions {
  signal?: AbortSignal;
}

export type Query = Record<string, string | number | boolean | undefined>;

/**
 * A response with a status outside 2xx, shaped as client-node's ApiException: `code` is the status,
 * `body` the response text (a Status object as JSON), so callers read both the same way.
 */
export class ApiError extends Error {
  readonly code: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;

  constructor(code: number, body: string, headers: IncomingMessage['headers']) {
    let detail = '';
    try {
      detail = String((JSON.parse(body) as { message?: unknown }).message ?? '');
    } catch {
      detail = body.split('\n')[0]!.slice(0, 200);
    }
    super(`${STATUS_CODES[code] ?? 'HTTP error'} (HTTP ${code})${detail ? `: ${detail}` : ''}`);
    this.name = 'ApiError';
    this.code = code;
    this.body = body;
    this.headers = headers;
  }
}

const USER_AGENT = 'dromedary';
/** Bounds the resends on stale kept-alive connections (an agent keeps at most a few idle ones per server). */
const MAX_STALE_RETRIES = 8;

/**
 * HTTP to the current cluster of a kubeconfig, over node:http(s) with one keep-alive agent: what the
 * Lease, ConfigMap and pod calls need, and nothing of client-node's generated clients. Network and TLS
 * failures are Node's own errors (with their `code`); HTTP failures are ApiErrors.
 */
export class KubeTransport {
  readonly #kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  /** Sends a request and resolves with the response once its headers arrive, whatever its status. */
  async open(method: string, path: string, query: Query = {}, body?: unknown, options: CallOptions = {}): Promise<IncomingMessage> {
    const cluster = this.#kc.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    const url = new URL(cluster.server + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
    options.signal?.throwIfAborted();
    const { agent, headers } = await this.#kc.requestTarget();
    const text = body === undefined ? undefined : JSON.stringify(body);
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const attempt = (retries: number) =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const req = send(
          url,
          {
            method,
            agent,
            headers: {
              Accept: 'application/json',
              'User-Agent': USER_AGENT,
              ...headers,
              ...(text !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) } : {}),
            },
          },
          (response) => {
            received = response;
            resolve(response);
          },
        );
        let received: IncomingMessage | undefined;
        // The signal ends the request, or its response while the body is still coming; not a response
        // already complete, whose kept-alive socket may be back in the agent's pool (destroying it
        // with an error there throws with no one to catch it).
        const signal = options.signal;
        const onAbort = () => {
          if (!received?.complete) req.destroy(Object.assign(new Error('The operation was aborted', { cause: signal?.reason }), { name: 'AbortError', code: 'ABORT_ERR' }));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        req.on('close', () => signal?.removeEventListener('abort', onAbort));
        req.on('error', (err: Error & { code?: string }) => {
          // A kept-alive connection the server closed while it sat idle (a restart, an idle timeout)
          // fails at once with a reset: the request goes again, as Go's net/http does, until it fails
          // on a connection of its own (each stale one is gone once it failed). Safe for every call
          // here: a replace or create that did apply answers 409 Conflict the second time.
          if (retries > 0 && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) resolve(attempt(retries - 1));
          else reject(err);
        });
        req.end(text);
      });
    return attempt(MAX_STALE_RETRIES);
  }

  /** A request whose response is JSON: the parsed body for 2xx, an ApiError otherwise. */
  async call<T>(method: string, path: string, query: Query = {}, body?: unknown, options: CallOptions = {}): Promise<T> {
    const response = await this.open(method, path, query, body, options);
    const text = await readBody(response);
    const status = response.statusCode ?? 0;
    if (status < 200 || status > 299) throw new ApiError(status, text, response.headers);
    return (text ? JSON.parse(text) : {}) as T;
  }
}

function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
    // An abort after the headers: the body never ends; 'close' without 'end' says so.
    response.on('close', () => {
      if (!response.complete) reject(response.errored ?? Object.assign(new Error('the response ended before its body was complete'), { name: 'AbortError' }));
    });
  });
}
