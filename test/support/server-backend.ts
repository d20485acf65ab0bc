import { EtcdServer } from './etcd-server.ts';
import { PostgresServer } from './postgres-server.ts';
import { ZooKeeperServer } from './zookeeper-server.ts';
import { TcpProxy } from './tcp-proxy.ts';

/** The member names the chaos tests use; each gets its own proxy to the server. */
const MEMBER_NAMES = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];

export type ServerKind = 'etcd' | 'postgres' | 'zookeeper';

type Server = EtcdServer | PostgresServer | ZooKeeperServer;

/**
 * A chaos-suite target whose members coordinate through a real server the harness starts (etcd,
 * PostgreSQL, ZooKeeper): the server, one TCP proxy per member name (so one member's connection can be cut),
 * and the server-wide faults (restart, pause).
 */
export class ServerBackend {
  readonly kind: ServerKind;
  readonly server: Server;
  readonly #proxies = new Map<string, TcpProxy>();

  private constructor(kind: ServerKind, server: Server) {
    this.kind = kind;
    this.server = server;
  }

  static async start(kind: ServerKind): Promise<ServerBackend> {
    const server = kind === 'etcd' ? await EtcdServer.start() : kind === 'postgres' ? await PostgresServer.start() : await ZooKeeperServer.start();
    const backend = new ServerBackend(kind, server);
    for (const name of MEMBER_NAMES) backend.#proxies.set(name, await TcpProxy.start(backend.server.port));
    return backend;
  }

  get etcd(): EtcdServer {
    if (!(this.server instanceof EtcdServer)) throw new Error('not an etcd target');
    return this.server;
  }

  get postgres(): PostgresServer {
    if (!(this.server instanceof PostgresServer)) throw new Error('not a postgres target');
    return this.server;
  }

  /** The environment member `name` needs: its proxy as the server, and this test's own keys or table. */
  memberEnv(name: string, run: string): Record<string, string> {
    const proxy = this.#proxies.get(name);
    if (!proxy) throw new Error(`no proxy for member ${name}: use ${MEMBER_NAMES.join(', ')}`);
    if (this.kind === 'zookeeper') return { DROMEDARY_ZOOKEEPER_NODES: `127.0.0.1:${proxy.port}/${run}` };
    if (this.kind === 'postgres') return { DROMEDARY_POSTGRES_URL: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, DROMEDARY_POSTGRES_TABLE: run };
    return { DROMEDARY_ETCD_ENDPOINTS: `http://127.0.0.1:${proxy.port}`, DROMEDARY_ETCD_PREFIX: `/${run}/` };
  }

  /** Cuts member `name` off the server (a network partition) until heal(). */
  cut(name: string): void {
    this.#proxies.get(name)!.cut();
  }

  heal(name: string): void {
    this.#proxies.get(name)!.heal();
  }

  /**
   * Requests the server has received so far (etcd: gRPC messages; PostgreSQL: transactions, one per
   * statement here; ZooKeeper: packets), for tests of what an idle member costs.
   */
  async requests(): Promise<number> {
    const server = this.server;
    if (server instanceof EtcdServer) {
      const text = await (await fetch(`${server.endpoint}/metrics`)).text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('grpc_server_msg_received_total'))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    }
    if (server instanceof PostgresServer) {
      const [row] = await server.sql(`SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = 'postgres'`);
      return Number(row!.n);
    }
    return server.packetsReceived();
  }

  /** Stops the server and starts it again on the same data; `onStopped` runs once it is down, before the start. */
  restart(onStopped?: () => void): Promise<void> {
    return this.server.restart(onStopped);
  }

  /** SIGSTOP of the server: it holds every connection and answers nothing. */
  pause(): void {
    this.server.pause();
  }

  resume(): void {
    this.server.resume();
  }

  /** After each test: no fault outlives it. */
  async endTest(): Promise<void> {
    this.resume();
    for (const proxy of this.#proxies.values()) proxy.heal();
  }

  async stop(): Promise<void> {
    for (const proxy of this.#proxies.values()) await proxy.close();
    await this.server.stop();
  }
}
