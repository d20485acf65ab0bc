import type { MessageProperties } from 'amqplib';
import { encodeBody } from '../../exchange/body-encoding.ts';
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

/**
 * The message body as bytes, and the content type that says how to read them back (the endpoint's
 * `contentType` option wins). A message always has content: no body is zero bytes.
 */
export function encodeMessageBody(body: unknown, contentType: string | undefined): { content: Buffer; contentType: string } {
  const encoded = encodeBody(body);
  return { content: encoded?.data ?? Buffer.alloc(0), contentType: contentType ?? encoded?.contentType ?? 'application/octet-stream' };
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
