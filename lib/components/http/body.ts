/** Request and response bodies of the http components: the shared body encoding, where an empty body is none. */
import { decodeBody, encodeBody } from '../../exchange/body-encoding.ts';

export interface EncodedRequestBody {
  data: Buffer | undefined;
  contentType: string | undefined;
}

/** A null or undefined body sends no body and no content type. */
export function encodeRequestBody(body: unknown): EncodedRequestBody {
  return encodeBody(body) ?? { data: undefined, contentType: undefined };
}

/** An empty response is an undefined body; otherwise decoded by its content type. */
export function decodeResponseBody(data: Buffer, contentType: string | undefined): unknown {
  return data.length === 0 ? undefined : decodeBody(data, contentType);
}
