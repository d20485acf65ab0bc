import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import type { OptionValues } from '../../uri/options.ts';
import type { Context } from '../../engine/context.ts';
import type { Exchange } from '../../exchange/exchange.ts';
import { ProducerSupport } from '../../spi/endpoint-support.ts';
import { ResolveEndpointError } from '../../errors.ts';
import { decodeResponseBody, encodeRequestBody } from './body.ts';
import { tlsOptions } from './tls.ts';
import { HttpOperationFailedError } from './errors.ts';
import { HttpHeader, requestHeaders } from './headers.ts';
import { buildUrl, resolveTarget } from './target.ts';
import { HttpTargetEndpoint, openTarget } from './target-endpoint.ts';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/** Options of the http/https producer, written `dromedary.<name>` in the URI. */
export const httpOptions = {
  method: { type: 'enum', values: HTTP_METHODS, description: 'the method; default the CamelHttpMethod header, else POST with a body and GET without' },
  throwExceptionOnFailure: { type: 'boolean', default: true, description: 'a status of 300 or more fails the exchange with HttpOperationFailedError' },
  requestTimeout: { type: 'duration', default: 30_000, min: 1, description: 'bound on the whole request, connecting included' },
  followRedirects: { type: 'boolean', default: false, description: 'follow 3xx redirects (up to 5) instead of treating them as failures' },
  ...tlsOptions,
} as const;

export type HttpOptions = OptionValues<typeof httpOptions>;

export class HttpEndpoint extends HttpTargetEndpoint<typeof httpOptions> {
  override createProducer(): HttpProducer {
    return new HttpProducer(this);
  }
}

/**
 * Sends the exchange as a request and puts the response in its place: the body, the response
 * headers, CamelHttpResponseCode and CamelHttpResponseText.
 */
export class HttpProducer extends ProducerSupport<HttpEndpoint> {
  #stop = new AbortController();

  protected override doStart(): void {
    this.#stop = new AbortController();
  }

  protected override doStop(): void {
    this.#stop.abort();
  }

  async process(exchange: Exchange): Promise<void> {
    const { target, client, redactor } = this.endpoint;
    const { options } = target;
    const url = this.#url(exchange);
    const maskedUrl = redactor.redact(url);
    const headerMethod = exchange.headers.get(HttpHeader.Method);
    const method = (options.method ?? (typeof headerMethod === 'string' && headerMethod !== '' ? headerMethod.toUpperCase() : undefined)) ?? (exchange.body == null ? 'GET' : 'POST');
    const body = method === 'GET' || method === 'HEAD' ? { data: undefined, contentType: undefined } : encodeRequestBody(exchange.body);
    const headers = { ...requestHeaders(exchange), ...target.headers };
    if (body.contentType && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = body.contentType;
    const response = await client.send({ method, url, headers, data: body.data, timeout: options.requestTimeout, stop: this.#stop.signal }, maskedUrl);
    const responseBody = decodeResponseBody(response.data, response.headers['content-type']);
    if (response.status >= 300 && options.throwExceptionOnFailure) {
      throw new HttpOperationFailedError({
        maskedUri: maskedUrl,
        statusCode: response.status,
        statusText: response.statusText,
        redirectLocation: response.status < 400 && response.headers['location'] ? redactor.redact(response.headers['location']) : undefined,
        responseBody,
        responseHeaders: response.headers,
      });
    }
    exchange.body = responseBody;
    for (const [name, value] of Object.entries(response.headers)) exchange.headers.set(name, value);
    exchange.headers.set(HttpHeader.ResponseCode, response.status);
    exchange.headers.set(HttpHeader.ResponseText, response.statusText);
  }

  /** The endpoint's URL, unless CamelHttpUri replaces it, CamelHttpPath extends its path or CamelHttpQuery replaces its query. */
  #url(exchange: Exchange): string {
    const { target } = this.endpoint;
    const uri = exchange.headers.get(HttpHeader.Uri);
    const path = exchange.headers.get(HttpHeader.Path);
    const query = exchange.headers.get(HttpHeader.Query);
    let base = typeof uri === 'string' && uri !== '' ? uri.split('?')[0]! : target.base;
    if (typeof path === 'string' && path !== '') base = `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
    const pairs = typeof query === 'string' ? query.split('&').filter((p) => p !== '') : typeof uri === 'string' && uri.includes('?') ? uri.slice(uri.indexOf('?') + 1).split('&') : target.query;
    return buildUrl(base, pairs);
  }
}

/**
 * `http://host/path?query` and `https://…` (producer only, like Camel's http component). Options
 * of ours are written `dromedary.<name>`; every other query parameter goes to the server as written.
 */
export class HttpComponent implements Component {
  async createEndpoint(uri: ParsedUri, context: Context): Promise<Endpoint> {
    const targetUrl = `${uri.scheme}://${uri.rawPath}${uri.rawQuery === '' ? '' : `?${uri.rawQuery}`}`;
    if (uri.rawPath === '') throw new ResolveEndpointError(uri.masked, `expected ${uri.scheme}://host[:port]/path`);
    const target = resolveTarget(uri, uri.scheme, targetUrl, httpOptions);
    return new HttpEndpoint(uri, context, await openTarget(uri, target, httpOptions, context.logger));
  }
}
