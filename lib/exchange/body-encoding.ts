/**
 * A message body as bytes on the wire and back, by content type: what the http and amqp components
 * both do when a body leaves or enters the process.
 */

export interface EncodedBody {
  data: Buffer;
  /** The content type the bytes are read back by. */
  contentType: string;
}

/** Bytes as bytes, strings as UTF-8 text, anything else as JSON; null and undefined are no body at all. */
export function encodeBody(body: unknown): EncodedBody | undefined {
  if (body === undefined || body === null) return undefined;
  if (Buffer.isBuffer(body)) return { data: body, contentType: 'application/octet-stream' };
  if (body instanceof Uint8Array) return { data: Buffer.from(body.buffer, body.byteOffset, body.byteLength), contentType: 'application/octet-stream' };
  if (typeof body === 'string') return { data: Buffer.from(body, 'utf8'), contentType: 'text/plain; charset=utf-8' };
  return { data: Buffer.from(JSON.stringify(body), 'utf8'), contentType: 'application/json' };
}

/**
 * JSON (including `+json` types) becomes a value, and malformed JSON stays text. Text is a string:
 * `text/*`, XML (including `+xml`) and form-urlencoded bodies. Anything else stays a Buffer.
 */
export function decodeBody(data: Buffer, contentType: string | undefined): unknown {
  const type = (contentType ?? '').toLowerCase();
  if (/^application\/([\w.+-]+\+)?json\b/.test(type)) {
    const text = data.toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  if (type.startsWith('text/') || /^application\/([\w.+-]+\+)?xml\b/.test(type) || type.startsWith('application/x-www-form-urlencoded')) {
    return data.toString('utf8');
  }
  return data;
}
