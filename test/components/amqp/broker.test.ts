import { expect } from 'chai';
import { createServer } from 'node:net';
import type { ChannelModel } from 'amqplib';
import { BrokerConnection, BrokerRegistry, resolveBrokerUrl } from '../../../lib/components/amqp/broker.ts';
import { AmqpAuthError, AmqpConnectError, AmqpSendError, AmqpTopologyError } from '../../../lib/components/amqp/errors.ts';
import { DELIVERY_COUNT_HEADER, Subscriber, type Delivery, type Outcome } from '../../../lib/components/amqp/subscriber.ts';
import { queueDeclarations } from '../../../lib/components/amqp/topology.ts';
import { ConfigurationError } from '../../../lib/errors.ts';
import { silentLogger } from '../../../lib/logging/logger.ts';
import { useRabbitMq } from '../../support/rabbitmq.ts';
import { waitFor } from '../../support/wait.ts';
import { capturingLogger, deleteQueues, messageCount, rawConnection, uniqueName } from './helpers.ts';

describe('amqp broker connection layer', function () {
  const rmq = useRabbitMq();
  let conn: BrokerConnection;
  let raw: ChannelModel;
  const queues: string[] = [];
  const subscribers: Subscriber[] = [];

  function queue(prefix: string): string {
    const q = uniqueName(prefix);
    queues.push(q);
    return q;
  }

  before(async () => {
    conn = new BrokerConnection({ url: rmq().url, logger: silentLogger() });
    await conn.start();
    raw = await rawConnection(rmq().url);
  });

  afterEach(async () => {
    await Promise.all(subscribers.splice(0).map((s) => s.stop()));
  });

  after(async () => {
    await conn?.close();
    await raw?.close().catch(() => undefined);
    if (queues.length) await deleteQueues(rmq().url, queues);
  });

  describe('resolveBrokerUrl', () => {
    it('prefers the configured URL, then AMQP_URL, then amqp://localhost', () => {
      expect(resolveBrokerUrl('amqp://a:5672', { AMQP_URL: 'amqp://b' })).to.equal('amqp://a:5672');
      expect(resolveBrokerUrl(undefined, { AMQP_URL: 'amqp://b' })).to.equal('amqp://b');
      expect(resolveBrokerUrl(undefined, {})).to.equal('amqp://localhost');
    });

    it('rejects a non-AMQP URL with the password masked', () => {
      expect(() => resolveBrokerUrl('http://bob:hunter2@host')).to.throw(ConfigurationError, /not an AMQP URL/).that.satisfies(
        (e: Error) => !e.message.includes('hunter2') && e.message.includes('bob:xxxxxx@'),
      );
    });

    // Issue 12.5: a password written without percent-encoding; no part of it may be printed. Those that
    // WHATWG URL cannot parse fail at once; the others (a space, an @) fail to connect to a closed port.
    for (const password of ['Qz#Wy9', 'Qz/Wy9', 'Qz?Wy9', 'Qz Wy9', 'Qz@Wy/Vx?Uk#Tj Rh']) {
      it(`masks the whole unencoded password ${JSON.stringify(password)} in the startup error`, async () => {
        const port = await closedPort();
        const url = `amqp://guest:${password}@127.0.0.1:${port}/vh`;
        let err: Error | undefined;
        try {
          resolveBrokerUrl(url);
          const c = new BrokerConnection({ url, logger: silentLogger(), startTimeout: 300 });
          err = await c.start().then(() => undefined, (e: Error) => e);
          await c.close();
        } catch (e) {
          err = e as Error;
        }
        expect(err).to.be.instanceOf(Error);
        expect(err!.message).to.include(`amqp://guest:xxxxxx@127.0.0.1:${port}/vh`);
        for (const piece of password.split(/[#/? @]/)) expect(`${err!.message} ${err!.stack}`).not.to.include(piece);
      });
    }
  });

  it('masks a password holding an unencoded @ (which parses) in every connect error', async () => {
    const port = await closedPort();
    const c = new BrokerConnection({ url: `amqp://app:Top@Secret99@127.0.0.1:${port}`, logger: silentLogger(), startTimeout: 300 });
    expect(c.maskedUrl).to.equal(`amqp://app:xxxxxx@127.0.0.1:${port}`);
    const err = await c.start().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(AmqpConnectError);
    expect((err as Error).message).to.include(`amqp://app:xxxxxx@127.0.0.1:${port} (`);
    expect(`${(err as Error).message} ${(err as Error).stack}`).not.to.match(/Top|Secret99/);
    await c.close();
  });

  it('publishes persistent messages that complete on the broker confirm, with messageId and contentType', async () => {
    const q = queue('confirm');
    await conn.declare(queueDeclarations({ name: q }));
    const publisher = conn.publisher();
    await publisher.publish('', q, Buffer.from('{"n":1}'), { messageId: 'm-1', contentType: 'application/json' });
    // The confirm means the broker has it: the queue holds it before we look.
    expect(await messageCount(raw, q)).to.equal(1);
    const ch = await raw.createChannel();
    const got = await ch.get(q, { noAck: true });
    await ch.close();
    expect(got).to.not.equal(false);
    if (got === false) return;
    expect(got.properties.messageId).to.equal('m-1');
    expect(got.properties.contentType).to.equal('application/json');
    expect(got.properties.deliveryMode).to.equal(2);
    expect(got.content.toString()).to.equal('{"n":1}');
  });

  it('fails a send to an exchange with no bound queue loudly (mandatory), instead of dropping it', async () => {
    const ex = uniqueName('ex-unbound');
    const ch = await raw.createChannel();
    await ch.assertExchange(ex, 'direct', { durable: false, autoDelete: false });
    try {
      const err = await conn
        .publisher()
        .publish(ex, 'nowhere', Buffer.from('x'), { messageId: 'lost-1' })
        .then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(AmqpSendError);
      expect((err as Error).message).to.match(/lost-1 is unroutable: exchange '.*' has no queue bound for routing key 'nowhere'/);
    } finally {
      await ch.deleteExchange(ex);
      await ch.close();
    }
  });

  it('consumes with manual ack after the handler completes', async () => {
    const q = queue('ack');
    const seen: string[] = [];
    const outcomes: Outcome[] = [];
    const sub = new Subscriber(conn, async (d: Delivery) => {
      seen.push(d.content.toString());
    }, { queue: { name: q }, prefetch: 5 });
    sub.on('settled', (o: Outcome) => outcomes.push(o));
    subscribers.push(sub);
    await sub.start();
    for (let i = 0; i < 20; i++) await conn.publisher().publish('', q, Buffer.from(`m${i}`));
    await waitFor(() => outcomes.length === 20, { message: '20 deliveries settled' });
    expect(outcomes.every((o) => o === 'acked')).to.equal(true);
    expect(seen).to.have.length(20);
    await sub.stop();
    expect(await messageCount(raw, q)).to.equal(0);
  });

  it('nacks a failed message into the dead-letter queue when one is configured', async () => {
    const q = queue('work');
    const dlq = queue('work-dlq');
    const outcomes: Outcome[] = [];
    const sub = new Subscriber(conn, () => {
      throw new Error('route failed');
    }, { queue: { name: q, deadLetterQueue: dlq }, maxRedeliveries: 0 });
    sub.on('settled', (o: Outcome) => outcomes.push(o));
    subscribers.push(sub);
    await sub.start();
    await conn.publisher().publish('', q, Buffer.from('poison'), { messageId: 'dl-1' });
    await waitFor(() => outcomes.length === 1);
    expect(outcomes).to.deep.equal(['dead-lettered']);
    await waitFor(async () => (await messageCount(raw, dlq)) === 1, { message: 'the message reaches the dead-letter queue' });
    const ch = await raw.createChannel();
    const got = await ch.get(dlq, { noAck: true });
    await ch.close();
    if (got === false) throw new Error('dead-letter queue empty');
    expect(got.properties.messageId).to.equal('dl-1');
    const death = (got.properties.headers?.['x-death'] as Array<{ queue: string; reason: string }>)[0]!;
    expect(death.queue).to.equal(q);
    expect(death.reason).to.equal('rejected');
  });

  it('dead-letters through a named dead-letter exchange', async () => {
    const q = queue('via-dlx');
    const dlq = queue('via-dlx-dlq');
    const dlx = uniqueName('dlx');
    const sub = new Subscriber(conn, () => Promise.reject(new Error('no')), {
      queue: { name: q, deadLetterExchange: dlx, deadLetterQueue: dlq },
      maxRedeliveries: 0,
    });
    subscribers.push(sub);
    await sub.start();
    await conn.publisher().publish('', q, Buffer.from('x'));
    await waitFor(async () => (await messageCount(raw, dlq)) === 1, { message: 'dead-lettered via the exchange' });
    const ch = await raw.createChannel();
    await ch.deleteExchange(dlx);
    await ch.close();
  });

  it('redelivers a failing message up to maxRedeliveries, counting deliveries, then dead-letters it (classic queue)', async () => {
    const q = queue('retry');
    const dlq = queue('retry-dlq');
    const counts: number[] = [];
    const outcomes: Outcome[] = [];
    const sub = new Subscriber(conn, (d) => {
      counts.push(d.deliveryCount);
      throw new Error('still failing');
    }, { queue: { name: q, deadLetterQueue: dlq }, maxRedeliveries: 3 });
    sub.on('settled', (o: Outcome) => outcomes.push(o));
    subscribers.push(sub);
    await sub.start();
    await conn.publisher().publish('', q, Buffer.from('x'), { messageId: 'r-1', contentType: 'text/plain' });
    await waitFor(() => outcomes.includes('dead-lettered'), { message: 'message dead-lettered after its retries' });
    expect(counts).to.deep.equal([1, 2, 3, 4]);
    // A requeue settles when its copy is confirmed, which may be after the copy is delivered again.
    expect([...outcomes].sort()).to.deep.equal(['dead-lettered', 'requeued', 'requeued', 'requeued']);
    await waitFor(async () => (await messageCount(raw, dlq)) === 1);
    const ch = await raw.createChannel();
    const got = await ch.get(dlq, { noAck: true });
    await ch.close();
    if (got === false) throw new Error('dead-letter queue empty');
    // The re-published copy keeps the message's identity.
    expect(got.properties.messageId).to.equal('r-1');
    expect(got.properties.contentType).to.equal('text/plain');
    expect(got.properties.headers?.[DELIVERY_COUNT_HEADER]).to.equal(3);
  });

  it('redelivers on a quorum queue with the broker counting (x-delivery-count)', async () => {
    const q = queue('quorum');
    const counts: number[] = [];
    const outcomes: Outcome[] = [];
    const sub = new Subscriber(conn, (d) => {
      counts.push(d.deliveryCount);
      if (d.deliveryCount < 3) throw new Error('fails twice');
    }, { queue: { name: q, queueType: 'quorum' }, maxRedeliveries: 5 });
    sub.on('settled', (o: Outcome) => outcomes.push(o));
    subscribers.push(sub);
    await sub.start();
    await conn.publisher().publish('', q, Buffer.from('x'));
    await waitFor(() => outcomes.includes('acked'), { message: 'the third delivery succeeds' });
    expect(counts).to.deep.equal([1, 2, 3]);
    expect(outcomes).to.deep.equal(['requeued', 'requeued', 'acked']);
  });

  it('drops (with an error log) a message that exhausts its redeliveries when there is no dead-letter queue', async () => {
    const q = queue('nodlq');
    const log = capturingLogger();
    const c = new BrokerConnection({ url: rmq().url, logger: log });
    await c.start();
    try {
      const outcomes: Outcome[] = [];
      const sub = new Subscriber(c, () => {
        throw new Error('bad');
      }, { queue: { name: q }, maxRedeliveries: 1 });
      sub.on('settled', (o: Outcome) => outcomes.push(o));
      await sub.start();
      await c.publisher().publish('', q, Buffer.from('x'), { messageId: 'drop-1' });
      await waitFor(() => outcomes.length === 2);
      await sub.stop();
      expect([...outcomes].sort()).to.deep.equal(['dropped', 'requeued']);
      expect(await messageCount(raw, q)).to.equal(0);
      const line = log.lines.find((l) => l.level === 'error');
      expect(line?.message).to.match(/drop-1 .* failed 2 time\(s\) and was DROPPED .*configure deadLetterQueue/);
    } finally {
      await c.close();
    }
  });

  it('waits for drain when the socket buffer fills, and loses nothing', async function () {
    this.timeout(60_000);
    const q = queue('backpressure');
    await conn.declare(queueDeclarations({ name: q, durable: false }));
    const publisher = conn.publisher();
    const before = publisher.stats.drainWaits;
    // amqplib buffers 1024 frames per channel before publish() returns false; a synchronous burst
    // of sends fills that before the socket gets a chance to take any.
    const body = Buffer.alloc(100, 7);
    const n = 3000;
    await Promise.all(Array.from({ length: n }, (_, i) => publisher.publish('', q, body, { messageId: `bp-${i}`, persistent: false })));
    expect(publisher.stats.drainWaits - before).to.be.greaterThan(0);
    expect(await messageCount(raw, q)).to.equal(n);
  });

  it('batches the frames of a burst of sends into few socket writes, keeping their order', async () => {
    const q = queue('batched');
    await conn.declare(queueDeclarations({ name: q, durable: false }));
    // The socket under amqplib: its write calls are what batching saves (one system call each).
    const socket = (await conn.connection()).connection as unknown as { stream: { _write: Function; _writev?: Function } };
    const stream = socket.stream;
    const { _write: write, _writev: writev } = stream;
    let writes = 0;
    stream._write = function (this: unknown, ...args: unknown[]) {
      writes++;
      return write.apply(this, args);
    };
    if (writev) {
      stream._writev = function (this: unknown, ...args: unknown[]) {
        writes++;
        return writev.apply(this, args);
      };
    }
    const n = 200;
    try {
      await Promise.all(Array.from({ length: n }, (_, i) => conn.publisher().publish('', q, Buffer.from(String(i)), { persistent: false })));
    } finally {
      stream._write = write;
      if (writev) stream._writev = writev;
    }
    expect(writes).to.be.greaterThan(0).and.lessThan(n / 4);
    const ch = await raw.createChannel();
    const got: string[] = [];
    await ch.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
    await waitFor(() => got.length === n, { message: () => `${got.length} of ${n} messages consumed` });
    await ch.close();
    expect(got).to.deep.equal(Array.from({ length: n }, (_, i) => String(i)));
  });

  it('explains a queue that exists with other arguments', async () => {
    const q = queue('mismatch');
    await conn.declare(queueDeclarations({ name: q }));
    const other = new BrokerConnection({ url: rmq().url, logger: silentLogger() });
    await other.start();
    try {
      const err = await other.declare(queueDeclarations({ name: q, queueType: 'quorum' })).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(AmqpTopologyError);
      expect((err as Error).message).to.match(/already exists with different arguments.*same queueType and dead-letter options/);
    } finally {
      await other.close();
    }
  });

  it('refuses a wrong password with a clear error and the password masked', async () => {
    const url = rmq().url.replace('guest:guest@', 'guest:Sup3rSecretPw@');
    const c = new BrokerConnection({ url, logger: silentLogger(), startTimeout: 10_000 });
    const started = performance.now();
    const err = await c.start().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(AmqpAuthError);
    const message = (err as Error).message;
    expect(message).to.not.include('Sup3rSecretPw');
    expect(message).to.include('guest:xxxxxx@127.0.0.1');
    expect(message).to.match(/refused the login \(.*ACCESS_REFUSED.*\): check the user name and password/);
    // Not retried until startTimeout: a refused login cannot get better.
    expect(performance.now() - started).to.be.lessThan(5000);
    await c.close();
  });

  it('says once that it waits for an unreachable broker, then reports it, with the password masked', async () => {
    const port = await closedPort();
    const log = capturingLogger();
    const c = new BrokerConnection({ url: `amqp://app:TopSecret99@127.0.0.1:${port}`, logger: log, startTimeout: 1000 });
    const err = await c.start().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(AmqpConnectError);
    const message = (err as Error).message;
    expect(message).to.not.include('TopSecret99');
    // The wait is said once at info, with what it waits for and how long it will.
    const waiting = log.lines.filter((l) => l.level === 'info' && l.message.startsWith('Waiting for RabbitMQ'));
    expect(waiting.map((l) => l.message)).to.have.length(1);
    expect(waiting[0]!.message).to.match(new RegExp(`^Waiting for RabbitMQ at amqp://app:xxxxxx@127.0.0.1:${port} \\(.*ECONNREFUSED.*\\): retrying for up to 1s$`));
    expect(log.lines.filter((l) => l.message.includes('not reachable yet')).length).to.be.greaterThan(0);
    expect(message).to.match(new RegExp(`Cannot connect to RabbitMQ at amqp://app:xxxxxx@127.0.0.1:${port} \\(.*ECONNREFUSED.*\\) after \\d+ attempt\\(s\\).*check that the broker is running`));
    await c.close();
  });

  it('shares one connection per URL and closes it on the last release', async () => {
    const registry = new BrokerRegistry({ logger: silentLogger() });
    const a = await registry.acquire(rmq().url);
    const b = await registry.acquire(rmq().url);
    expect(a).to.equal(b);
    expect(registry.size).to.equal(1);
    await registry.release(a);
    expect(a.isConnected).to.equal(true);
    await registry.release(b);
    expect(a.state).to.equal('closed');
    expect(registry.size).to.equal(0);
  });

  it('does not cache a failed connection in the registry', async () => {
    const registry = new BrokerRegistry({ logger: silentLogger(), startTimeout: 100 });
    const url = `amqp://127.0.0.1:${await closedPort()}`;
    const err = await registry.acquire(url).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(AmqpConnectError);
    expect(registry.size).to.equal(0);
  });
});

/** A loopback port with nothing listening: bound, then closed. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
