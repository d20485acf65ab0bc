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
/** Bounds the resends of a read on stale kept-alive connections (an agent keeps a few idle ones per server). */
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
    // Let the event loop turn first, as undici does before it reuses an idle connection: a kept-alive
    // connection the server has already closed (its FIN is waiting to be read) is then closed here too,
    // and the agent does not write this request on it. That takes three turns: one reads the FIN,
    // the next ends this side, the last completes the close.
    for (let turn = 0; turn < 3; turn += 1) await new Promise<void>((resolve) => setImmediate(resolve));
    options.signal?.throwIfAborted();
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
        // Whether the whole request reached the kernel: a connection the server had already reset
        // fails the write itself, before this, so the server cannot have seen the request.
        let written = false;
        req.on('finish', () => (written = true));
        req.on('error', (err: Error & { code?: string }) => {
          // A kept-alive connection the server closed just as it was reused fails with a reset. A read
          // then goes again, as Go's net/http resends replayable requests; a write only if it was not
          // written out (Go's "nothing written"), since a write the server may have received (one held
          // by a partition and reset when it heals) must not be applied later than the elector, which
          // times its terms from the moment it sent it, believes. Either way until it fails on a
          // connection of its own; any other failure is the caller's (the elector retries).
          const stale = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
          if (retries > 0 && stale && (method === 'GET' || !written)) resolve(attempt(retries - 1));
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
