import { randomUUID } from 'node:crypto';
import type { ChannelModel } from 'amqplib';
import { silentLogger, type Logger } from '../../../lib/logging/logger.ts';

/** A queue name no other test (or earlier run against a shared AMQP_URL broker) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A plain amqplib connection for inspecting the broker independently of the code under test. */
export async function rawConnection(url: string): Promise<ChannelModel> {
  const amqp = await import('amqplib');
  const conn = await amqp.connect(url);
  conn.on('error', () => undefined);
  return conn;
}

export async function messageCount(conn: ChannelModel, queue: string): Promise<number> {
  const ch = await conn.createChannel();
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

export async function deleteQueues(url: string, names: readonly string[]): Promise<void> {
  const conn = await rawConnection(url);
  try {
    for (const q of names) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

export interface CapturedLog {
  level: string;
  message: string;
}

/** A Logger that keeps what it is given, to check what users would read. */
export function capturingLogger(lines: CapturedLog[] = []): Logger & { lines: CapturedLog[] } {
  const base = silentLogger();
  const make = (): Logger & { lines: CapturedLog[] } => {
    const log = (level: string, message: string) => {
      lines.push({ level, message });
      return base;
    };
    return {
      lines,
      error: (m) => log('error', m),
      warn: (m) => log('warn', m),
      info: (m) => log('info', m),
      verbose: (m) => log('verbose', m),
      debug: (m) => log('debug', m),
      log: (level, m) => log(level, m),
      child: () => make(),
    };
  };
  return make();
}
