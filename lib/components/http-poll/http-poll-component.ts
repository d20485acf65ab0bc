import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import type { OptionValues } from '../../uri/options.ts';
import type { Context } from '../../engine/context.ts';
import type { Processor } from '../../spi/processor.ts';
import { ResolveEndpointError } from '../../errors.ts';
import { tlsOptions } from '../http/tls.ts';
import { HTTP_METHODS } from '../http/http-component.ts';
import { OPTION_PREFIX, resolveTarget } from '../http/target.ts';
import { HttpTargetEndpoint, openTarget, type HttpTargetParts } from '../http/target-endpoint.ts';
import { HttpPollConsumer } from './poll-consumer.ts';
import type { Meter, MeteredEndpoint } from '../../spi/endpoint-meters.ts';

/** Options of http-poll, written `dromedary.<name>` in the URI; everything else goes to the server. */
export const httpPollOptions = {
  method: { type: 'enum', values: HTTP_METHODS, default: 'GET', description: 'the request method' },
  delay: { type: 'duration', default: 1000, min: 0, description: 'wait after a poll finishes before the next one starts (polls never overlap)' },
  initialDelay: { type: 'duration', default: 0, min: 0, description: 'wait before the first poll' },
  jitter: { type: 'number', default: 0.1, min: 0, max: 1, description: 'fraction of each wait added or removed at random' },
  requestTimeout: { type: 'duration', default: 30_000, min: 1, description: 'bound on each request, connecting included; keep it above a long-poll timeout' },
  backoffDelay: { type: 'duration', default: 1000, min: 1, description: 'wait after the first failed poll' },
  backoffMultiplier: { type: 'number', default: 2, min: 1, description: 'factor between the waits of consecutive failures' },
  backoffMax: { type: 'duration', default: 300_000, min: 1, description: 'cap on the backoff wait' },
  split: { type: 'boolean', default: false, description: 'the response is a JSON array: one exchange per item' },
  splitPath: { type: 'string', description: 'one exchange per item of the array at this dot path of the response (result, data.items)' },
  cursorParam: { type: 'string', description: 'query parameter carrying the cursor: the highest item id + 1 (Telegram: offset)' },
  cursorField: { type: 'string', description: 'dot path of the numeric item id the cursor is computed from (Telegram: update_id)' },
  cursorInitial: { type: 'integer', description: 'the cursor of the first poll; default the value in the URL, or none' },
  saveEvery: {
    type: 'integer',
    default: 100,
    min: 1,
    description: 'under master:, the cursor is saved for the next leader after each batch and also after every this many items of a long one',
  },
  conditional: { type: 'boolean', default: true, description: 'send If-None-Match/If-Modified-Since from the last ETag/Last-Modified; a 304 emits nothing' },
  followRedirects: { type: 'boolean', default: false, description: 'follow 3xx redirects (up to 5) instead of treating them as failures' },
  ...tlsOptions,
} as const;

export type HttpPollOptions = OptionValues<typeof httpPollOptions>;

/** The validators of the last successful response, sent back on the next request to the same URL. */
export interface Validators {
  url: string;
  etag: string | undefined;
  lastModified: string | undefined;
}

/** What an endpoint's polling came to, for /metrics: counts since the endpoint was made, and the backoff now. */
export interface PollCounts {
  /** Requests sent, answered or not. */
  polls: number;
  /** Items emitted as exchanges (one per response without split). */
  items: number;
  /** Polls that failed: no answer, a non-2xx status, a response that cannot be split, or an item whose exchange failed. */
  failures: number;
  /** The wait before the next poll that failures imposed (backoff or Retry-After); 0 after a success and while stopped. */
  backoffMs: number;
}

export class HttpPollEndpoint extends HttpTargetEndpoint<typeof httpPollOptions> implements MeteredEndpoint {
  /**
   * The next cursor value. Kept on the endpoint, so a member that leads again resumes where it
   * stopped; under master: it is also saved in the lock's leader state, and a new leader resumes from
   * there (poll-state.ts).
   */
  cursor: number | undefined;
  validators: Validators | undefined;
  readonly counts: PollCounts = { polls: 0, items: 0, failures: 0, backoffMs: 0 };
  readonly meters: readonly Meter[] = [
    { name: 'dromedary_http_poll_requests_total', help: 'Polls (requests) an http-poll endpoint sent, answered or not', label: 'polls', type: 'counter', read: () => this.counts.polls },
    {
      name: 'dromedary_http_poll_items_total',
      help: 'Items an http-poll endpoint emitted as exchanges (one per response without split)',
      label: 'items',
      type: 'counter',
      read: () => this.counts.items,
    },
    {
      name: 'dromedary_http_poll_failures_total',
      help: "Polls of an http-poll endpoint that failed: no answer, a non-2xx status, a response that cannot be split, or an item's exchange failing",
      label: 'failures',
      type: 'counter',
      read: () => this.counts.failures,
    },
    {
      name: 'dromedary_http_poll_backoff_seconds',
      help: 'The wait before the next poll of an http-poll endpoint that failures imposed (backoff or Retry-After); 0 while polls succeed',
      label: 'backoff (s)',
      type: 'gauge',
      read: () => this.counts.backoffMs / 1000,
    },
  ];

  constructor(parsed: ParsedUri, context: Context, parts: HttpTargetParts<typeof httpPollOptions>) {
    super(parsed, context, parts);
    this.cursor = parts.target.options.cursorInitial;
  }

  get options(): HttpPollOptions {
    return this.target.options;
  }

  override createConsumer(processor: Processor): HttpPollConsumer {
    return new HttpPollConsumer(this, processor);
  }
}

/**
 * `http-poll:<target-url>`: polls the URL and turns each response, or each item of an array in it,
 * into an exchange. Consumer only; wrap it in `master:` for APIs that allow one consumer.
 */
export class HttpPollComponent implements Component {
  async createEndpoint(uri: ParsedUri, context: Context): Promise<Endpoint> {
    const targetUrl = `${uri.rawPath}${uri.rawQuery === '' ? '' : `?${uri.rawQuery}`}`;
    if (uri.rawPath === '') throw new ResolveEndpointError(uri.masked, 'expected http-poll:http://host[:port]/path?query, e.g. http-poll:http://127.0.0.1:8081/getUpdates?timeout=0');
    const target = resolveTarget(uri, 'http-poll', targetUrl, httpPollOptions);
    const { cursorParam, cursorField, split, splitPath } = target.options;
    if ((cursorParam === undefined) !== (cursorField === undefined)) {
      throw new ResolveEndpointError(uri.masked, `${OPTION_PREFIX}cursorParam and ${OPTION_PREFIX}cursorField go together: the parameter to send and the item field it is computed from`);
    }
    if (cursorParam !== undefined && !split && splitPath === undefined) {
      throw new ResolveEndpointError(uri.masked, `a cursor is computed from items: add ${OPTION_PREFIX}split=true or ${OPTION_PREFIX}splitPath=<path of the array>`);
    }
    return new HttpPollEndpoint(uri, context, await openTarget(uri, target, httpPollOptions, context.logger));
  }
}
