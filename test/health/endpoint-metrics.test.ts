import { expect } from 'chai';
import { AmqpComponent } from '../../lib/components/amqp/amqp-component.ts';
import { AmqpSendError } from '../../lib/components/amqp/errors.ts';
import { Context } from '../../lib/engine/context.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { startHealthServer, type HealthServer } from '../../lib/health/health-server.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { json, startHttpServer, type TestServer } from '../support/http-server.ts';
import { useRabbitMq } from '../support/rabbitmq.ts';
import { waitFor } from '../support/wait.ts';
import { deleteQueues, rawConnection, uniqueName } from '../components/amqp/helpers.ts';

/** The value of one sample line of the Prometheus text, e.g. `name{a="b"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("/metrics: the amqp and http-poll components' own counts, per endpoint", function () {
  this.timeout(30_000);
  let context: Context | undefined;
  let health: HealthServer | undefined;

  afterEach(async () => {
    await health?.close();
    await context?.stop();
    health = context = undefined;
  });

  /** A context with the health port open before its routes start, as `dromedary run` has it. */
  async function start(
    routes: (r: RouteBuilder) => void,
    components: Record<string, AmqpComponent> = {},
  ): Promise<{ context: Context; scrape: () => Promise<string>; overview: () => Promise<{ endpoints: Array<{ endpoint: string; counts: Array<{ label: string; value: number }> }> }> }> {
    context = new Context({ logger: captureLogger().logger, components });
    await context.addRoutes(routes);
    const server = await startHealthServer({ context, port: 0 });
    health = server;
    await context.start();
    return {
      context,
      scrape: async () => (await fetch(`${server.url}/metrics`)).text(),
      overview: async () => (await fetch(`${server.url}/api/overview`)).json() as never,
    };
  }

  describe('amqp, on the real RabbitMQ', () => {
    const rmq = useRabbitMq();
    const queues: string[] = [];
    after(async () => {
      await deleteQueues(rmq().url, queues);
    });
    const queue = (prefix: string) => {
      const q = uniqueName(prefix);
      queues.push(q);
      return q;
    };

    it('counts published, confirmed, nacked and failed messages per endpoint, labelled by the masked URI', async () => {
      const confirmedQ = queue('metrics-ok');
      const fullQ = queue('metrics-full');
      const exchange = uniqueName('metrics-nowhere');
      // A queue that holds one message and refuses more: RabbitMQ nacks the second publish.
      const raw = await rawConnection(rmq().url);
      try {
        const ch = await raw.createChannel();
        await ch.assertQueue(fullQ, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
        await ch.close();
      } finally {
        await raw.close();
      }
      const url = new URL(rmq().url);
      // The broker URL in the endpoint URI, password included: the label must show it masked.
      const okUri = `amqp:queue:${confirmedQ}?url=${rmq().url}`;
      const { context, scrape } = await start(
        (r) => {
          r.from('direct:ok').to(okUri);
          r.from('direct:full').to(`amqp:queue:${fullQ}?declare=false`);
          r.from('direct:unroutable').to(`amqp:exchange:${exchange}?durable=false&autoDelete=true`);
        },
        { amqp: new AmqpComponent({ url: rmq().url }) },
      );
      const okLabel = `amqp:queue:${confirmedQ}?url=amqp://${url.username}:xxxxxx@${url.host}`;
      const series = (what: string, endpoint: string) => `dromedary_amqp_messages_${what}_total{endpoint="${endpoint}"}`;

      // Before any send each endpoint shows its counters at 0.
      const before = await scrape();
      expect(sample(before, series('published', okLabel)), before).to.equal(0);
      expect(before).to.contain('# TYPE dromedary_amqp_messages_nacked_total counter');

      const template = context.createProducerTemplate();
      for (let i = 0; i < 3; i += 1) await template.sendBody('direct:ok', `m${i}`);
      expect((await template.send('direct:full', 'first')).exception).to.equal(undefined);
      const refused = await template.send('direct:full', 'second');
      expect(refused.exception).to.be.instanceOf(AmqpSendError).with.property('message').that.matches(/nacked/);
      expect((await template.send('direct:unroutable', 'lost')).exception?.message).to.match(/unroutable/);

      const text = await scrape();
      const counts = (endpoint: string) => ['published', 'confirmed', 'nacked', 'failed'].map((what) => sample(text, series(what, endpoint)));
      expect(counts(okLabel), text).to.deep.equal([3, 3, 0, 0]);
      expect(counts(`amqp:queue:${fullQ}?declare=false`)).to.deep.equal([2, 1, 1, 1]);
      expect(counts(`amqp:exchange:${exchange}?durable=false&autoDelete=true`), text).to.deep.equal([1, 0, 0, 1]);
      expect(text).not.to.contain(`:${url.password}@`);
    });
  });

  describe('http-poll, on a real local HTTP server', () => {
    let server: TestServer | undefined;
    afterEach(async () => {
      await server?.close();
      server = undefined;
    });

    it('counts polls, items and failures, and shows the backoff a failure imposed until a poll succeeds again', async () => {
      const RETRY_AFTER_S = 3;
      let answers = 0;
      server = await startHttpServer((_req, res) => {
        answers += 1;
        if (answers === 1) return json(res, 200, [{ id: 1 }, { id: 2 }, { id: 3 }]);
        if (answers === 2) return json(res, 503, { error: 'busy' }, { 'retry-after': String(RETRY_AFTER_S) });
        json(res, 200, []);
      });
      const got: unknown[] = [];
      // A secret in the query: the endpoint label must carry it masked.
      const uri = `http-poll:${server.url}/items?token=s3cretValue&dromedary.split=true&dromedary.delay=5&dromedary.jitter=0`;
      const { scrape, overview } = await start((r) => {
        r.from(uri).routeId('poll').process((ex) => {
          got.push(ex.body);
        });
      });
      const label = `http-poll:${server.url}/items?token=xxxxxx&dromedary.split=true&dromedary.delay=5&dromedary.jitter=0`;
      const series = (name: string) => `dromedary_http_poll_${name}{endpoint="${label}"}`;

      await waitFor(() => server!.requests.length >= 2, { timeout: 5000, message: 'the second poll (answered 503)' });
      const failing = await waitFor(
        async () => {
          const text = await scrape();
          return sample(text, series('failures_total')) === 1 && text;
        },
        { timeout: 2000, message: 'the failed poll to be counted' },
      );
      expect(got).to.have.length(3);
      expect(sample(failing, series('requests_total')), failing).to.equal(2);
      expect(sample(failing, series('items_total'))).to.equal(3);
      // The server's Retry-After is the wait until the next poll.
      expect(sample(failing, series('backoff_seconds'))).to.equal(RETRY_AFTER_S);
      expect(failing).to.contain('# TYPE dromedary_http_poll_backoff_seconds gauge');
      expect(failing).not.to.contain('s3cretValue');
      // The console's overview shows the same counts.
      const shown = await overview();
      expect(shown.endpoints).to.have.length(1);
      expect(shown.endpoints[0]!.endpoint).to.equal(label);
      expect(shown.endpoints[0]!.counts).to.deep.equal([
        { label: 'polls', value: 2 },
        { label: 'items', value: 3 },
        { label: 'failures', value: 1 },
        { label: 'backoff (s)', value: RETRY_AFTER_S },
      ]);

      // After the Retry-After the next poll succeeds: no backoff any more, and the counts go on.
      const recovered = await waitFor(
        async () => {
          const text = await scrape();
          return sample(text, series('backoff_seconds')) === 0 && text;
        },
        { timeout: RETRY_AFTER_S * 1000 + 2000, interval: 100, message: 'the backoff to end with a successful poll (Retry-After + 2 s)' },
      );
      expect(sample(recovered, series('requests_total'))).to.be.at.least(3);
      expect(sample(recovered, series('failures_total'))).to.equal(1);
      expect(sample(recovered, series('items_total'))).to.equal(3);
    });
  });
});
