import { expect } from 'chai';
import { BrokerConnection } from '../../../lib/components/amqp/broker.ts';
import { Subscriber, type Delivery } from '../../../lib/components/amqp/subscriber.ts';
import { startRabbitMq, type RabbitMqHandle } from '../../support/rabbitmq.ts';
import { waitFor } from '../../support/wait.ts';
import { capturingLogger, uniqueName } from './helpers.ts';

/**
 * Broker restarts mid-stream with a private broker (this file breaks it on purpose). A producer
 * keeps sending with a bounded number in flight while the broker goes away and comes back; every
 * messageId sent must be consumed at least once, and duplicates are counted.
 */
describe('amqp broker restart', function () {
  this.timeout(120_000);
  let rmq: RabbitMqHandle;

  before(async function () {
    this.timeout(90_000);
    rmq = await startRabbitMq({ local: true });
  });

  after(async () => {
    await rmq?.stop();
  });

  for (const mode of ['app', 'kill'] as const) {
    it(`loses no message when the broker restarts mid-stream (${mode === 'app' ? 'stop_app/start_app' : 'kill -9 and start'})`, async () => {
      const log = capturingLogger();
      const conn = new BrokerConnection({ url: rmq.url, logger: log, reconnectDelay: 50, maxReconnectDelay: 500, sendTimeout: 60_000 });
      const queue = uniqueName(`restart-${mode}`);
      const received = new Map<string, number>();
      const sub = new Subscriber(
        conn,
        (d: Delivery) => {
          const id = d.properties.messageId!;
          received.set(id, (received.get(id) ?? 0) + 1);
        },
        { queue: { name: queue }, prefetch: 20 },
      );
      const restartAt = 400;
      // Keep sending until the restart is over and 300 more went through after it, so the outage
      // falls mid-stream however long the broker takes.
      const after = 300;
      let sent = 0;
      let disconnectedAt = -1;
      conn.on('disconnected', () => {
        if (disconnectedAt < 0) disconnectedAt = sent;
      });
      try {
        await conn.start();
        await sub.start();
        const publisher = conn.publisher();
        let restart: Promise<void> | undefined;
        let restartedAt = Infinity;
        const inFlight = new Set<Promise<void>>();
        let i = 0;
        for (; i < restartedAt + after; i++) {
          const p = publisher.publish('', queue, Buffer.from(`m${i}`), { messageId: `id-${i}`, contentType: 'text/plain' }).then(() => {
            sent++;
          });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p)).catch(() => undefined);
          if (inFlight.size >= 50) await Promise.race(inFlight);
          if (i === restartAt) {
            restart = rmq.restart(mode).then(() => {
              restartedAt = i;
            });
          }
        }
        const total = i;
        await Promise.all(inFlight);
        await restart;
        expect(sent).to.equal(total);
        await waitFor(() => received.size === total, {
          timeout: 60_000,
          message: () => `all ${total} messageIds consumed (got ${received.size}; last log lines: ${log.lines.slice(-5).map((l) => l.message).join(' | ')})`,
        });
        const duplicates = [...received.values()].reduce((n, c) => n + c - 1, 0);
        // Reported, not asserted: at-least-once allows them.
        console.log(`      ${mode}: ${total} sent, ${received.size} distinct received, ${duplicates} duplicate(s), ${publisher.stats.resends} re-send(s); outage began after ${disconnectedAt} confirms`);
        expect(disconnectedAt).to.be.greaterThan(-1);
        expect(log.lines.some((l) => /Reconnected to RabbitMQ at amqp:\/\/guest:xxxxxx@/.test(l.message))).to.equal(true);
        // The outage is said once at info, with what sends do meanwhile, not once per attempt.
        const still = log.lines.filter((l) => l.level === 'info' && l.message.startsWith('Still no connection to RabbitMQ'));
        const outages = log.lines.filter((l) => l.message.startsWith('Lost the connection to RabbitMQ')).length;
        expect(still.length).to.be.within(1, outages);
        expect(still[0]!.message).to.match(/^Still no connection to RabbitMQ at amqp:\/\/guest:xxxxxx@127\.0\.0\.1:\d+ \(.+\): retrying at least every 500ms until it answers; sends wait for it up to 1m$/);
        expect(log.lines.every((l) => !l.message.includes('guest:guest@'))).to.equal(true);
      } finally {
        await sub.stop();
        await conn.close();
      }
    });
  }

  it('fails a send loudly when the broker stays away longer than the send timeout', async () => {
    const conn = new BrokerConnection({ url: rmq.url, logger: capturingLogger(), reconnectDelay: 50, maxReconnectDelay: 200, sendTimeout: 1500 });
    const queue = uniqueName('outage');
    try {
      await conn.start();
      await conn.publisher().publish('', queue, Buffer.from('declare'), { mandatory: false });
      await rmq.stopApp();
      await waitFor(() => !conn.isConnected, { message: 'the client notices the outage' });
      const err = await conn
        .publisher()
        .publish('', queue, Buffer.from('x'), { messageId: 'late-1' })
        .then(() => undefined, (e: unknown) => e as Error);
      expect(err?.name).to.equal('AmqpSendError');
      expect(err?.message).to.match(/late-1 to queue '.*' was not confirmed by RabbitMQ at amqp:\/\/guest:xxxxxx@127\.0\.0\.1:\d+ within 1\.5s .*should retry/);
    } finally {
      await rmq.startApp();
      await conn.close();
    }
  });
});
