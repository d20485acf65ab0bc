import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { AmqpComponent } from '../lib/components/amqp/amqp-component.ts';
import { Context } from '../lib/engine/context.ts';
import { startRabbitMq, type RabbitMqHandle } from '../test/support/rabbitmq.ts';
import { fmt, median, printTable } from './measure.ts';

/** Messages per trial; at about 10k msgs/s (persistent, confirmed) a trial takes about a second. */
const COUNT = Number(process.env.AMQP_BENCH_COUNT ?? 10_000);
const TRIALS = Number(process.env.AMQP_BENCH_TRIALS ?? 5);
/** Sends in flight at once, on both sides. */
const WINDOW = 100;
const PREFETCH = 100;
const PAYLOAD = Buffer.alloc(100, 'x');
/** What dromedary's producer puts on a Buffer body; the baseline sends the same properties. */
const CONTENT_TYPE = 'application/octet-stream';
const PUBLISH_QUEUE = `bench-publish-${randomUUID().slice(0, 8)}`;
const CONSUME_QUEUE = `bench-consume-${randomUUID().slice(0, 8)}`;
/** The queue as both sides declare it: durable classic, no arguments. */
const QUEUE_OPTIONS: Options.AssertQueue = { durable: true, exclusive: false, autoDelete: false, arguments: {} };

/** Runs `send` COUNT times with at most `window` in flight; returns msgs/s. */
async function windowed(window: number, send: () => Promise<void>): Promise<number> {
  let started = 0;
  const worker = async () => {
    while (started < COUNT) {
      started += 1;
      await send();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: window }, worker));
  return COUNT / ((performance.now() - t0) / 1000);
}

/**
 * The hand-written reference publisher: a confirm channel, persistent messages with a messageId and
 * contentType, mandatory, each send resolved by its own confirm; when publish() returns false the
 * following sends wait for 'drain'.
 */
class RawPublisher {
  readonly #ch: ConfirmChannel;
  #drain: Promise<void> | undefined;

  constructor(ch: ConfirmChannel) {
    this.#ch = ch;
  }

  async send(queue: string, content: Buffer): Promise<void> {
    while (this.#drain) await this.#drain;
    await new Promise<void>((resolve, reject) => {
      const ok = this.#ch.sendToQueue(
        queue,
        content,
        { persistent: true, mandatory: true, messageId: randomUUID(), contentType: CONTENT_TYPE, headers: {} },
        (err: unknown) => (err ? reject(err) : resolve()),
      );
      if (!ok && !this.#drain) {
        this.#drain = new Promise<void>((r) => this.#ch.once('drain', r)).then(() => {
          this.#drain = undefined;
        });
      }
    });
  }
}

async function queueDepth(conn: ChannelModel, queue: string): Promise<number> {
  const ch = await conn.createChannel();
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close();
  }
}

async function expectDepth(conn: ChannelModel, queue: string, expected: number, what: string): Promise<void> {
  const depth = await queueDepth(conn, queue);
  if (depth !== expected) throw new Error(`${what}: queue '${queue}' holds ${depth} message(s), expected ${expected}`);
}

/** dromedary side of the publish measure: direct:in → to(amqp:queue:…), sent through a ProducerTemplate. */
async function dromedaryPublisher(url: string) {
  const context = new Context({ components: { amqp: new AmqpComponent({ url }) } });
  await context.addRoutes((r) => r.from('direct:in').to(`amqp:queue:${PUBLISH_QUEUE}`));
  await context.start();
  const template = context.createProducerTemplate();
  return { send: () => template.sendBody('direct:in', PAYLOAD), stop: () => context.stop() };
}

/** One consume trial on dromedary: a fresh context whose route counts; timed from the first delivery to the COUNT-th. */
async function dromedaryConsume(url: string): Promise<number> {
  let count = 0;
  let t0 = 0;
  let finish!: (t: number) => void;
  const done = new Promise<number>((r) => (finish = r));
  const context = new Context({ components: { amqp: new AmqpComponent({ url }) } });
  await context.addRoutes((r) =>
    r.from(`amqp:queue:${CONSUME_QUEUE}?prefetch=${PREFETCH}`).process(() => {
      if (count === 0) t0 = performance.now();
      count += 1;
      if (count === COUNT) finish(performance.now());
    }),
  );
  await context.start();
  const t1 = await done;
  await context.stop();
  return COUNT / ((t1 - t0) / 1000);
}

/** The hand-written reference consumer: its own channel, the same prefetch, one manual ack per message. */
async function rawConsume(conn: ChannelModel): Promise<number> {
  let count = 0;
  let t0 = 0;
  let finish!: (t: number) => void;
  const done = new Promise<number>((r) => (finish = r));
  const ch: Channel = await conn.createChannel();
  await ch.assertQueue(CONSUME_QUEUE, QUEUE_OPTIONS);
  await ch.prefetch(PREFETCH);
  const { consumerTag } = await ch.consume(
    CONSUME_QUEUE,
    (msg: ConsumeMessage | null) => {
      if (!msg) return;
      if (count === 0) t0 = performance.now();
      count += 1;
      ch.ack(msg);
      if (count === COUNT) finish(performance.now());
    },
    { noAck: false },
  );
  const t1 = await done;
  await ch.cancel(consumerTag);
  await ch.close();
  return COUNT / ((t1 - t0) / 1000);
}

/** Fills the consume queue with COUNT messages like those dromedary's producer sends. */
async function fill(publisher: RawPublisher): Promise<void> {
  let sent = 0;
  const worker = async () => {
    while (sent < COUNT) {
      sent += 1;
      await publisher.send(CONSUME_QUEUE, PAYLOAD);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
}

export async function run(): Promise<void> {
  const t0 = performance.now();
  const broker: RabbitMqHandle = await startRabbitMq();
  const amqp = await import('amqplib');
  const conn = await amqp.connect(broker.url);
  try {
    const setup = await conn.createChannel();
    await setup.assertQueue(PUBLISH_QUEUE, QUEUE_OPTIONS);
    await setup.assertQueue(CONSUME_QUEUE, QUEUE_OPTIONS);
    const raw = new RawPublisher(await conn.createConfirmChannel());

    // Publish: A, B, A, B… after one warm-up pair; the queue is emptied after every trial.
    const dromedary = await dromedaryPublisher(broker.url);
    const pub = { dromedary: [] as number[], raw: [] as number[] };
    for (let i = 0; i <= TRIALS; i += 1) {
      const d = await windowed(WINDOW, dromedary.send);
      await expectDepth(conn, PUBLISH_QUEUE, COUNT, 'dromedary publish');
      await setup.purgeQueue(PUBLISH_QUEUE);
      const r = await windowed(WINDOW, () => raw.send(PUBLISH_QUEUE, PAYLOAD));
      await expectDepth(conn, PUBLISH_QUEUE, COUNT, 'amqplib publish');
      await setup.purgeQueue(PUBLISH_QUEUE);
      if (i === 0) continue;
      pub.dromedary.push(d);
      pub.raw.push(r);
    }
    await dromedary.stop();

    // Consume: the queue is filled before each trial; after it, every message must have been acked.
    const con = { dromedary: [] as number[], raw: [] as number[] };
    for (let i = 0; i <= TRIALS; i += 1) {
      await fill(raw);
      const d = await dromedaryConsume(broker.url);
      await expectDepth(conn, CONSUME_QUEUE, 0, 'dromedary consume');
      await fill(raw);
      const r = await rawConsume(conn);
      await expectDepth(conn, CONSUME_QUEUE, 0, 'amqplib consume');
      if (i === 0) continue;
      con.dromedary.push(d);
      con.raw.push(r);
    }

    await setup.deleteQueue(PUBLISH_QUEUE);
    await setup.deleteQueue(CONSUME_QUEUE);
    const row = (name: string, d: number[], r: number[], baseline: string, how: string) => ({
      name,
      value: fmt(median(d)),
      baseline: `${fmt(median(r))} (${baseline})`,
      ratio: (median(d) / median(r)).toFixed(2),
      note: `median of ${TRIALS} interleaved trials × ${fmt(COUNT)} msgs; ${how}; aim ≥ 0.9`,
    });
    printTable(`RabbitMQ throughput, persistent ${PAYLOAD.length}-byte messages on a durable classic queue (${broker.owned ? 'local broker' : 'AMQP_URL'})`, [
      row('publish msgs/s: `direct → to(amqp:queue)`', pub.dromedary, pub.raw, 'amqplib ConfirmChannel, each send awaits its confirm', `${WINDOW} sends in flight`),
      row('consume msgs/s: `from(amqp:queue) → process`', con.dromedary, con.raw, 'amqplib consumer, manual ack per message', `prefetch ${PREFETCH}`),
    ]);
    console.log(`\n(amqp bench took ${fmt((performance.now() - t0) / 1000, 1)} s)`);
  } finally {
    await conn.close().catch(() => undefined);
    await broker.stop();
  }
}
