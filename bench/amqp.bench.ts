import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { AmqpComponent } from '../lib/components/amqp/amqp-component.ts';
import { Context } from '../lib/engine/context.ts';
import { startRabbitMq, type RabbitMqHandle } from '../test/support/rabbitmq.ts';
import { fmt, median, printTable } from './measure.ts';

/** Messages per trial; at 20–40k msgs/s (persistent, confirmed) a trial takes well under a second. */
const COUNT = Number(process.env.AMQP_BENCH_COUNT ?? 10_000);
const TRIALS = Number(process.env.AMQP_BENCH_TRIALS ?? 6);
const TRIAL_TIMEOUT = 120_000;
/** AMQP_BENCH_VERBOSE=1 prints every trial, to see the spread behind the medians. */
const VERBOSE = process.env.AMQP_BENCH_VERBOSE === '1';
/** AMQP_BENCH_ONLY=publish,relay runs some of the measures (publish, consume, relay, roundtrip). */
const ONLY = process.env.AMQP_BENCH_ONLY?.split(',');
const wanted = (measure: string) => !ONLY || ONLY.includes(measure);
/** Sends in flight at once, on both sides. */
const WINDOW = 100;
const PREFETCH = 100;
const PAYLOAD = Buffer.alloc(100, 'x');
/** What dromedary's producer puts on a Buffer body; the baseline sends the same properties. */
const CONTENT_TYPE = 'application/octet-stream';
const PUBLISH_QUEUE = `bench-publish-${randomUUID().slice(0, 8)}`;
const CONSUME_QUEUE = `bench-consume-${randomUUID().slice(0, 8)}`;
const RELAY_OUT = `bench-relay-out-${randomUUID().slice(0, 8)}`;
/**
 * Socket options of the hand-written side: dromedary turns Nagle's algorithm off (see broker.ts),
 * so the baseline does too, and the ratios measure the component rather than a socket setting.
 */
const RAW_SOCKET: { noDelay: boolean } = { noDelay: true };
/** The queue as both sides declare it: durable classic, no arguments. */
const QUEUE_OPTIONS: Options.AssertQueue = { durable: true, exclusive: false, autoDelete: false, arguments: {} };

/**
 * One trial's figures: throughput, and this process's CPU time per message (user + system), which
 * shows the client's own cost apart from the broker's, whose noise dominates wall-clock figures here.
 */
interface Trial {
  rate: number;
  cpuMicros: number;
}

/** Times `work` (which handles COUNT messages and reports when the timed part started and ended). */
async function timed(work: () => Promise<{ t0: number; t1: number; cpu0: NodeJS.CpuUsage }>): Promise<Trial> {
  // A lost message would otherwise leave the bench waiting for ever.
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`a trial of ${COUNT} messages did not finish within ${TRIAL_TIMEOUT / 1000} s`)), TRIAL_TIMEOUT);
  });
  const { t0, t1, cpu0 } = await Promise.race([work(), stuck]).finally(() => clearTimeout(timer));
  const cpu = process.cpuUsage(cpu0);
  return { rate: COUNT / ((t1 - t0) / 1000), cpuMicros: (cpu.user + cpu.system) / COUNT };
}

/** Runs `send` COUNT times with at most WINDOW in flight. */
async function sendAll(send: () => Promise<void>): Promise<void> {
  let started = 0;
  const worker = async () => {
    while (started < COUNT) {
      started += 1;
      await send();
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
}

/**
 * sendAll, timed from the first send until the last send completes or, when given, until `done`
 * (the COUNT-th message consumed).
 */
function windowed(send: () => Promise<void>, done?: Promise<number>): Promise<Trial> {
  return timed(async () => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sendAll(send);
    return { t0, t1: done ? await done : performance.now(), cpu0 };
  });
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

  async send(queue: string, content: Buffer, messageId: string = randomUUID()): Promise<void> {
    while (this.#drain) await this.#drain;
    await new Promise<void>((resolve, reject) => {
      const ok = this.#ch.sendToQueue(
        queue,
        content,
        { persistent: true, mandatory: true, messageId, contentType: CONTENT_TYPE, headers: {} },
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

/** A counter for consume trials: the clock starts at the first message and stops at the COUNT-th. */
function counter() {
  let count = 0;
  let t0 = 0;
  let cpu0: NodeJS.CpuUsage = process.cpuUsage();
  let finish!: (t1: number) => void;
  const done = new Promise<number>((r) => (finish = r));
  return {
    done,
    // t0 and cpu0 are read after the last message: they are set by the first one.
    times: async () => {
      const t1 = await done;
      return { t0, t1, cpu0 };
    },
    tick() {
      if (count === 0) {
        cpu0 = process.cpuUsage();
        t0 = performance.now();
      }
      count += 1;
      if (count === COUNT) finish(performance.now());
    },
  };
}

/** A context with its own amqp component: each trial starts one, so none reuses a warmed-up connection. */
function benchContext(url: string): Context {
  return new Context({ components: { amqp: new AmqpComponent({ url }) } });
}

/** Starts a fresh context with `routes`, runs the trial `work` and stops the context. */
async function withContext(url: string, routes: Parameters<Context['addRoutes']>[0], work: (context: Context) => Promise<Trial>): Promise<Trial> {
  const context = benchContext(url);
  await context.addRoutes(routes);
  await context.start();
  const trial = await work(context);
  await context.stop();
  return trial;
}

/**
 * Runs the trial `work` while a hand-written consumer on its own channel, with the same prefetch and
 * manual acks, hands each delivery from CONSUME_QUEUE to `handle`.
 */
async function withRawConsumer(conn: ChannelModel, handle: (ch: Channel, msg: ConsumeMessage) => void, work: () => Promise<Trial>): Promise<Trial> {
  const ch: Channel = await conn.createChannel();
  await ch.assertQueue(CONSUME_QUEUE, QUEUE_OPTIONS);
  await ch.prefetch(PREFETCH);
  const { consumerTag } = await ch.consume(
    CONSUME_QUEUE,
    (msg: ConsumeMessage | null) => {
      if (msg) handle(ch, msg);
    },
    { noAck: false },
  );
  const trial = await work();
  await ch.cancel(consumerTag);
  await ch.close();
  return trial;
}

/** The plain consumer's handling: ack, then count. */
function ackAndCount(c: ReturnType<typeof counter>): (ch: Channel, msg: ConsumeMessage) => void {
  return (ch, msg) => {
    ch.ack(msg);
    c.tick();
  };
}

/** dromedary's consume trial: a fresh context whose route counts. */
async function dromedaryConsume(url: string): Promise<Trial> {
  const c = counter();
  return withContext(url, (r) => r.from(`amqp:queue:${CONSUME_QUEUE}?prefetch=${PREFETCH}`).process(() => c.tick()), () => timed(c.times));
}

/** The hand-written reference consumer: one manual ack per message. */
async function rawConsume(conn: ChannelModel): Promise<Trial> {
  const c = counter();
  return withRawConsumer(conn, ackAndCount(c), () => timed(c.times));
}

/** dromedary's relay trial: a route from the filled queue to another one; counted once the send is confirmed. */
async function dromedaryRelay(url: string): Promise<Trial> {
  const c = counter();
  return withContext(
    url,
    (r) =>
      r
        .from(`amqp:queue:${CONSUME_QUEUE}?prefetch=${PREFETCH}`)
        .to(`amqp:queue:${RELAY_OUT}`)
        .process(() => c.tick()),
    () => timed(c.times),
  );
}

/**
 * The hand-written relay on one connection, as a small service would write it: each delivery is
 * published with its messageId and contentType on the confirm channel, and acked once confirmed.
 */
async function rawRelay(conn: ChannelModel, publisher: RawPublisher): Promise<Trial> {
  const c = counter();
  return withRawConsumer(
    conn,
    (ch, msg) =>
      void publisher.send(RELAY_OUT, msg.content, msg.properties.messageId).then(
        () => {
          ch.ack(msg);
          c.tick();
        },
        () => ch.nack(msg, false, true),
      ),
    () => timed(c.times),
  );
}

/**
 * dromedary's round trip: one context sends through `direct:in → to(amqp:queue:…)` while a route of
 * the same context consumes that queue, so both share the context's one connection. Timed from the
 * first send to the COUNT-th message consumed.
 */
async function dromedaryRoundTrip(url: string): Promise<Trial> {
  const c = counter();
  return withContext(
    url,
    (r) => {
      r.from('direct:in').to(`amqp:queue:${CONSUME_QUEUE}`);
      r.from(`amqp:queue:${CONSUME_QUEUE}?prefetch=${PREFETCH}`).process(() => c.tick());
    },
    (context) => {
      const template = context.createProducerTemplate();
      return windowed(() => template.sendBody('direct:in', PAYLOAD), c.done);
    },
  );
}

/** The hand-written round trip: the confirm-channel publisher and a consumer on one connection. */
async function rawRoundTrip(conn: ChannelModel, publisher: RawPublisher): Promise<Trial> {
  const c = counter();
  return withRawConsumer(conn, ackAndCount(c), () => windowed(() => publisher.send(CONSUME_QUEUE, PAYLOAD), c.done));
}

type Side = 'dromedary' | 'amqplib';
const skipped: Trial = { rate: NaN, cpuMicros: NaN };

/**
 * Trial 0 of each side is a warm-up. Pairs alternate their order (AB, BA, AB…) so neither side
 * always runs just after the other, e.g. while the broker still deletes the previous trial's messages.
 */
async function interleave(what: string, trial: (side: Side) => Promise<Trial>): Promise<Record<Side, Trial[]>> {
  const out: Record<Side, Trial[]> = { dromedary: [], amqplib: [] };
  for (let i = 0; i <= TRIALS; i += 1) {
    const order: Side[] = i % 2 === 0 ? ['dromedary', 'amqplib'] : ['amqplib', 'dromedary'];
    const got: Partial<Record<Side, Trial>> = {};
    for (const side of order) got[side] = await trial(side);
    if (VERBOSE) {
      const show = (s: Side) => `${s} ${fmt(got[s]!.rate)} msgs/s ${fmt(got[s]!.cpuMicros, 1)} µs CPU/msg`;
      console.log(`${what} trial ${i}: ${show('dromedary')}; ${show('amqplib')}`);
    }
    if (i === 0) continue;
    out.dromedary.push(got.dromedary!);
    out.amqplib.push(got.amqplib!);
  }
  return out;
}

export async function run(): Promise<void> {
  const started = performance.now();
  const broker: RabbitMqHandle = await startRabbitMq();
  const amqp = await import('amqplib');
  const conn = await amqp.connect(broker.url, RAW_SOCKET);
  let context: Context | undefined;
  try {
    const admin = await conn.createChannel();
    await admin.assertQueue(PUBLISH_QUEUE, QUEUE_OPTIONS);
    await admin.assertQueue(CONSUME_QUEUE, QUEUE_OPTIONS);
    await admin.assertQueue(RELAY_OUT, QUEUE_OPTIONS);
    const raw = new RawPublisher(await conn.createConfirmChannel());

    // Publish: every trial must leave exactly COUNT messages in the queue, which is then emptied.
    context = benchContext(broker.url);
    await context.addRoutes((r) => r.from('direct:in').to(`amqp:queue:${PUBLISH_QUEUE}`));
    await context.start();
    const template = context.createProducerTemplate();
    const publish = await interleave('publish', async (side) => {
      if (!wanted('publish')) return skipped;
      const trial = await windowed(side === 'dromedary' ? () => template.sendBody('direct:in', PAYLOAD) : () => raw.send(PUBLISH_QUEUE, PAYLOAD));
      await expectDepth(conn, PUBLISH_QUEUE, COUNT, `${side} publish`);
      await admin.purgeQueue(PUBLISH_QUEUE);
      return trial;
    });
    await context.stop();
    context = undefined;

    // Consume: the queue is filled before every trial and must be empty (all acked) after it.
    const consume = await interleave('consume', async (side) => {
      if (!wanted('consume')) return skipped;
      await sendAll(() => raw.send(CONSUME_QUEUE, PAYLOAD));
      const trial = side === 'dromedary' ? await dromedaryConsume(broker.url) : await rawConsume(conn);
      await expectDepth(conn, CONSUME_QUEUE, 0, `${side} consume`);
      return trial;
    });

    // Relay: consume and publish on one connection, each message acked after its copy is confirmed.
    const relay = await interleave('relay', async (side) => {
      if (!wanted('relay')) return skipped;
      await sendAll(() => raw.send(CONSUME_QUEUE, PAYLOAD));
      const trial = side === 'dromedary' ? await dromedaryRelay(broker.url) : await rawRelay(conn, raw);
      await expectDepth(conn, CONSUME_QUEUE, 0, `${side} relay (input)`);
      await expectDepth(conn, RELAY_OUT, COUNT, `${side} relay (output)`);
      await admin.purgeQueue(RELAY_OUT);
      return trial;
    });

    // Round trip: publishing and consuming the same queue at once, on one connection.
    const roundTrip = await interleave('round trip', async (side) => {
      if (!wanted('roundtrip')) return skipped;
      const trial = side === 'dromedary' ? await dromedaryRoundTrip(broker.url) : await rawRoundTrip(conn, raw);
      await expectDepth(conn, CONSUME_QUEUE, 0, `${side} round trip`);
      return trial;
    });

    for (const q of [PUBLISH_QUEUE, CONSUME_QUEUE, RELAY_OUT]) await admin.deleteQueue(q);
    const row = (name: string, t: Record<Side, Trial[]>, baseline: string, how: string) => {
      const d = median(t.dromedary.map((x) => x.rate));
      const b = median(t.amqplib.map((x) => x.rate));
      const cpu = (s: Side) => fmt(median(t[s].map((x) => x.cpuMicros)), 1);
      return {
        name,
        value: fmt(d),
        baseline: `${fmt(b)} (${baseline})`,
        ratio: (d / b).toFixed(2),
        note: `median of ${TRIALS} interleaved trials × ${fmt(COUNT)} msgs; ${how}; client CPU ${cpu('dromedary')} vs ${cpu('amqplib')} µs/msg; aim ≥ 0.9`,
      };
    };
    printTable(`RabbitMQ throughput, persistent ${PAYLOAD.length}-byte messages on a durable classic queue (${broker.owned ? 'local broker' : 'AMQP_URL'})`, [
      ...(wanted('publish') ? [row('publish msgs/s: `direct → to(amqp:queue)`', publish, 'amqplib ConfirmChannel, each send awaits its confirm', `${WINDOW} sends in flight`)] : []),
      ...(wanted('consume') ? [row('consume msgs/s: `from(amqp:queue) → process`', consume, 'amqplib consumer, manual ack per message', `prefetch ${PREFETCH}`)] : []),
      ...(wanted('relay') ? [row('relay msgs/s: `from(amqp:queue:a) → to(amqp:queue:b)`', relay, 'amqplib consumer re-publishing on a confirm channel, ack after the confirm', `prefetch ${PREFETCH}, one connection`)] : []),
      ...(wanted('roundtrip')
        ? [row('round trip msgs/s: `direct → to(amqp:queue:a)` and `from(amqp:queue:a)` in one context', roundTrip, 'amqplib confirm publisher and consumer on one connection', `${WINDOW} sends in flight, prefetch ${PREFETCH}; timed from the first send to the last delivery`)]
        : []),
    ]);
    console.log(`\n(amqp bench: ${fmt((performance.now() - started) / 1000, 1)} s including the broker's start)`);
  } finally {
    await context?.stop().catch(() => undefined);
    await conn.close().catch(() => undefined);
    await broker.stop();
  }
}
