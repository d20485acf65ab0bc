import Transport from 'winston-transport';
import winston from 'winston';

export interface CapturedLine {
  level: string;
  message: string;
  meta: Record<string, unknown>;
}

/** A real winston logger whose lines are kept in memory, so tests can assert on what was logged. */
export function captureLogger(level = 'silly'): { logger: winston.Logger; lines: CapturedLine[]; messages: () => string[] } {
  const lines: CapturedLine[] = [];
  class Memory extends Transport {
    override log(info: Record<string | symbol, unknown>, next: () => void): void {
      const { level: l, message, ...meta } = info;
      lines.push({ level: String(l), message: String(message), meta: meta as Record<string, unknown> });
      next();
    }
  }
  const logger = winston.createLogger({ level, transports: [new Memory()] });
  return { logger, lines, messages: () => lines.map((l) => l.message) };
}
