import type { Client, ClientConfig, Notification } from 'pg';
import type { Logger } from '../../logging/logger.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { withTimeout } from '../campaign/campaign.ts';

type PgModule = { Client: typeof import('pg').Client };

/**
 * This member's one connection to PostgreSQL, shared by its locks. Every query has a timeout; a
 * query that timed out or failed on the connection drops it (its socket is destroyed, so the server
 * sees the member go), and the next query opens a new one, which LISTENs again.
 */
export class PgConnection {
  readonly #pg: PgModule;
  readonly #config: ClientConfig;
  readonly #channel: string;
  readonly #timeout: number;
  readonly #logger: Logger;
  readonly #onNotify: (payload: string) => void;
  #client: Promise<Client> | undefined;
  #closed = false;

  constructor(options: { pg: PgModule; url: string; channel: string; timeout: number; logger: Logger; onNotify: (payload: string) => void }) {
    this.#pg = options.pg;
    this.#config = { connectionString: options.url, connectionTimeoutMillis: options.timeout, keepAlive: true, application_name: 'dromedary' };
    this.#channel = options.channel;
    this.#timeout = options.timeout;
    this.#logger = options.logger;
    this.#onNotify = options.onNotify;
  }

  /** The previous query's end: a pg Client runs one query at a time, so they are queued here. */
  #tail: Promise<unknown> = Promise.resolve();

  query<R extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
    const run = this.#tail.then(() => this.#run<R>(text, values));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #run<R extends Record<string, unknown>>(text: string, values: unknown[]): Promise<R[]> {
    if (this.#closed) throw new Error('the postgres cluster service is stopped');
    const pending = (this.#client ??= this.#connect());
    try {
      const client = await withTimeout(pending, this.#timeout, 'postgres connect');
      const result = await withTimeout(client.query<R>(text, values), this.#timeout, 'postgres query');
      return result.rows;
    } catch (err) {
      // An error the server reported (it has a severity) leaves the connection usable; a timeout or
      // a broken connection does not.
      if (this.#client === pending && (err as { severity?: string }).severity === undefined) this.#drop();
      throw err;
    }
  }

  async #connect(): Promise<Client> {
    const client = new this.#pg.Client(this.#config);
    client.on('error', (err) => {
      this.#logger.debug(maskSecrets(`PostgreSQL connection failed: ${err.message}`));
      if (this.#client) void this.#client.then((c) => c === client && this.#drop(), () => undefined);
    });
    client.on('notification', (n: Notification) => {
      if (n.channel === this.#channel && n.payload !== undefined) this.#onNotify(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.#channel)}`);
    } catch (err) {
      destroy(client);
      throw err;
    }
    return client;
  }

  #drop(): void {
    const pending = this.#client;
    this.#client = undefined;
    void pending?.then(destroy, () => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#client;
    this.#client = undefined;
    const client = await pending?.catch(() => undefined);
    if (client) await withTimeout(client.end(), this.#timeout, 'postgres close').catch(() => destroy(client));
  }
}

/** Closes the socket at once: the server sees the member go without waiting for a goodbye. */
function destroy(client: Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  void client.end().catch(() => undefined);
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
