import { STATUS_CODES } from 'node:http';
import type { KubeConfig } from './kubeconfig.ts';
import { KubeTransport, type Query } from './transport.ts';

/**
 * A watch stream (`?watch=true`, one JSON event per line), with client-node's Watch contract, so
 * ResourceWatch reads it the same way: `callback(type, object)` for each event (ADDED, MODIFIED,
 * DELETED, BOOKMARK, ERROR with a Status); `done(err)` exactly once, when the stream ends, fails or
 * is refused (an Error with the HTTP `statusCode`); the returned controller stops it.
 */
export class Watch {
  readonly #transport: KubeTransport;

  constructor(kc: KubeConfig) {
    this.#transport = new KubeTransport(kc);
  }

  async watch(
    path: string,
    query: Query,
    callback: (type: string, object: any, event: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let finished = false;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      controller.abort();
      done(err);
    };
    try {
      const response = await this.#transport.open('GET', path, { ...query, watch: true }, undefined, { signal: controller.signal });
      if (response.statusCode !== 200) {
        response.resume();
        const status = response.statusCode ?? 0;
        throw Object.assign(new Error(response.statusMessage || STATUS_CODES[status] || 'Internal Server Error'), { statusCode: status });
      }
      response.setEncoding('utf8');
      let pending = '';
      response.on('data', (chunk: string) => {
        pending += chunk;
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (!line.trim()) continue;
          let event: { type: string; object: unknown };
          try {
            event = JSON.parse(line) as { type: string; object: unknown };
          } catch {
            continue; // as client-node: a line that is not JSON is skipped
          }
          if (!finished) callback(event.type, event.object, event);
        }
      });
      response.on('error', finish);
      response.on('end', () => finish(null));
      response.on('close', () => finish(response.complete ? null : (response.errored ?? null)));
    } catch (err) {
      finish(err);
    }
    return controller;
  }
}
