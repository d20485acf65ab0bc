import { DromedaryError } from '../../errors.ts';

/** A response with a status of 300 or more (Camel's HttpOperationFailedException). */
export class HttpOperationFailedError extends DromedaryError {
  readonly statusCode: number;
  readonly statusText: string;
  readonly uri: string;
  readonly redirectLocation: string | undefined;
  readonly responseBody: unknown;
  readonly responseHeaders: Readonly<Record<string, string>>;

  constructor(init: { maskedUri: string; statusCode: number; statusText: string; redirectLocation?: string; responseBody: unknown; responseHeaders: Record<string, string> }) {
    const where = init.redirectLocation ? ` Redirect location: ${init.redirectLocation}` : '';
    super('HTTP_OPERATION_FAILED', `HTTP operation failed invoking ${init.maskedUri} with statusCode: ${init.statusCode} ${init.statusText}.${where}`);
    this.statusCode = init.statusCode;
    this.statusText = init.statusText;
    this.uri = init.maskedUri;
    this.redirectLocation = init.redirectLocation;
    this.responseBody = init.responseBody;
    this.responseHeaders = init.responseHeaders;
  }
}

/** The request got no response: refused, reset, DNS, or it ran past its timeout. */
export class HttpRequestError extends DromedaryError {
  readonly uri: string;
  readonly timedOut: boolean;

  constructor(maskedUri: string, reason: string, timedOut: boolean) {
    super(timedOut ? 'HTTP_TIMEOUT' : 'HTTP_REQUEST', `HTTP request to ${maskedUri} failed: ${reason}`);
    this.uri = maskedUri;
    this.timedOut = timedOut;
  }
}

/** Thrown inside a request that was aborted because its consumer or producer stopped. */
export class HttpAbortedError extends DromedaryError {
  constructor(maskedUri: string) {
    super('HTTP_ABORTED', `HTTP request to ${maskedUri} aborted: the endpoint is stopping`);
  }
}
