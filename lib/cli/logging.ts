import winston from 'winston';
import { maskSecrets } from '../uri/mask.ts';
import { LOG_LEVELS, type LogLevel } from '../logging/logger.ts';
import { ConfigurationError } from '../errors.ts';

export type LogFormat = 'text' | 'json';

/** Masks secrets in the message and in every string of the metadata: the last line of defence. */
const maskFormat = winston.format((info) => {
  info.message = maskSecrets(String(info.message));
  for (const key of Object.keys(info)) {
    const value = info[key];
    if (typeof value === 'string' && key !== 'level') info[key] = maskSecrets(value);
  }
  return info;
});

/** `2026-11-23T10:00:00.000Z INFO  [route1] Hello World!`, coloured on a TTY. */
function textLine(colour: boolean) {
  return winston.format.printf((info) => {
    const level = info.level.toUpperCase().padEnd(5);
    const shownLevel = colour ? winston.format.colorize().colorize(info.level, level) : level;
    const where = info.route ? `[${String(info.route)}] ` : info.logger ? `[${String(info.logger)}] ` : '';
    const error = info.level === 'error' && typeof info.error === 'string' && process.env.DROMEDARY_LOG_STACKS ? `\n${info.error}` : '';
    return `${String(info.timestamp)} ${shownLevel} ${where}${String(info.message)}${error}`;
  });
}

/** The CLI's logger: the one place in dromedary that configures winston transports. */
export function createCliLogger(options: { format?: string; level?: string; stream?: NodeJS.WritableStream; meta?: Record<string, unknown> }) {
  const format = (options.format ?? process.env.DROMEDARY_LOG_FORMAT ?? 'text').toLowerCase();
  if (format !== 'text' && format !== 'json') {
    throw new ConfigurationError(`unknown log format "${options.format}": use --log-format text or --log-format json (or DROMEDARY_LOG_FORMAT)`);
  }
  const given = (options.level ?? process.env.DROMEDARY_LOG_LEVEL ?? 'info').toLowerCase();
  // `trace` is Camel's name (and .log()'s) for winston's `silly`.
  const level = given === 'trace' ? 'silly' : given;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    const source = options.level === undefined ? 'DROMEDARY_LOG_LEVEL' : '--log-level';
    throw new ConfigurationError(`unknown log level "${given}" (${source}): use one of ${[...LOG_LEVELS.slice(0, -1), 'trace', 'silly'].join(', ')}`);
  }
  const stream = options.stream ?? process.stdout;
  const colour = format === 'text' && (stream as NodeJS.WriteStream).isTTY === true && !process.env.NO_COLOR;
  return winston.createLogger({
    level: level as LogLevel,
    defaultMeta: options.meta,
    format: winston.format.combine(
      maskFormat(),
      winston.format.timestamp(),
      format === 'json' ? winston.format.json() : textLine(colour),
    ),
    transports: [new winston.transports.Stream({ stream })],
  });
}
