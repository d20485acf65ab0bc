import type { Context } from '../../engine/context.ts';
import type { Logger } from '../../logging/logger.ts';
import { EndpointSupport } from '../../spi/endpoint-support.ts';
import type { OptionSchema } from '../../uri/options.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { HttpClient } from './client.ts';
import { createHttpsAgent } from './tls.ts';
import { OPTION_PREFIX, Redactor, shadowedOptions, type HttpTarget } from './target.ts';

/** What an endpoint of `http:`, `https:` or `http-poll:` is built from. */
export interface HttpTargetParts<S extends OptionSchema> {
  readonly target: HttpTarget<S>;
  readonly client: HttpClient;
  readonly redactor: Redactor;
}

/** The options every http endpoint has, whatever else its schema holds. */
interface TransportOptions {
  followRedirects: boolean;
  caFile?: string;
  rejectUnauthorized: boolean;
}

/**
 * Everything an endpoint needs besides its resolved target, made once at startup: the redactor for
 * its text, a warning for each server parameter named like one of our options, and the client
 * (with the https agent its TLS options call for).
 */
export async function openTarget<S extends OptionSchema>(
  uri: ParsedUri,
  target: HttpTarget<S> & { readonly options: TransportOptions },
  schema: S,
  logger: Logger,
): Promise<HttpTargetParts<S>> {
  const redactor = new Redactor(target.secrets, uri.placeholders);
  for (const name of shadowedOptions(target.query, schema)) {
    logger.warn(`${uri.masked}: the query parameter "${redactor.redact(name)}" is sent to the server; the component option is written ${OPTION_PREFIX}${name}`);
  }
  const httpsAgent = await createHttpsAgent(uri, target.options, logger);
  const client = await HttpClient.create({ followRedirects: target.options.followRedirects, redactor, httpsAgent, envHeaders: target.envHeaders });
  return { target, client, redactor };
}

/** Base of the http endpoints: holds the target, its client and the redactor for text about it. */
export abstract class HttpTargetEndpoint<S extends OptionSchema> extends EndpointSupport {
  readonly target: HttpTarget<S>;
  readonly client: HttpClient;
  readonly redactor: Redactor;

  constructor(parsed: ParsedUri, context: Context, parts: HttpTargetParts<S>) {
    super(parsed, context);
    this.target = parts.target;
    this.client = parts.client;
    this.redactor = parts.redactor;
  }
}
