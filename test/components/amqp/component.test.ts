import { expect } from 'chai';
import { AmqpComponent } from '../../../lib/components/amqp/amqp-component.ts';
import { AmqpHeader } from '../../../lib/components/amqp/convert.ts';
import { AmqpAuthError } from '../../../lib/components/amqp/errors.ts';
import { Context } from '../../../lib/engine/context.ts';
import type { Exchange } from '../../../lib/exchange/exchange.ts';
import { ResolveEndpointError } from '../../../lib/errors.ts';
import { silentLogger } from '../../../lib/logging/logger.ts';
import { useRabbitMq } from '../../support/rabbitmq.ts';
import { waitFor } from '../../support/wait.ts';
import { amqpRoutesOnBroker, messageCount, uniqueName } from './helpers.ts';

describe('amqp component', function () {
  const rmq = useRabbitMq();
  const { raw, queue, start } = amqpRoutesOnBroker(() => rmq().url);

  it('sends to a queue and consumes from it, with body types, headers and messageId carried over', async () => {
    const q = queue('roundtrip');
    const got: Exchange[] = [];
    const ctx = await start((r) => {
      r.from('direct:in').to(`amqp:queue:${q}`);
      r.from(`amqp:queue:${q}?prefetch=5`).process((ex) => {
        got.push(ex);
      });
    });
    const template = ctx.createProducerTemplate();
    await template.sendBody('direct:in', { n: 1 }, { tenant: 'acme', [AmqpHeader.MessageId]: 'order-1' });
    await template.sendBody('direct:in', 'plain text');
    await waitFor(() => got.length === 2, { message: 'both messages consumed' });
    const [json, text] = [got.find((e) => typeof e.body === 'object')!, got.find((e) => typeof e.body === 'string')!];
    expect(json.body).to.deep.equal({ n: 1 });
    expect(json.message.messageId).to.equal('order-1');
    expect(json.headers.get('tenant')).to.equal('acme');
    expect(json.headers.get(AmqpHeader.ContentType)).to.equal('application/json');
    expect(json.headers.get(AmqpHeader.DeliveryCount)).to.equal(1);
    expect(text.body).to.equal('plain text');
    expect(text.message.messageId).to.be.a('string').and.not.equal('order-1');
    await waitFor(async () => (await messageCount(raw(), q)) === 0, { message: 'both acked' });
  });

  it('nacks a message whose route fails into the dead-letter queue', async () => {
    const q = queue('orders');
    const dlq = queue('orders-dlq');
    let calls = 0;
    const ctx = await start((r) => {
      r.from(`amqp:queue:${q}?deadLetterQueue=${dlq}`).process(() => {
        calls++;
        throw new Error('cannot handle this order');
      });
      // The producer does not repeat the dead-letter options: it must not fight the consumer's declaration.
      r.from('direct:in').to(`amqp:queue:${q}`);
    });
    await ctx.createProducerTemplate().sendBody('direct:in', 'bad order', { [AmqpHeader.MessageId]: 'o-9' });
    await waitFor(async () => (await messageCount(raw(), dlq)) === 1, { message: 'message in the dead-letter queue' });
    expect(calls).to.equal(1);
    const ch = await raw().createChannel();
    const got = await ch.get(dlq, { noAck: true });
    await ch.close();
    if (got === false) throw new Error('dead-letter queue empty');
    expect(got.properties.messageId).to.equal('o-9');
    expect(got.content.toString()).to.equal('bad order');
  });

  it('settles an asynchronous route when it finishes: acked on success, dead-lettered on a failure after an await', async () => {
    const q = queue('async');
    const dlq = queue('async-dlq');
    const entered: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const ctx = await start((r) => {
      r.from(`amqp:queue:${q}?deadLetterQueue=${dlq}&prefetch=5`)
        .process(async (ex) => {
          entered.push(ex.body as string);
          await gate;
          if (ex.body === 'bad') throw new Error('failed after an await');
        })
        .setHeader('done', () => true);
      r.from('direct:in').to(`amqp:queue:${q}`);
    });
    const template = ctx.createProducerTemplate();
    await template.sendBody('direct:in', 'good');
    await template.sendBody('direct:in', 'bad');
    await waitFor(() => entered.length === 2, { message: 'both messages in the route' });
    expect(await messageCount(raw(), dlq)).to.equal(0);
    open();
    await waitFor(async () => (await messageCount(raw(), dlq)) === 1, { message: 'the failed one dead-lettered' });
    await ctx.stop();
    // Stopped consumers hand unacked messages back: an empty queue means 'good' was acked.
    expect(await messageCount(raw(), q)).to.equal(0);
    expect(entered).to.deep.equal(['good', 'bad']);
  });

  it('retries a failing route maxRedeliveries times before dead-lettering', async () => {
    const q = queue('flaky');
    const dlq = queue('flaky-dlq');
    const counts: unknown[] = [];
    const ctx = await start((r) => {
      r.from(`amqp:queue:${q}?deadLetterQueue=${dlq}&maxRedeliveries=2`).process((ex) => {
        counts.push(ex.headers.get(AmqpHeader.DeliveryCount));
        throw new Error('flaky');
      });
      r.from('direct:in').to(`amqp:queue:${q}`);
    });
    await ctx.createProducerTemplate().sendBody('direct:in', 'x');
    await waitFor(async () => (await messageCount(raw(), dlq)) === 1, { message: 'dead-lettered after the retries' });
    expect(counts).to.deep.equal([1, 2, 3]);
  });

  it('publishes to an exchange with a routing key, declaring it with its type', async () => {
    const ex = uniqueName('events');
    const q = queue('events-bound');
    const ch = await raw().createChannel();
    await ch.assertExchange(ex, 'topic', { durable: false, autoDelete: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, ex, 'order.*');
    try {
      const ctx = await start((r) => {
        r.from('direct:in').to(`amqp:exchange:${ex}?exchangeType=topic&durable=false&routingKey=order.created`);
      });
      await ctx.createProducerTemplate().sendBody('direct:in', 'created');
      expect(await messageCount(raw(), q)).to.equal(1);
      // An unbound routing key fails the exchange (mandatory) instead of vanishing.
      const failed = await ctx.createProducerTemplate().send('direct:in', 'lost', { [AmqpHeader.RoutingKey]: 'invoice.paid' });
      expect(failed.exception?.message).to.match(/unroutable: exchange '.*' has no queue bound for routing key 'invoice\.paid'/);
    } finally {
      await ch.deleteExchange(ex);
      await ch.close();
    }
  });

  it('shares one connection per broker across the context', async () => {
    const component = new AmqpComponent({ url: rmq().url });
    const [a, b] = [queue('share-a'), queue('share-b')];
    const ctx = await start((r) => {
      r.from(`amqp:queue:${a}`).to(`amqp:queue:${b}`);
      r.from(`amqp:queue:${b}`).log('got it');
      r.from('direct:in').to(`amqp:queue:${a}`);
    }, component);
    expect(component.registry(ctx).size).to.equal(1);
    await ctx.stop();
    expect(component.registry(ctx).size).to.equal(0);
  });

  it('rejects bad URIs clearly', async () => {
    const attempts = [
      ['amqp:topic:x', /expected amqp:queue:<name> or amqp:exchange:<name>/],
      ['amqp:queue:x?prefetch=0', /prefetch/],
      ['amqp:queue:x?prefech=5', /Did you mean "prefetch"/],
      ['amqp:queue:x?url=http://u:pw123@h', /not an AMQP URL/],
    ] as const;
    for (const [uri, pattern] of attempts) {
      const ctx = new Context({ logger: silentLogger(), components: { amqp: new AmqpComponent({ url: rmq().url }) } });
      await ctx.addRoutes((r) => r.from(uri).log('x'));
      const err = await ctx.start().then(() => undefined, (e: unknown) => e as Error);
      // A context whose start failed rethrows that failure from stop(); it has nothing left running.
      await ctx.stop().catch(() => undefined);
      // The context wraps it in a RouteBuildError naming the route; the cause is ours.
      expect(err?.cause ?? err, uri).to.be.instanceOf(ResolveEndpointError);
      expect(err!.message, uri).to.match(pattern);
      expect(err!.message).to.not.include('pw123');
    }
  });

  it('fails context start with the masked URL when the login is refused', async () => {
    const url = rmq().url.replace('guest:guest@', 'guest:WrongPass42@');
    const ctx = new Context({ logger: silentLogger(), components: { amqp: new AmqpComponent({ url }) } });
    await ctx.addRoutes((r) => r.from(`amqp:queue:${queue('auth')}`).log('x'));
    const err = await ctx.start().then(() => undefined, (e: unknown) => e as Error);
    await ctx.stop().catch(() => undefined);
    expect(err).to.be.instanceOf(AmqpAuthError);
    expect(err!.message).to.include('guest:xxxxxx@').and.not.include('WrongPass42');
  });
});
