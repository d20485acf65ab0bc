import type { MessageProperties } from 'amqplib';
import type { Exchange } from '../../exchange/exchange.ts';

/** Exchange headers the amqp component reads and sets (Camel's spring-rabbitmq names). */
export const AmqpHeader = {
  MessageId: 'CamelRabbitmqMessageId',
  RoutingKey: 'CamelRabbitmqRoutingKey',
  ExchangeName: 'CamelRabbitmqExchangeName',
  DeliveryTag: 'CamelRabbitmqDeliveryTag',
  Redelivered: 'CamelRabbitmqRedelivered',
  DeliveryCount: 'CamelRabbitmqDeliveryCount',
  ContentType: 'CamelRabbitmqContentType',
} as const;

const OWN = new Set(Object.values(AmqpHeader).map((h) => h.toLowerCase()));

/** The message body as bytes, and the content type that says how to read them back. */
export function encodeBody(body: unknown, contentType: string | undefined): { content: Buffer; contentType: string } {
  if (Buffer.isBuffer(body)) return { content: body, contentType: contentType ?? 'application/octet-stream' };
  if (body instanceof Uint8Array) return { content: Buffer.from(body.buffer, body.byteOffset, body.byteLength), contentType: contentType ?? 'application/octet-stream' };
  if (typeof body === 'string') return { content: Buffer.from(body, 'utf8'), contentType: contentType ?? 'text/plain; charset=utf-8' };
  if (body === undefined || body === null) return { content: Buffer.alloc(0), contentType: contentType ?? 'application/octet-stream' };
  return { content: Buffer.from(JSON.stringify(body), 'utf8'), contentType: contentType ?? 'application/json' };
}

/** JSON back to a value and text to a string; anything else stays a Buffer. Bad JSON stays text. */
export function decodeBody(content: Buffer, contentType: string | undefined): unknown {
  const type = (contentType ?? '').toLowerCase();
  if (/^application\/([\w.+-]+\+)?json\b/.test(type)) {
    const text = content.toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  if (type.startsWith('text/')) return content.toString('utf8');
  return content;
}

/** Exchange headers that travel as AMQP headers: primitives and dates, never the engine's own Camel* ones. */
export function amqpHeaders(exchange: Exchange): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of exchange.headers) {
    if (OWN.has(name.toLowerCase()) || /^Camel/i.test(name)) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[name] = value;
    else if (value instanceof Date) out[name] = value.toISOString();
  }
  return out;
}

export function messageIdOf(exchange: Exchange): string {
  const fromHeader = exchange.headers.get(AmqpHeader.MessageId);
  return exchange.message.messageId ?? (fromHeader !== undefined && fromHeader !== null ? String(fromHeader) : exchange.id);
}

export function incomingHeaders(properties: MessageProperties): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(properties.headers ?? {})) out[k] = v;
  return out;
}
