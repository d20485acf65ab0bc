import { expect } from 'chai';
import { AmqpComponent } from '../../../lib/components/amqp/amqp-component.ts';
import { Context } from '../../../lib/engine/context.ts';
import type { AggregationStrategy } from '../../../lib/dsl/steps/split.ts';
import { useRabbitMq } from '../../support/rabbitmq.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';
import { deleteQueues, messageCount, rawConnection, uniqueName } from './helpers.ts';

/** Joins the message bodies with '|'. */
const joinBodies: AggregationStrategy = (aggregated, next) => {
  const text = Buffer.isBuffer(next.body) ? next.body.toString() : String(next.body);
  if (!aggregated) {
    next.body = text;
    return next;
  }
  aggregated.body = `${String(aggregated.body)}|${text}`;
  return aggregated;
};

// Issue 12's case on a real broker: the messages are acked as they join the group, so the batch the
// stop completes is the only copy of them; it must reach the queue behind direct:ship.
describe('graceful shutdown over amqp (real broker)', function () {
  this.timeout(60_000);
  const rmq = useRabbitMq();
  const queues: string[] = [];
  let context: Context | undefined;
  afterEach(async () => {
    await context?.stop();
    context = undefined;
    await deleteQueues(rmq().url, queues.splice(0));
  });

  it('amqp → aggregate(completionTimeout 30s) → direct:ship → amqp: context.stop() ships the batch of the 3 acked messages, without waiting out the timeout', async () => {
    const orders = uniqueName('orders');
    const shipped = uniqueName('shipped');
    queues.push(orders, shipped);
    const shutdownTimeout = 20_000;
    const capture = captureLogger();
    context = new Context({ logger: capture.logger, shutdownTimeout, components: { amqp: new AmqpComponent({ url: rmq().url }) } });
    await context.addRoutes((r) => {
      r.from(`amqp:queue:${orders}`).routeId('batcher').aggregate('batch', joinBodies, { completionTimeout: '30s' }).to('direct:ship').end();
      r.from('direct:ship').routeId('ship').to(`amqp:queue:${shipped}`);
    });
    await context.start();
    const raw = await rawConnection(rmq().url);
    try {
      const ch = await raw.createConfirmChannel();
      for (const body of ['o1', 'o2', 'o3']) ch.sendToQueue(orders, Buffer.from(body), { contentType: 'text/plain' });
      await ch.waitForConfirms();
      await ch.close();
      // All three joined the group and were acked: the broker holds none of them any more.
      await waitFor(async () => (await messageCount(raw, orders)) === 0 && context!.route('batcher')!.inflight === 0, { message: 'the 3 messages to be acked' });
      let stopped = false;
      const stopping = context.stop().then(() => (stopped = true));
      await waitFor(() => stopped, { timeout: shutdownTimeout / 2, message: 'context.stop() to return once the batch was shipped' });
      await stopping;
      const out = await raw.createChannel();
      const got = await out.get(shipped, { noAck: true });
      await out.close();
      if (got === false) throw new Error(`the batch was lost: ${shipped} is empty; log: ${capture.lines.map((l) => l.message).join(' / ')}`);
      expect(got.content.toString()).to.equal('o1|o2|o3');
      expect(await messageCount(raw, shipped)).to.equal(0);
      expect(capture.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.message)).to.deep.equal([]);
    } finally {
      await raw.close().catch(() => undefined);
    }
  });
});
