import type { Logger } from '../../logging/logger.ts';
import type { K8s } from './client.ts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;

/**
 * Told of each change: the new resourceVersion, the object and the event type (ADDED, MODIFIED,
 * DELETED); and, with no version or object and the type DISCONNECTED, when a connected stream is lost,
 * so subscribers stop relying on it until it is back (see `live`).
 */
export type Subscriber = (version?: string, object?: WatchedObject, type?: string) => void;

/** An object as a watch delivers it. */
export interface WatchedObject {
  metadata?: { name?: string; resourceVersion?: string };
  code?: number;
}

export interface ResourceWatchOptions {
  /** The collection's path, e.g. `/apis/coordination.k8s.io/v1/namespaces/ns/leases`. */
  path: string;
  query: Record<string, string>;
  keysOf: (object: WatchedObject) => Iterable<string>;
  /**
   * A stream with no event, bookmark or end for this long is dead (a connection that died without
   * a FIN or RST looks exactly like a quiet one): it is abandoned and reopened. The API server is
   * asked to end each stream within half of it (`timeoutSeconds`), and sends a bookmark just before
   * it does, so a healthy stream is never silent that long.
   */
  idleMs: number;
  logger: Logger;
}

/**
 * One watch stream on a collection (the app's Leases, or the one locks ConfigMap), shared by every
 * lock: each change is passed, with its resourceVersion, to the subscribers of the keys `keysOf`
 * names for it. The watch only makes followers react sooner; correctness never depends on it
 * (electors still read and write through the API), so a broken or silent stream is simply reopened
 * with backoff, resuming from the last version seen, from scratch after 410 Expired.
 */
export class ResourceWatch {
  readonly #k8s: K8s;
  readonly #kc: KubeConfig;
  readonly #path: string;
  readonly #query: Record<string, string>;
  readonly #keysOf: (object: WatchedObject) => Iterable<string>;
  readonly #logger: Logger;
  readonly #idleMs: number;
  readonly #subscribers = new Map<string, Set<Subscriber>>();
  #controller: AbortController | undefined;
  /** Numbers each stream, so that a stream given up on cannot act when it finally answers. */
  #generation = 0;
  #idle: NodeJS.Timeout | undefined;
  #resourceVersion: string | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoff = 250;
  #running = false;
  #closed = false;

  constructor(k8s: K8s, kc: KubeConfig, options: ResourceWatchOptions) {
    this.#k8s = k8s;
    this.#kc = kc;
    this.#path = options.path;
    this.#query = options.query;
    this.#keysOf = options.keysOf;
    this.#logger = options.logger;
    this.#idleMs = options.idleMs;
  }

  /** The label selector `k=v,k2=v2` for a label map. */
  static selector(labels: Record<string, string>): string {
    return Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  }

  /** Whether a stream is connected now (not connecting, and not waiting to reconnect after an error). */
  get live(): boolean {
    return this.#controller !== undefined;
  }

  subscribe(key: string, onChange: Subscriber): () => void {
    const set = this.#subscribers.get(key) ?? new Set();
    this.#subscribers.set(key, set);
    set.add(onChange);
    if (!this.#running && !this.#closed) void this.#open();
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.#subscribers.delete(key);
      if (this.#subscribers.size === 0) this.#stop();
    };
  }

  close(): void {
    this.#closed = true;
    this.#stop();
  }

  #stop(): void {
    this.#running = false;
    this.#generation += 1;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    this.#controller?.abort();
    this.#controller = undefined;
  }

  /** (Re)starts the countdown after which stream `generation` counts as dead. */
  #armIdle(generation: number): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      this.#idle = undefined;
      if (generation !== this.#generation || !this.#running) return;
      this.#logger.info(`Watch on ${this.#path} was silent for ${this.#idleMs}ms (no event, bookmark or end): reopening it`);
      const stalled = this.#controller;
      this.#generation += 1;
      stalled?.abort();
      this.#reopen(undefined);
    }, this.#idleMs);
  }

  async #open(): Promise<void> {
    if (this.#closed || this.#subscribers.size === 0) return;
    this.#running = true;
    const generation = ++this.#generation;
    const query: Record<string, string | number | boolean> = {
      allowWatchBookmarks: true,
      timeoutSeconds: Math.max(1, Math.floor(this.#idleMs / 2000)),
      ...this.#query,
    };
    if (this.#resourceVersion) query.resourceVersion = this.#resourceVersion;
    // Armed before connecting: a request that never gets its response headers is dead too.
    this.#armIdle(generation);
    try {
      const controller = await new this.#k8s.Watch(this.#kc).watch(
        this.#path,
        query,
        (type, object: WatchedObject) => {
          if (generation !== this.#generation) return;
          this.#armIdle(generation);
          if (type === 'ERROR') {
            // 410 Expired: the version is too old to resume from; start over with a fresh stream.
            if (object.code === 410) this.#resourceVersion = undefined;
            this.#controller?.abort();
            return;
          }
          const version = object.metadata?.resourceVersion;
          if (version) this.#resourceVersion = version;
          this.#backoff = 250;
          if (type === 'BOOKMARK') return;
          for (const key of this.#keysOf(object)) for (const notify of this.#subscribers.get(key) ?? []) notify(version, object, type);
        },
        (err: unknown) => {
          if (generation === this.#generation) this.#reopen(err);
        },
      );
      if (!this.#running || generation !== this.#generation) controller.abort();
      else this.#controller = controller;
    } catch (err) {
      if (generation === this.#generation) this.#reopen(err);
    }
  }

  #reopen(err: unknown): void {
    const wasLive = this.#controller !== undefined;
    this.#controller = undefined;
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    if (!this.#running || this.#closed) return;
    if ((err as { statusCode?: number })?.statusCode === 410) this.#resourceVersion = undefined;
    if (err && (err as Error).name !== 'AbortError') {
      this.#logger.debug(`Watch on ${this.#path} ended (${(err as Error).message ?? String(err)}); reopening in ${this.#backoff}ms`);
    }
    if (wasLive) for (const set of [...this.#subscribers.values()]) for (const notify of [...set]) notify(undefined, undefined, 'DISCONNECTED');
    const wait = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, 30_000);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#open();
    }, wait);
  }
}
