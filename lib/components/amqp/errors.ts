import { DromedaryError } from '../../errors.ts';
import { maskSecrets } from '../../uri/mask.ts';

/** The broker cannot be reached (refused, timed out, DNS), or the connection went away for good. */
export class AmqpConnectError extends DromedaryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP_CONNECT', maskSecrets(message), options);
  }
}

/** The broker refused the login (ACCESS_REFUSED) or the virtual host (NOT_ALLOWED). */
export class AmqpAuthError extends DromedaryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP_AUTH', maskSecrets(message), options);
  }
}

/** A send that did not end in a broker confirm: nacked, unroutable, channel error, or timed out. */
export class AmqpSendError extends DromedaryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP_SEND', maskSecrets(message), options);
  }
}

/** A queue or exchange declaration the broker rejected (usually: it exists with other arguments). */
export class AmqpTopologyError extends DromedaryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP_TOPOLOGY', maskSecrets(message), options);
  }
}

/** The text of an amqplib error without secrets, for wrapping into ours. */
export function describe(err: unknown): string {
  return maskSecrets(err instanceof Error ? err.message : String(err));
}

/** True for a refused login or vhost: retrying the same credentials cannot help. */
export function isAuthFailure(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /ACCESS[_-]REFUSED|NOT[_-]ALLOWED|\b403\b|\b530\b/.test(text);
}
