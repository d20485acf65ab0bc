import { EventEmitter } from 'node:events';
import { withTimeout } from '../campaign/campaign.ts';

/** The part of node-zookeeper-client this backend uses (the package ships no types). */
interface RawStat {
  czxid: Buffer;
  version: number;
}
interface RawResult {
  err?: number;
}
interface RawTransaction {
  ops: { version?: number }[];
  check(path: string, version?: number): RawTransaction;
  setData(path: string, data: Buffer, version?: number): RawTransaction;
  commit(callback: Callback<RawResult[] | undefined>): void;
}
interface RawEvent {
  getType(): number;
}
type Callback<T> = (error: (Error & { code?: number }) | null, result: T) => void;
interface RawClient extends EventEmitter {
  connect(): void;
  close(): void;
  getSessionTimeout(): number;
  create(path: string, data: Buffer, mode: number, callback: Callback<string>): void;
  mkdirp(path: string, callback: Callback<string>): void;
  remove(path: string, version: number, callback: Callback<void>): void;
  exists(path: string, watcher: ((event: RawEvent) => void) | undefined, callback: Callback<RawStat | null>): void;
  getChildren(path: string, callback: Callback<string[]>): void;
  getData(path: string, callback: (error: (Error & { code?: number }) | null, data: Buffer | undefined, stat: RawStat) => void): void;
  transaction(): RawTransaction;
}
export interface ZkModule {
  createClient(connectString: string, options: { sessionTimeout: number; spinDelay: number; retries: number }): RawClient;
  CreateMode: { EPHEMERAL_SEQUENTIAL: number };
  Event: { NODE_DELETED: number };
  Exception: { NO_NODE: number; NODE_EXISTS: number; BAD_VERSION: number };
}

/** One ZooKeeper session's connection, with promises and a timeout on every call. */
export class ZkClient {
  readonly #zk: ZkModule;
  readonly #raw: RawClient;
  readonly #timeout: number;

  constructor(zk: ZkModule, raw: RawClient, timeout: number) {
    this.#zk = zk;
    this.#raw = raw;
    this.#timeout = timeout;
  }

  /**
   * Connects a new session, however long that takes (the client retries every spinDelay). Callers
   * bound their wait, but must not close a client that is still connecting: node-zookeeper-client
   * then misreads the server's late answer and throws from its socket handler.
   */
  static async connect(zk: ZkModule, connectString: string, sessionTimeout: number, timeout: number, spinDelay: number): Promise<ZkClient> {
    const raw = zk.createClient(connectString, { sessionTimeout, spinDelay, retries: 0 });
    const connected = new Promise<void>((resolve) => raw.once('connected', () => resolve()));
    raw.connect();
    await connected;
    return new ZkClient(zk, raw, timeout);
  }

  get sessionTimeout(): number {
    return this.#raw.getSessionTimeout();
  }

  on(event: 'expired' | 'disconnected' | 'connected', listener: () => void): void {
    this.#raw.on(event, listener);
  }

  #call<T>(what: string, fn: (callback: Callback<T>) => void): Promise<T> {
    const call = new Promise<T>((resolve, reject) => fn((error, result) => (error ? reject(error) : resolve(result))));
    return withTimeout(call, this.#timeout, `zookeeper ${what}`);
  }

  mkdirp(path: string): Promise<string> {
    return this.#call('mkdirp', (cb) => this.#raw.mkdirp(path, cb));
  }

  createEphemeralSequential(path: string, data: string): Promise<string> {
    return this.#call('create', (cb) => this.#raw.create(path, Buffer.from(data), this.#zk.CreateMode.EPHEMERAL_SEQUENTIAL, cb));
  }

  /** The node's creation zxid, or undefined when it does not exist; `onDeleted` fires once if it is deleted later. */
  async created(path: string, onDeleted?: () => void): Promise<number | undefined> {
    const watcher = onDeleted ? (event: RawEvent) => event.getType() === this.#zk.Event.NODE_DELETED && onDeleted() : undefined;
    const stat = await this.#call<RawStat | null>('exists', (cb) => this.#raw.exists(path, watcher, cb));
    return stat ? Number(stat.czxid.readBigUInt64BE(0)) : undefined;
  }

  children(path: string): Promise<string[]> {
    return this.#call('getChildren', (cb) => this.#raw.getChildren(path, cb));
  }

  /** The node's data and version, or undefined when it does not exist. */
  async data(path: string): Promise<{ data: Buffer; version: number } | undefined> {
    try {
      return await this.#call<{ data: Buffer; version: number }>('getData', (cb) =>
        this.#raw.getData(path, (error, data, stat) => cb(error, { data: data ?? Buffer.alloc(0), version: stat?.version })),
      );
    } catch (err) {
      if ((err as { code?: number }).code === this.#zk.Exception.NO_NODE) return undefined;
      throw err;
    }
  }

  /**
   * One multi(): sets `path`'s data if its version is still `version` and the node `held` still
   * exists. 'held' when `held` is gone, 'changed' when `path`'s version moved on (or it is gone).
   */
  async setDataIfHeld(held: string, path: string, data: Buffer, version: number): Promise<'done' | 'held' | 'changed'> {
    const tx = this.#raw.transaction().check(held).setData(path, data, version);
    // The client turns a version of 0 (a node never set) into -1 (any version): put it back.
    tx.ops[1]!.version = version;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`zookeeper multi did not finish within ${this.#timeout}ms`)), this.#timeout);
      tx.commit((error, results) => {
        clearTimeout(timer);
        if (!error) return resolve('done');
        // A failed multi answers every op: OK before the one that failed, that one's error, then the rest.
        const failed = results?.findIndex((r) => r.err !== undefined && r.err !== 0) ?? -1;
        if (failed === 0 && error.code === this.#zk.Exception.NO_NODE) return resolve('held');
        if (failed === 1 && (error.code === this.#zk.Exception.BAD_VERSION || error.code === this.#zk.Exception.NO_NODE)) return resolve('changed');
        reject(error);
      });
    });
  }

  async remove(path: string): Promise<void> {
    try {
      await this.#call<void>('remove', (cb) => this.#raw.remove(path, -1, cb));
    } catch (err) {
      if ((err as { code?: number }).code !== this.#zk.Exception.NO_NODE) throw err;
    }
  }

  /** Ends the session: ZooKeeper deletes its ephemeral nodes at once. */
  close(): void {
    this.#raw.close();
  }
}
