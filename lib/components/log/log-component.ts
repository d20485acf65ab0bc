import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { resolveOptions, type OptionValues } from '../../uri/options.ts';
import { ResolveEndpointError } from '../../errors.ts';
import type { Context } from '../../engine/context.ts';
import type { Exchange } from '../../exchange/exchange.ts';
import { EndpointSupport, ProducerSupport } from '../../spi/endpoint-support.ts';
import { maskSecrets } from '../../uri/mask.ts';
import type { Logger } from '../../logging/logger.ts';
import { logLevel } from '../../dsl/steps/log.ts';
import { formatExchange } from './exchange-formatter.ts';
import { LOG_MAX_CHARS } from '../../logging/clip.ts';

/** Camel's log component options and defaults. */
export const logOptions = {
  level: { type: 'enum', values: ['error', 'warn', 'info', 'debug', 'trace', 'off'], default: 'info', description: 'logging level' },
  showAll: { type: 'boolean', default: false, description: 'show everything' },
  showBody: { type: 'boolean', default: true, description: 'show the body' },
  showBodyType: { type: 'boolean', default: true, description: 'show the body type' },
  showHeaders: { type: 'boolean', default: false, description: 'show the headers' },
  showProperties: { type: 'boolean', default: false, description: 'show the exchange properties' },
  showExchangeId: { type: 'boolean', default: false, description: 'show the exchange id' },
  showExchangePattern: { type: 'boolean', default: true, description: 'show the exchange pattern' },
  showException: { type: 'boolean', default: false, description: 'show the exception, if any' },
  multiline: { type: 'boolean', default: false, description: 'one field per line' },
  maxChars: { type: 'integer', default: LOG_MAX_CHARS, min: 0, description: 'truncate the body after this many characters (0: no limit)' },
} as const;

export type LogOptions = OptionValues<typeof logOptions>;

export class LogEndpoint extends EndpointSupport {
  readonly logName: string;
  readonly options: LogOptions;

  constructor(parsed: ParsedUri, context: Context, logName: string, options: LogOptions) {
    super(parsed, context);
    this.logName = logName;
    this.options = options;
  }

  override createProducer(): LogProducer {
    return new LogProducer(this);
  }
}

class LogProducer extends ProducerSupport<LogEndpoint> {
  readonly #logger: Logger;
  readonly #level: string | null;

  constructor(endpoint: LogEndpoint) {
    super(endpoint);
    this.#logger = endpoint.context.logger.child({ logger: endpoint.logName });
    this.#level = logLevel(endpoint.options.level);
  }

  process(exchange: Exchange): void {
    if (this.#level === null) return;
    this.#logger.log(this.#level, maskSecrets(formatExchange(exchange, this.endpoint.options)));
  }
}

/** `log:name?level=info&showHeaders=true`: writes a summary of each exchange to the context's logger. */
export class LogComponent implements Component {
  createEndpoint(uri: ParsedUri, context: Context): Endpoint {
    if (uri.path === '') throw new ResolveEndpointError(uri.masked, 'log needs a logger name: log:<name>');
    return new LogEndpoint(uri, context, uri.path, resolveOptions(uri.masked, 'log', logOptions, uri.params));
  }
}
