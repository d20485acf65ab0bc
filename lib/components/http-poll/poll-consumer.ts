import { setTimeout as sleep } from 'node:timers/promises';
import { Exchange, ExchangeProperty } from '../../exchange/exchange.ts';
import type { Logger } from '../../logging/logger.ts';
import { ConsumerSupport } from '../../spi/endpoint-support.ts';
import type { Processor } from '../../spi/processor.ts';
import { formatDuration } from '../../uri/duration.ts';
import { decodeResponseBody } from '../http/body.ts';
import type { HttpResponse } from '../http/client.ts';
import { HttpAbortedError } from '../http/errors.ts';
import { HttpHeader } from '../http/headers.ts';
import { LeadershipLostError } from '../../errors.ts';
import type { JsonValue, LeaderStateSlot } from '../../spi/leader-state.ts';
import type { HttpPollEndpoint } from './http-poll-component.ts';
import { decodePollState, encodePollState, partialCursor, pollUrl, type PollState } from './poll-state.ts';
import { backoff, jittered, parseRetryAfter } from './schedule.ts';

/**
 * One poll at a time: request, emit the items in order, one exchange at a time, then wait. The
 * cursor and the conditional-GET validators move only when every item's exchange succeeded, so a
 * failed item is asked for again (at-least-once). Stopping aborts the request in flight at once.
 */
export class HttpPollConsumer extends ConsumerSupport<HttpPollEndpoint> {
  #stop: AbortController | undefined;
  #failures = 0;
  #polls = 0;
  /** Under master:, this term's key of the lock's leader state, and the JSON last saved there. */
  #slot: LeaderStateSlot | undefined;
  #saved: string | undefined;
  /** The highest cursor saved this term: a batch asked for again does not save its earlier items again. */
  #savedCursor = -Infinity;
  /** Whether the last save failed on a store error: warned once, until a save succeeds again. */
  #saveFailing = false;
  readonly #logger: Logger;

  constructor(endpoint: HttpPollEndpoint, processor: Processor) {
    super(endpoint, processor);
    this.#logger = endpoint.context.logger.child({ endpoint: endpoint.maskedUri });
  }

  /** Requests sent since start, answered or not. */
  get polls(): number {
    return this.#polls;
  }

  /** Consecutive failed polls (0 after a success). */
  get failures(): number {
    return this.#failures;
  }

  /** Under master: continue from the cursor and validators the previous leader saved. */
  resumeFrom(slot: LeaderStateSlot): void {
    this.#slot = slot;
    if (slot.saved === undefined) return;
    this.#saved = JSON.stringify(slot.saved);
    const state = decodePollState(this.endpoint, slot.saved);
    if (typeof state === 'string') {
      this.#logger.warn(`Ignoring the poll state saved for ${this.endpoint.maskedUri} (${state}); starting from the URL`);
      return;
    }
    this.endpoint.cursor = state.cursor;
    this.endpoint.validators = state.validators;
    this.#logger.info(`Resuming ${this.endpoint.maskedUri} from the leader state: ${state.cursor === undefined ? 'no cursor' : `cursor ${state.cursor}`}`);
  }

  protected doStart(): void {
    const stop = new AbortController();
    this.#stop = stop;
    this.#failures = 0;
    this.endpoint.counts.backoffMs = 0;
    void this.#run(stop.signal);
  }

  protected doStop(): void {
    this.#stop?.abort();
    this.#stop = undefined;
    this.endpoint.counts.backoffMs = 0;
  }

  async #run(signal: AbortSignal): Promise<void> {
    try {
      const { initialDelay } = this.endpoint.options;
      if (initialDelay > 0) await sleep(initialDelay, undefined, { signal });
      while (!signal.aborted) {
        let wait: number;
        try {
          wait = await this.#poll(signal);
        } catch (err) {
          wait = this.#failed(this.endpoint.maskedUri, describe(err));
        }
        if (signal.aborted) return;
        await sleep(wait, undefined, { signal });
      }
    } catch (err) {
      if (!signal.aborted) this.#logger.error(this.endpoint.redactor.redact(`Polling ${this.endpoint.maskedUri} stopped on an unexpected error: ${describe(err)}`));
    }
  }

  /** One poll; returns how long to wait before the next. */
  async #poll(signal: AbortSignal): Promise<number> {
    const { endpoint } = this;
    const { target, options, redactor } = endpoint;
    const cursor = endpoint.cursor;
    const url = pollUrl(endpoint, cursor);
    const maskedUrl = redactor.redact(url);
    const headers = { ...target.headers };
    const validators = options.conditional && endpoint.validators?.url === url ? endpoint.validators : undefined;
    if (validators?.etag) headers['If-None-Match'] = validators.etag;
    if (validators?.lastModified) headers['If-Modified-Since'] = validators.lastModified;

    let response: HttpResponse;
    this.#polls += 1;
    endpoint.counts.polls += 1;
    try {
      response = await endpoint.client.send({ method: options.method, url, headers, timeout: options.requestTimeout, stop: signal }, maskedUrl);
    } catch (err) {
      if (err instanceof HttpAbortedError || signal.aborted) return 0;
      return this.#failed(maskedUrl, describe(err));
    }
    const { status } = response;
    if (status === 304) {
      this.#succeeded(maskedUrl);
      this.#logger.debug(`${maskedUrl}: 304 Not Modified, nothing to emit`);
      return jittered(options.delay, options.jitter);
    }
    if (status < 200 || status >= 300) {
      const retryAfter = status === 429 || status === 503 ? parseRetryAfter(response.headers['retry-after']) : undefined;
      return this.#failed(maskedUrl, `HTTP ${status} ${response.statusText}`.trim(), retryAfter);
    }

    const body = decodeResponseBody(response.data, response.headers['content-type']);
    const items = this.#items(body);
    if (typeof items === 'string') return this.#failed(maskedUrl, items);
    const ids = this.#ids(items);
    if (typeof ids === 'string') return this.#failed(maskedUrl, ids);

    for (let i = 0; i < items.length; i += 1) {
      if (signal.aborted) return 0;
      const exchange = new Exchange({ fromEndpoint: endpoint.maskedUri, body: items[i] });
      exchange.headers.set(HttpHeader.ResponseCode, status);
      exchange.headers.set(HttpHeader.Uri, maskedUrl);
      if (this.#splitting) {
        exchange.properties.set(ExchangeProperty.SplitIndex, i);
        exchange.properties.set(ExchangeProperty.SplitSize, items.length);
        exchange.properties.set(ExchangeProperty.SplitComplete, i === items.length - 1);
      }
      endpoint.counts.items += 1;
      await this.processor(exchange);
      if (exchange.exception) {
        const where = cursor === undefined ? 'the cursor has not moved' : `the cursor stays at ${cursor}`;
        return this.#failed(maskedUrl, `item ${i + 1} of ${items.length} failed (${exchange.exception.message}); ${where}, so the next poll asks for these items again`);
      }
      // A long batch also saves its progress on the way, so a crash replays at most saveEvery items; not awaited: writes coalesce.
      if (this.#slot && (i + 1) % options.saveEvery === 0 && i + 1 < items.length) {
        const partial = partialCursor(ids, i + 1);
        if (partial !== undefined && partial > Math.max(cursor ?? -Infinity, this.#savedCursor)) void this.#save({ cursor: partial, validators: undefined });
      }
    }

    // Every exchange succeeded: only now may the server be told (through the cursor) they are done.
    if (ids.length > 0) {
      const next = Math.max(...ids) + 1;
      if (endpoint.cursor === undefined || next > endpoint.cursor) endpoint.cursor = next;
    }
    const etag = response.headers['etag'];
    const lastModified = response.headers['last-modified'];
    endpoint.validators = options.conditional && (etag || lastModified) ? { url, etag, lastModified } : undefined;
    this.#succeeded(maskedUrl);
    // Saved before the next poll, so a new leader replays at most this batch.
    if (this.#slot) await this.#save({ cursor: endpoint.cursor, validators: endpoint.validators });
    return jittered(options.delay, options.jitter);
  }

  /** Saves `state` in the leader state when it changed; a failed save is logged, and polling goes on. */
  async #save(state: PollState): Promise<void> {
    const slot = this.#slot!;
    const value: JsonValue = encodePollState(this.endpoint, state);
    const json = JSON.stringify(value);
    if (json === this.#saved) return;
    this.#saved = json;
    if (state.cursor !== undefined) this.#savedCursor = Math.max(this.#savedCursor, state.cursor);
    try {
      await slot.save(value);
      if (this.#saveFailing) this.#logger.info(`Saving the poll state of ${this.endpoint.maskedUri} works again`);
      this.#saveFailing = false;
    } catch (err) {
      if (this.#saved === json) this.#saved = undefined;
      const message = this.endpoint.redactor.redact(`Could not save the poll state of ${this.endpoint.maskedUri} for the next leader (${describe(err)}); polling goes on, and each poll tries again`);
      // A deposed leader's write is refused by design (the master: consumer is stopping this poller); a store outage is told once.
      if (err instanceof LeadershipLostError || this.#saveFailing) this.#logger.debug(message);
      else this.#logger.warn(message);
      if (!(err instanceof LeadershipLostError)) this.#saveFailing = true;
    }
  }

  get #splitting(): boolean {
    const { split, splitPath } = this.endpoint.options;
    return split || splitPath !== undefined;
  }

  /** The values to emit, or why the response cannot be split. */
  #items(body: unknown): unknown[] | string {
    const { splitPath } = this.endpoint.options;
    if (!this.#splitting) return body === undefined ? [] : [body];
    const array = splitPath === undefined ? body : readPath(body, splitPath);
    if (Array.isArray(array)) return array;
    const what = splitPath === undefined ? 'the response' : `"${splitPath}" in the response`;
    return `expected ${what} to be a JSON array, got ${array === null ? 'null' : Buffer.isBuffer(array) ? 'bytes' : typeof array}`;
  }

  /** The cursor ids of the items (empty without a cursor), or why one is missing; checked before any item is emitted. */
  #ids(items: unknown[]): number[] | string {
    const { cursorField } = this.endpoint.options;
    if (cursorField === undefined) return [];
    const ids: number[] = [];
    for (const [i, item] of items.entries()) {
      const id = readPath(item, cursorField);
      const n = typeof id === 'string' && id.trim() !== '' ? Number(id) : id;
      if (typeof n !== 'number' || !Number.isFinite(n)) return `item ${i + 1} has no numeric "${cursorField}" to compute the cursor from`;
      ids.push(n);
    }
    return ids;
  }

  #failed(maskedUrl: string, reason: string, retryAfter?: number): number {
    this.#failures += 1;
    const wait = retryAfter ?? backoff(this.#failures, this.endpoint.options);
    this.endpoint.counts.failures += 1;
    this.endpoint.counts.backoffMs = wait;
    const why = retryAfter === undefined ? 'backing off' : 'as the server asked (Retry-After)';
    this.#logger.warn(this.endpoint.redactor.redact(`Poll of ${maskedUrl} failed (${this.#failures} in a row): ${reason}. Next poll in ${formatDuration(wait)}, ${why}`));
    return wait;
  }

  #succeeded(maskedUrl: string): void {
    if (this.#failures > 0) this.#logger.info(this.endpoint.redactor.redact(`Poll of ${maskedUrl} succeeded again after ${this.#failures} failure(s)`));
    this.#failures = 0;
    this.endpoint.counts.backoffMs = 0;
  }
}

/** `a.b[2].c` into a value; undefined when any step is missing. */
export function readPath(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split('.').flatMap((p) => p.split(/\[(\d+)\]/).filter((s) => s !== ''))) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
