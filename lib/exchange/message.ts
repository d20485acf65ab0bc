import { Headers } from './headers.ts';

export class Message {
  body: unknown;
  headers: Headers;
  /** Set by transports that carry one (amqp messageId, http request id); otherwise undefined. */
  messageId: string | undefined;

  constructor(body?: unknown, headers?: Headers | Record<string, unknown>) {
    this.body = body;
    this.headers = headers instanceof Headers ? headers : new Headers(headers);
    this.messageId = undefined;
  }

  getHeader<T = unknown>(name: string): T | undefined {
    return this.headers.get<T>(name);
  }

  setHeader(name: string, value: unknown): this {
    this.headers.set(name, value);
    return this;
  }

  copy(): Message {
    const copy = new Message(this.body, this.headers.copy());
    copy.messageId = this.messageId;
    return copy;
  }
}
