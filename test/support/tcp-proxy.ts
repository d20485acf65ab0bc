import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of one server, for one member: `cut()` is a network partition
 * (every open connection is dropped and new ones are accepted but go nowhere, as when packets are
 * lost), `heal()` ends it. Stopped by close().
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Socket>();
  readonly #held = new Set<Socket>();
  /** Each open connection's client side and its upstream, for hold(). */
  readonly #links = new Map<Socket, Socket>();
  #cut = false;
  port = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer((client) => this.#accept(client));
  }

  static async start(targetPort: number, host = '127.0.0.1'): Promise<TcpProxy> {
    const proxy = new TcpProxy({ host, port: targetPort });
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (proxy.#server.address() as { port: number }).port;
    return proxy;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  #accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.#cut) {
      // Accepted, never answered: the client's calls time out as across a partition.
      this.#held.add(client);
      client.once('close', () => this.#held.delete(client));
      return;
    }
    const upstream = createConnection(this.#target);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    this.#links.set(client, upstream);
    client.once('close', () => this.#links.delete(client));
    this.#pairs.add(client);
    this.#pairs.add(upstream);
    client.once('close', () => this.#pairs.delete(client));
    upstream.once('close', () => this.#pairs.delete(upstream));
  }

  /** Drops every connection and holds new ones silently until heal(). */
  cut(): void {
    this.#cut = true;
    for (const s of this.#pairs) s.destroy();
    this.#pairs.clear();
  }

  /**
   * Holds what the member sends on its open connections (a network that delays, not drops): the
   * server hears nothing more from it until release() delivers it all, in order. Answers still flow.
   */
  hold(): void {
    for (const [client, upstream] of this.#links) {
      client.unpipe(upstream);
      client.pause();
    }
  }

  release(): void {
    for (const [client, upstream] of this.#links) client.pipe(upstream);
  }

  heal(): void {
    this.#cut = false;
    for (const s of this.#held) s.destroy();
    this.#held.clear();
  }

  async close(): Promise<void> {
    for (const s of [...this.#pairs, ...this.#held]) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
