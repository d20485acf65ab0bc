import type { Logger } from '../../logging/logger.ts';
import type { ElectionTimings } from '../election/timings.ts';
import { withTimeout } from '../campaign/campaign.ts';
import { ZkClient, type ZkModule } from './zk-client.ts';
import { ServerSession } from '../campaign/session.ts';

/**
 * One ZooKeeper session of this member, shared by its locks. ZooKeeper expires a session no sooner
 * than its negotiated timeout (leaseDuration) after it last heard from the client. The session is
 * valid, on this member's monotonic clock, until the start of its last successful request plus
 * renewDeadline, which is earlier: so while the connection is suspended (no answer) the member
 * steps down renewDeadline after its last answered request, before ZooKeeper can expire the session
 * and delete its nodes. A lapsed session is closed, never revived: the next term has new nodes.
 */
export class ZkSession extends ServerSession {
  readonly client: ZkClient;

  constructor(client: ZkClient, validUntil: number, now: () => number) {
    super(validUntil, now, 'ZooKeeper did not answer within renewDeadline (the session was suspended too long)');
    this.client = client;
  }
}

export interface ZkSessionsOptions {
  zk: ZkModule;
  connectString: string;
  memberId: string;
  timings: ElectionTimings;
  logger: Logger;
  now?: () => number;
}

/** Opens this member's session on demand, checks it every renewDeadline/3, and replaces it once lost. */
export class ZkSessions {
  readonly #options: ZkSessionsOptions;
  readonly #now: () => number;
  readonly callTimeout: number;
  readonly #interval: number;
  #current: ZkSession | undefined;
  #opening: Promise<ZkSession> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lapseTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Set when work of some term may outlive this member's stop: its nodes then stay until leaseDuration has passed. */
  keepUntilExpiry = false;

  constructor(options: ZkSessionsOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    const { timings } = options;
    this.callTimeout = Math.min(timings.renewDeadline / 3, Math.max(timings.retryPeriod, 500));
    this.#interval = Math.max(timings.retryPeriod, timings.renewDeadline / 3);
  }

  /** The current valid session, or the one being opened; a caller waits at most callTimeout, the opening goes on. */
  acquire(): Promise<ZkSession> {
    if (this.#current?.valid) return Promise.resolve(this.#current);
    this.#opening ??= this.#open().finally(() => (this.#opening = undefined));
    return withTimeout(this.#opening, this.callTimeout, 'zookeeper connect');
  }

  async #open(): Promise<ZkSession> {
    if (this.#closed) throw new Error('the zookeeper cluster service is stopped');
    const { timings, zk, connectString, logger, memberId } = this.#options;
    const client = await ZkClient.connect(zk, connectString, timings.leaseDuration, this.callTimeout, Math.min(timings.retryPeriod, 1000));
    // The session's validity starts from an answered request, not from a connect that may have waited long.
    const started = this.#now();
    await client.created('/');
    // The server may clamp the timeout to its tickTime bounds; below renewDeadline it would be unsafe.
    if (client.sessionTimeout <= timings.renewDeadline) {
      client.close();
      throw new Error(
        `ZooKeeper granted a ${client.sessionTimeout}ms session for ${timings.leaseDuration}ms: it must exceed renewDeadline (${timings.renewDeadline}ms); raise the server's minSessionTimeout or the lease timings`,
      );
    }
    const session = new ZkSession(client, started + timings.renewDeadline, this.#now);
    if (this.#closed) {
      client.close();
      throw new Error('the zookeeper cluster service is stopped');
    }
    client.on('expired', () => session.lose('ZooKeeper expired the session'));
    this.#current = session;
    session.lost.addEventListener(
      'abort',
      () => {
        if (this.#current === session) {
          this.#current = undefined;
          this.#clearTimers();
        }
        if (!this.#closed) logger.warn(`Member ${memberId} lost its ZooKeeper session: ${(session.lost.reason as Error).message}`);
        // Its terms have ended on this member's clock; closing deletes its nodes so others need not wait.
        client.close();
      },
      { once: true },
    );
    this.#armLapse(session);
    this.#timer = setTimeout(() => void this.#check(session), this.#interval);
    return session;
  }

  /** One answered request moves the validity on; a request that began after it lapsed cannot. */
  async #check(session: ZkSession): Promise<void> {
    this.#timer = undefined;
    if (session.lost.aborted) return;
    const started = this.#now();
    let ok = false;
    try {
      await session.client.created('/');
      if (started >= session.validUntil) session.lose('ZooKeeper answered only after renewDeadline');
      else {
        session.validUntil = started + this.#options.timings.renewDeadline;
        this.#armLapse(session);
        ok = true;
      }
    } catch {
      // Suspended: the next check comes after retryPeriod, and the lapse timer ends the session in time.
    }
    if (!session.lost.aborted) this.#timer = setTimeout(() => void this.#check(session), ok ? this.#interval : this.#options.timings.retryPeriod);
  }

  #armLapse(session: ZkSession): void {
    if (this.#lapseTimer) clearTimeout(this.#lapseTimer);
    const check = () => {
      const early = session.validUntil - this.#now();
      if (early > 0) {
        this.#lapseTimer = setTimeout(check, Math.ceil(early) + 1);
        return;
      }
      this.#lapseTimer = undefined;
      session.lose(`ZooKeeper did not answer within renewDeadline (${this.#options.timings.renewDeadline}ms): the session was suspended too long`);
    };
    this.#lapseTimer = setTimeout(check, Math.max(0, session.validUntil - this.#now()) + 1);
  }

  #clearTimers(): void {
    for (const t of [this.#timer, this.#lapseTimer]) if (t) clearTimeout(t);
    this.#timer = this.#lapseTimer = undefined;
  }

  /** Closes the session (its nodes go at once) unless some term's work may still run: then after leaseDuration. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#opening?.catch(() => undefined);
    const session = this.#current;
    this.#current = undefined;
    this.#clearTimers();
    if (!session) return;
    if (this.keepUntilExpiry) {
      setTimeout(() => session.lose('the zookeeper cluster service stopped'), this.#options.timings.leaseDuration);
      return;
    }
    session.lose('the zookeeper cluster service stopped');
  }
}
