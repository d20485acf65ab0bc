/** Anything with a lifecycle. start() and stop() are idempotent. */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type ServiceState = 'new' | 'starting' | 'started' | 'stopping' | 'stopped';

/**
 * Base for services whose start and stop must each run once, even when called concurrently:
 * concurrent callers share the same in-flight promise.
 */
export abstract class ServiceSupport implements Service {
  #state: ServiceState = 'new';
  #transition: Promise<void> | undefined;

  get state(): ServiceState {
    return this.#state;
  }

  get isStarted(): boolean {
    return this.#state === 'started';
  }

  async start(): Promise<void> {
    if (this.#state === 'started' || this.#state === 'starting') return this.#transition;
    if (this.#state === 'stopping') await this.#transition;
    this.#state = 'starting';
    this.#transition = (async () => {
      try {
        await this.doStart();
        this.#state = 'started';
      } catch (err) {
        this.#state = 'stopped';
        throw err;
      }
    })();
    const starting = this.#transition;
    // A failed start leaves the service stopped; a later stop() must not rethrow the start's error.
    starting.catch(() => {
      if (this.#transition === starting) this.#transition = undefined;
    });
    return starting;
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'new' || this.#state === 'stopping') return this.#transition;
    if (this.#state === 'starting') await this.#transition?.catch(() => undefined);
    this.#state = 'stopping';
    this.#transition = (async () => {
      try {
        await this.doStop();
      } finally {
        this.#state = 'stopped';
      }
    })();
    return this.#transition;
  }

  protected abstract doStart(): Promise<void> | void;
  protected abstract doStop(): Promise<void> | void;
}
