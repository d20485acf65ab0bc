import type { Etcd3 } from 'etcd3';
import type { Logger } from '../../logging/logger.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { withTimeout } from '../campaign/campaign.ts';
import type { ElectionTimings } from '../election/timings.ts';
import { ServerSession } from '../campaign/session.ts';

/**
 * One etcd lease that this member keeps alive, shared by all its locks (etcd's concurrency.Session).
 *
 * Valid until the start of its last successful keep-alive (or of its grant) plus renewDeadline, on
 * this member's monotonic clock. The server ends the lease no sooner than TTL = ⌈leaseDuration⌉ s
 * after it *received* that keep-alive, which is later: so this member knows its session is over
 * before the server can delete the keys attached to it, even when its timers have not run (a pause).
 * A session that lapsed is never revived, even if a late keep-alive succeeds: lost is lost.
 */
export class EtcdSession extends ServerSession {
  readonly id: string;

  constructor(id: string, validUntil: number, now: () => number) {
    super(validUntil, now, 'its etcd lease could not be kept alive within renewDeadline');
    this.id = id;
  }
}

export interface EtcdSessionsOptions {
  client: Etcd3;
  memberId: string;
  timings: ElectionTimings;
  logger: Logger;
  now?: () => number;
}

/** Opens this member's session on demand, keeps it alive, and replaces it once it is lost. */
export class EtcdSessions {
  readonly #client: Etcd3;
  readonly #memberId: string;
  readonly #timings: ElectionTimings;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #ttlSeconds: number;
  readonly callTimeout: number;
  /** Time between successful keep-alives: three fit in renewDeadline, failures retry every retryPeriod. */
  readonly #renewInterval: number;
  #current: EtcdSession | undefined;
  #opening: Promise<EtcdSession> | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #lapseTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Set when work of some term may outlive this member's stop: then the lease expires instead of being revoked. */
  keepUntilExpiry = false;

  constructor(options: EtcdSessionsOptions) {
    this.#client = options.client;
    this.#memberId = options.memberId;
    this.#timings = options.timings;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#ttlSeconds = Math.ceil(options.timings.leaseDuration / 1000);
    this.callTimeout = etcdCallTimeout(options.timings);
    this.#renewInterval = Math.max(options.timings.retryPeriod, options.timings.renewDeadline / 3);
  }

  /** The current valid session, or a new one. */
  acquire(): Promise<EtcdSession> {
    if (this.#current?.valid) return Promise.resolve(this.#current);
    this.#opening ??= this.#open().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  async #open(): Promise<EtcdSession> {
    if (this.#closed) throw new Error('the etcd cluster service is stopped');
    const started = this.#now();
    const grant = await this.call('lease grant', (options) => this.#client.leaseClient.leaseGrant({ TTL: this.#ttlSeconds }, options));
    if (Number(grant.TTL) < this.#ttlSeconds) throw new Error(`etcd granted a ${grant.TTL}s lease for ${this.#ttlSeconds}s`);
    const session = new EtcdSession(grant.ID, started + this.#timings.renewDeadline, this.#now);
    if (this.#closed) {
      await this.#revoke(session);
      throw new Error('the etcd cluster service is stopped');
    }
    this.#current = session;
    session.lost.addEventListener('abort', () => this.#onLost(session), { once: true });
    this.#armLapse(session);
    this.#renewTimer = setTimeout(() => void this.#renew(session), this.#renewInterval);
    this.#logger.debug(`Member ${this.#memberId} opened etcd session ${grant.ID}`);
    return session;
  }

  async #renew(session: EtcdSession): Promise<void> {
    this.#renewTimer = undefined;
    if (session.lost.aborted) return;
    const started = this.#now();
    let ok = false;
    try {
      const ttl = await this.call('lease keep-alive', () => this.#keepAliveOnce(session.id));
      if (ttl <= 0) session.lose('its etcd lease expired on the server');
      else if (started >= session.validUntil) session.lose('its etcd lease lapsed before this keep-alive');
      else {
        session.validUntil = started + this.#timings.renewDeadline;
        this.#armLapse(session);
        ok = true;
      }
    } catch (err) {
      this.#logger.debug(maskSecrets(`Keep-alive of etcd session ${session.id} failed: ${message(err)}`));
    }
    if (!session.lost.aborted) this.#renewTimer = setTimeout(() => void this.#renew(session), ok ? this.#renewInterval : this.#timings.retryPeriod);
  }

  #armLapse(session: EtcdSession): void {
    if (this.#lapseTimer) clearTimeout(this.#lapseTimer);
    // Timers run on libuv's cached loop time, which may lag the clock: check, and wait out the rest.
    const check = () => {
      const early = session.validUntil - this.#now();
      if (early > 0) {
        this.#lapseTimer = setTimeout(check, Math.ceil(early) + 1);
        return;
      }
      this.#lapseTimer = undefined;
      session.lose(`its etcd lease could not be kept alive within renewDeadline (${this.#timings.renewDeadline}ms)`);
    };
    this.#lapseTimer = setTimeout(check, Math.max(0, session.validUntil - this.#now()) + 1);
  }

  #onLost(session: EtcdSession): void {
    if (this.#current === session) {
      this.#current = undefined;
      for (const t of [this.#renewTimer, this.#lapseTimer]) if (t) clearTimeout(t);
      this.#renewTimer = this.#lapseTimer = undefined;
    }
    if (this.#closed) return;
    this.#logger.warn(`Member ${this.#memberId} lost its etcd session: ${message(session.lost.reason)}`);
    // Its terms have ended on this member's clock; revoking deletes its keys so others need not wait for the TTL.
    void this.#revoke(session);
  }

  async #keepAliveOnce(id: string): Promise<number> {
    const stream = await this.#client.leaseClient.leaseKeepAlive();
    try {
      return await new Promise<number>((resolve, reject) => {
        stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
        stream.on('error', reject);
        stream.write({ ID: id });
      });
    } finally {
      stream.end();
    }
  }

  async #revoke(session: EtcdSession): Promise<boolean> {
    try {
      await this.call('lease revoke', (options) => this.#client.leaseClient.leaseRevoke({ ID: session.id }, options));
      return true;
    } catch (err) {
      this.#logger.debug(`Could not revoke etcd session ${session.id}: ${message(err)}`);
      return false;
    }
  }

  /**
   * Ends the session: revoked, so every key of this member goes at once, unless some term's work
   * may still run (keepUntilExpiry): then the lease is left to expire after its TTL.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#opening?.catch(() => undefined);
    const session = this.#current;
    this.#current = undefined;
    for (const t of [this.#renewTimer, this.#lapseTimer]) if (t) clearTimeout(t);
    this.#renewTimer = this.#lapseTimer = undefined;
    if (!session) return;
    session.lose('the etcd cluster service stopped');
    if (!this.keepUntilExpiry) await this.#revoke(session);
  }

  /** Runs one etcd call with a deadline, and a timeout that also bounds a call ignoring it. */
  call<T>(what: string, fn: (options: { deadline: Date }) => Promise<T>): Promise<T> {
    return withTimeout(fn({ deadline: new Date(Date.now() + this.callTimeout) }), this.callTimeout, `etcd ${what}`);
  }
}

/** A call's timeout: a few fit in renewDeadline, and it is never shorter than a loaded machine needs. */
export function etcdCallTimeout(timings: ElectionTimings): number {
  return Math.min(timings.renewDeadline / 3, Math.max(timings.retryPeriod, 500));
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
