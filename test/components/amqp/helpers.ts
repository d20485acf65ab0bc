import { randomUUID } from 'node:crypto';
import type { ChannelModel } from 'amqplib';
import { AmqpComponent } from '../../../lib/components/amqp/amqp-component.ts';
import { Context } from '../../../lib/engine/context.ts';
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

/**
 * Call inside a describe that uses the broker at `url()`: a raw connection for inspecting it, `queue(prefix)`
 * for unique queue names deleted after the block, and `start(routes)` for a context with an amqp component
 * (its own unless one is given) that is stopped after each test; a test may stop it first.
 */
export function amqpRoutesOnBroker(url: () => string) {
  let raw: ChannelModel | undefined;
  let context: Context | undefined;
  const queues: string[] = [];
  before(async () => {
    raw = await rawConnection(url());
  });
  afterEach(async () => {
    await context?.stop();
    context = undefined;
  });
  after(async () => {
    await raw?.close().catch(() => undefined);
    if (queues.length) await deleteQueues(url(), queues);
  });
  return {
    raw: (): ChannelModel => raw!,
    queue(prefix: string): string {
      const q = uniqueName(prefix);
      queues.push(q);
      return q;
    },
    async start(routes: Parameters<Context['addRoutes']>[0], component = new AmqpComponent({ url: url() })): Promise<Context> {
      context = new Context({ logger: silentLogger(), components: { amqp: component } });
      await context.addRoutes(routes);
      await context.start();
      return context;
    },
  };
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
