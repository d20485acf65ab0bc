/** Request bodies by type, and response bodies by content type: the http components' only conversions. */

export interface EncodedBody {
  data: Buffer | undefined;
  contentType: string | undefined;
}

/** Strings as text, bytes as bytes, null/undefined as no body, anything else as JSON. */
export function encodeRequestBody(body: unknown): EncodedBody {
  if (body === undefined || body === null) return { data: undefined, contentType: undefined };
  if (Buffer.isBuffer(body)) return { data: body, contentType: 'application/octet-stream' };
  if (body instanceof Uint8Array) return { data: Buffer.from(body.buffer, body.byteOffset, body.byteLength), contentType: 'application/octet-stream' };
  if (typeof body === 'string') return { data: Buffer.from(body, 'utf8'), contentType: 'text/plain; charset=utf-8' };
  return { data: Buffer.from(JSON.stringify(body), 'utf8'), contentType: 'application/json' };
}

/** JSON becomes a value (malformed JSON stays text), text a string, anything else a Buffer; empty is undefined. */
export function decodeResponseBody(data: Buffer, contentType: string | undefined): unknown {
  if (data.length === 0) return undefined;
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
