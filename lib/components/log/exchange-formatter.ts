import type { Exchange } from '../../exchange/exchange.ts';
import { clip } from '../../logging/clip.ts';

export interface FormatOptions {
  showAll: boolean;
  showBody: boolean;
  showBodyType: boolean;
  showHeaders: boolean;
  showProperties: boolean;
  showExchangeId: boolean;
  showExchangePattern: boolean;
  showException: boolean;
  multiline: boolean;
  maxChars: number;
}

/** Camel's `Exchange[ExchangePattern: InOnly, BodyType: String, Body: hello]` summary. */
export function formatExchange(exchange: Exchange, options: FormatOptions): string {
  const all = options.showAll;
  const fields: string[] = [];
  if (all || options.showExchangeId) fields.push(`Id: ${exchange.id}`);
  if (all || options.showExchangePattern) fields.push(`ExchangePattern: ${exchange.pattern}`);
  if (all || options.showProperties) fields.push(`Properties: ${stringify(Object.fromEntries(exchange.properties))}`);
  if (all || options.showHeaders) fields.push(`Headers: ${stringify(exchange.message.headers.toObject())}`);
  if (all || options.showBodyType) fields.push(`BodyType: ${typeName(exchange.message.body)}`);
  if (all || options.showBody) fields.push(`Body: ${clip(bodyText(exchange.message.body), options.maxChars, 'Body')}`);
  if ((all || options.showException) && exchange.exception) fields.push(`Exception: ${exchange.exception.name}: ${exchange.exception.message}`);
  return options.multiline ? `Exchange[\n  ${fields.join('\n  ')}\n]` : `Exchange[${fields.join(', ')}]`;
}

function typeName(body: unknown): string {
  if (body === null || body === undefined) return 'null';
  if (Buffer.isBuffer(body)) return 'Buffer';
  if (Array.isArray(body)) return 'Array';
  if (typeof body === 'object') return body.constructor?.name ?? 'Object';
  return typeof body === 'string' ? 'String' : typeof body === 'number' ? 'Number' : typeof body === 'boolean' ? 'Boolean' : typeof body;
}

function bodyText(body: unknown): string {
  if (body === null || body === undefined) return '[Body is null]';
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return stringify(body);
}

function stringify(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

