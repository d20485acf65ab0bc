/**
 * Every error dromedary raises on purpose. `code` is stable for programs; the message names the thing
 * that is wrong and how to fix it, and never contains a secret (URIs are masked before they get here).
 */
export class DromedaryError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A URI that cannot become an endpoint: bad syntax, unknown scheme, unknown or invalid option. */
export class ResolveEndpointError extends DromedaryError {
  readonly uri: string;

  constructor(maskedUri: string, reason: string, options?: { cause?: unknown }) {
    super('RESOLVE_ENDPOINT', `Failed to resolve endpoint: ${maskedUri} due to: ${reason}`, options);
    this.uri = maskedUri;
  }
}

/** A route definition that cannot be built: bad expression, duplicate id, unbalanced end(). */
export class RouteBuildError extends DromedaryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ROUTE_BUILD', message, options);
  }
}

/** Bad configuration given to the context, a cluster service or the CLI. */
export class ConfigurationError extends DromedaryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIGURATION', message, options);
  }
}

/**
 * Work refused or stopped because this member's leadership term of a lock ended (it lapsed, another
 * member took the lock, or this member gave it up): it must not run on a member that no longer leads.
 */
export class LeadershipLostError extends DromedaryError {
  readonly lock: string;
  readonly memberId: string;
  readonly token: number | undefined;
  /** Why the term ended, without the member and lock. */
  readonly reason: string;

  constructor(lock: string, memberId: string, reason: string, token?: number, options?: { cause?: unknown }) {
    super('LEADERSHIP_LOST', `Member ${memberId} no longer leads ${lock}${token === undefined ? '' : ` (term ${token})`}: ${reason}`, options);
    this.lock = lock;
    this.memberId = memberId;
    this.token = token;
    this.reason = reason;
  }
}

/** A write that would make a lock's leader state larger than its bound (see spi/leader-state.ts). */
export class LeaderStateTooLargeError extends DromedaryError {
  readonly lock: string;
  readonly bytes: number;
  readonly limit: number;

  constructor(lock: string, key: string, bytes: number, limit: number) {
    super(
      'LEADER_STATE_TOO_LARGE',
      `The leader state of lock ${lock} would take ${bytes} bytes with key ${key}, above its limit of ${limit}: ` +
        'keep only a cursor or a timestamp there, and large data in a store of its own',
    );
    this.lock = lock;
    this.bytes = bytes;
    this.limit = limit;
  }
}
