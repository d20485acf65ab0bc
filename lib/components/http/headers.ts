import type { Exchange } from '../../exchange/exchange.ts';

/** Exchange headers the http components read and set (Camel's names). */
export const HttpHeader = {
  Method: 'CamelHttpMethod',
  Uri: 'CamelHttpUri',
  Path: 'CamelHttpPath',
  Query: 'CamelHttpQuery',
  ResponseCode: 'CamelHttpResponseCode',
  ResponseText: 'CamelHttpResponseText',
} as const;

/** Set by the transport, or meaningless on another hop: never copied from the exchange onto a request. */
const HOP_BY_HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'te', 'trailer', 'proxy-connection', 'expect']);

/**
 * The exchange headers sent with a request: primitives and dates, never the engine's Camel* ones
 * nor hop-by-hop headers (Camel's HttpHeaderFilterStrategy, simplified).
 */
export function requestHeaders(exchange: Exchange): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of exchange.headers) {
    if (/^Camel/i.test(name) || HOP_BY_HOP.has(name.toLowerCase())) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[name] = String(value);
    else if (value instanceof Date) out[name] = value.toUTCString();
  }
  return out;
}
