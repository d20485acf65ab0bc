import { expect } from 'chai';
import { deadLetterChannel } from '../../../lib/dsl/error-handling.ts';
import { useRabbitMq } from '../../support/rabbitmq.ts';
import { waitFor } from '../../support/wait.ts';
import { amqpRoutesOnBroker, messageCount } from './helpers.ts';

class InvalidOrderError extends Error {
  override name = 'InvalidOrderError';
}

describe('error handling over amqp (real broker)', function () {
  this.timeout(30_000);
  const rmq = useRabbitMq();
  const { raw, queue, start } = amqpRoutesOnBroker(() => rmq().url);

  async function publish(q: string, body: string, headers: Record<string, unknown> = {}): Promise<void> {
    const ch = await raw().createConfirmChannel();
    ch.sendToQueue(q, Buffer.from(body), { contentType: 'text/plain', headers });
    await ch.waitForConfirms();
    await ch.close();
  }

  it('deadLetterChannel moves the original message, with the error message and type in headers, and acks the source', async () => {
    const q = queue('orders');
    const dlq = queue('orders-dlq');
    let attempts = 0;
    await start((r) =>
      r
        .from(`amqp:queue:${q}`)
        .errorHandler(deadLetterChannel(`amqp:queue:${dlq}`, { useOriginalMessage: true, maximumRedeliveries: 2, redeliveryDelay: 10 }))
        .setBody('rewritten by the route')
        .setHeader('stage', 'parsed')
        .process(() => {
          attempts += 1;
          throw new InvalidOrderError('order 17 has no lines');
        }),
    );
    await publish(q, 'order 17', { tenant: 'acme' });
    await waitFor(async () => (await messageCount(raw(), dlq)) === 1, { message: 'the message reached the dead-letter queue' });
    const ch = await raw().createChannel();
    const got = await ch.get(dlq, { noAck: true });
    await ch.close();
    if (got === false) throw new Error('dead-letter queue empty');
    expect(got.content.toString()).to.equal('order 17');
    expect(got.properties.headers?.['x-exception-message']).to.equal('order 17 has no lines');
    expect(got.properties.headers?.['x-exception-type']).to.equal('InvalidOrderError');
    expect(got.properties.headers?.tenant).to.equal('acme');
    expect(got.properties.headers?.stage).to.equal(undefined);
    expect(attempts).to.equal(3);
    await waitFor(async () => (await messageCount(raw(), q)) === 0, { message: 'the source message was acked' });
  });

  it('a failing dead-letter endpoint leaves the exchange failed, so the consumer nacks into the broker dead-letter queue', async () => {
    const q = queue('payments');
    const brokerDlq = queue('payments-broker-dlq');
    let deadLetterCalls = 0;
    await start((r) => {
      r.from(`amqp:queue:${q}?deadLetterQueue=${brokerDlq}`)
        .errorHandler(deadLetterChannel('direct:archive'))
        .process(() => {
          throw new InvalidOrderError('bad payment');
        });
      r.from('direct:archive').process(() => {
        deadLetterCalls += 1;
        throw new Error('archive unavailable');
      });
    });
    await publish(q, 'payment 3');
    await waitFor(async () => (await messageCount(raw(), brokerDlq)) === 1, { message: 'the nacked message reached the broker dead-letter queue' });
    expect(deadLetterCalls).to.equal(1);
  });

  it('onException handled acks; not handled nacks', async () => {
    const q = queue('mixed');
    const brokerDlq = queue('mixed-broker-dlq');
    const handledBodies: unknown[] = [];
    await start((r) =>
      r
        .from(`amqp:queue:${q}?deadLetterQueue=${brokerDlq}`)
        .onException(InvalidOrderError, { handled: true })
        .process((ex) => void handledBodies.push(ex.body))
        .end()
        .process((ex) => {
          if (ex.body === 'invalid') throw new InvalidOrderError('invalid');
          throw new Error('unexpected');
        }),
    );
    await publish(q, 'invalid');
    await publish(q, 'crash');
    await waitFor(async () => (await messageCount(raw(), brokerDlq)) === 1, { message: 'the unhandled one was nacked into the broker dead-letter queue' });
    await waitFor(async () => (await messageCount(raw(), q)) === 0, { message: 'the handled one was acked' });
    expect(handledBodies).to.deep.equal(['invalid']);
    const ch = await raw().createChannel();
    const got = await ch.get(brokerDlq, { noAck: true });
    await ch.close();
    expect(got && got.content.toString()).to.equal('crash');
  });
});
