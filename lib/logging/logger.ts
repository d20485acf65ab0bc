import winston from 'winston';

/**
 * The logger interface library code depends on. A winston Logger satisfies it; library code
 * receives one by injection and never adds transports or formats (that is the application's, or
 * the CLI's, job).
 */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  verbose(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
  log(level: string, message: string, meta?: Record<string, unknown>): unknown;
  child(meta: Record<string, unknown>): Logger;
  isLevelEnabled?(level: string): boolean;
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'verbose', 'debug', 'silly'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** For a context created without a logger: drops everything, so a library user sees no surprise output. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true });
}
