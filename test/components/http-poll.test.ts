import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import type { Exchange } from '../../lib/exchange/exchange.ts';
import { CLUSTER_SERVICE, MasterComponent } from '../../lib/components/master/master-component.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import type { HttpPollEndpoint } from '../../lib/components/http-poll/http-poll-component.ts';
import type { HttpPollConsumer } from '../../lib/components/http-poll/poll-consumer.ts';
import { backoff, jittered, parseRetryAfter } from '../../lib/components/http-poll/schedule.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { json, startHttpServer, type TestServer } from '../support/http-server.ts';
import { waitFor } from '../support/wait.ts';

const FAST = 'dromedary.delay=5&dromedary.jitter=0&dromedary.backoffDelay=10&dromedary.backoffMax=50';

describe('http-poll component', function () {
  this.timeout(20_000);
  const servers: TestServer[] = [];
  const contexts: Context[] = [];

  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.stop();
    for (const s of servers.splice(0)) await s.close();
  });

  async function server(handler: Parameters<typeof startHttpServer>[0]): Promise<TestServer> {
    const s = await startHttpServer(handler);
    servers.push(s);
    return s;
  }

  async function start(routes: (r: RouteBuilder) => void, options: { cluster?: ElectorClusterService; capture?: ReturnType<typeof captureLogger> } = {}) {
    const capture = options.capture ?? captureLogger();
    const context = new Context({ logger: capture.logger, components: { master: new MasterComponent({ backOffDelay: 20 }) } });
    if (options.cluster) context.addService(CLUSTER_SERVICE, options.cluster);
    contexts.push(context);
    await context.addRoutes(routes);
    await context.start();
    return { context, ...capture, all: () => capture.lines.map((l) => `${l.level} ${l.message} ${JSON.stringify(l.meta)}`).join('\n') };
  }

  /** A Telegram-like getUpdates: updates with update_id >= offset, at most `limit`. */
  function telegram(updates: number[]) {
    return (req: Parameters<Parameters<typeof startHttpServer>[0]>[0], res: Parameters<Parameters<typeof startHttpServer>[0]>[1]) => {
      const q = new URL(req.url!, 'http://x').searchParams;
      const offset = Number(q.get('offset') ?? 0);
      const limit = Number(q.get('limit') ?? 100);
      json(res, 200, { ok: true, result: updates.filter((id) => id >= offset).slice(0, limit).map((id) => ({ update_id: id, text: `u${id}` })) });
    };
  }

  describe('URI rules', () => {
    it('sends the target query verbatim and in order, and keeps dromedary.* options for itself', async () => {
      const s = await server((_req, res) => json(res, 200, []));
      await start((r) => r.from(`http-poll:${s.url}/getUpdates?timeout=0&offset=5&${FAST}&limit=100&q=a%20b&flag`).log('x'));
      await waitFor(() => s.requests.length >= 1);
      expect(s.requests[0]!.url).to.equal('/getUpdates?timeout=0&offset=5&limit=100&q=a%20b&flag');
    });

    it('fails an unknown component option with a suggestion and the valid names', async () => {
      const context = new Context();
      await context.addRoutes((r) => r.from('http-poll:http://127.0.0.1:1/x?timeout=5&dromedary.dealy=1s').log('x'));
      const err = await context.start().then(() => undefined, (e: Error) => e);
      expect(err?.message).to.contain('Unknown parameters=[{dromedary.dealy=1s}]');
      expect(err?.message).to.contain('Did you mean "dromedary.delay" instead of "dromedary.dealy"?');
      expect(err?.message).to.contain('Valid options for http-poll: dromedary.backoffDelay,');
      expect(err?.message).to.contain('dromedary.headerEnv.<Name>');
    });

    it('refuses a cursor without items, and half a cursor', async () => {
      for (const [query, expected] of [
        ['dromedary.cursorParam=offset&dromedary.cursorField=update_id', 'a cursor is computed from items'],
        ['dromedary.split=true&dromedary.cursorParam=offset', 'cursorParam and dromedary.cursorField go together'],
      ] as const) {
        const context = new Context();
        await context.addRoutes((r) => r.from(`http-poll:http://127.0.0.1:1/x?${query}`).log('x'));
        const err = await context.start().then(() => undefined, (e: Error) => e);
        expect(err?.message, query).to.contain(expected);
      }
    });

    // Issue 12.5: a RAW(...) value holding &, # or a space was masked only up to that character.
    it('masks a RAW(...) secret whole in every poll warning', async () => {
      const s = await server((_req, res) => json(res, 503, { busy: true }));
      const { all } = await start((r) => r.from(`http-poll:${s.url}/x?password=RAW(Sekr&TailOne#TailTwo TailThree)&${FAST}`).log('x'));
      await waitFor(() => s.requests.length >= 2);
      const text = all();
      expect(text).to.contain(`${s.url}/x?password=xxxxxx`);
      for (const piece of ['Sekr', 'TailOne', 'TailTwo', 'TailThree']) expect(text).not.to.contain(piece);
    });

    it('warns when a server parameter has the name of a component option', async () => {
      const s = await server((_req, res) => json(res, 200, []));
      const { messages } = await start((r) => r.from(`http-poll:${s.url}/x?delay=5&${FAST}`).log('x'));
      await waitFor(() => s.requests.length >= 1);
      expect(s.requests[0]!.url).to.equal('/x?delay=5');
      expect(messages().join('\n')).to.contain('the query parameter "delay" is sent to the server; the component option is written dromedary.delay');
    });
  });

  it('turns a response into one exchange, and an array at a path into one exchange per item, in order and one at a time', async () => {
    const s = await server((req, res) => (req.url!.startsWith('/one') ? json(res, 200, { hello: 'world' }) : json(res, 200, { result: [{ n: 1 }, { n: 2 }, { n: 3 }] })));
    const whole: Exchange[] = [];
    const items: number[] = [];
    let active = 0;
    let maxActive = 0;
    await start((r) => {
      r.from(`http-poll:${s.url}/one?${FAST}`).process((ex) => void whole.push(ex));
      r.from(`http-poll:${s.url}/many?${FAST}&dromedary.splitPath=result`).process(async (ex) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise((resolve) => setImmediate(resolve));
        items.push((ex.body as { n: number }).n);
        active -= 1;
      });
    });
    await waitFor(() => whole.length >= 1 && items.length >= 6);
    expect(whole[0]!.body).to.deep.equal({ hello: 'world' });
    expect(whole[0]!.headers.get('CamelHttpResponseCode')).to.equal(200);
    expect(items.slice(0, 6)).to.deep.equal([1, 2, 3, 1, 2, 3]);
    expect(maxActive).to.equal(1);
  });

  it('moves the cursor to the highest id + 1 only after every item succeeded, and asks again after a failure', async () => {
    const s = await server(telegram([10, 11, 12]));
    const seen: number[] = [];
    let failNext = true;
    const { context } = await start((r) =>
      r
        .from(`http-poll:${s.url}/getUpdates?timeout=0&${FAST}&dromedary.splitPath=result&dromedary.cursorParam=offset&dromedary.cursorField=update_id`)
        .process((ex) => {
          const id = (ex.body as { update_id: number }).update_id;
          seen.push(id);
          if (id === 11 && failNext) {
            failNext = false;
            throw new Error('downstream refused 11');
          }
        }),
    );
    await waitFor(() => s.requests.some((q) => q.url.includes('offset=13')));
    // First poll: 10 ok, 11 fails → the batch stops, and the cursor stays unset; the second poll gets all three again.
    expect(seen.slice(0, 5)).to.deep.equal([10, 11, 10, 11, 12]);
    expect(s.requests[0]!.url).to.equal('/getUpdates?timeout=0');
    expect(s.requests[1]!.url).to.equal('/getUpdates?timeout=0');
    expect(s.requests.find((q) => q.url.includes('offset'))!.url).to.equal('/getUpdates?timeout=0&offset=13');
    expect((context.routes[0]!.endpoint as HttpPollEndpoint).cursor).to.equal(13);
    expect(seen.filter((id) => id === 12)).to.have.length(1);
  });

  it('backs off exponentially up to the cap while the server fails with 500, and starts over after a success', async () => {
    let failures = 5;
    const s = await server((_req, res) => {
      if (failures > 0) {
        failures -= 1;
        res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
      } else json(res, 200, { ok: true });
    });
    const got: unknown[] = [];
    const { messages } = await start((r) =>
      r.from(`http-poll:${s.url}/x?dromedary.delay=10&dromedary.jitter=0&dromedary.backoffDelay=40&dromedary.backoffMax=200`).process((ex) => void got.push(ex.body)),
    );
    await waitFor(() => got.length >= 1);
    const waits = messages()
      .filter((m) => m.includes('failed'))
      .map((m) => /Next poll in (\S+),/.exec(m)![1]);
    expect(waits).to.deep.equal(['40ms', '80ms', '160ms', '200ms', '200ms']);
    expect(messages().join('\n')).to.contain('HTTP 500 Internal Server Error');
    const gaps = s.requests.slice(1, 6).map((q, i) => q.at - s.requests[i]!.at);
    [40, 80, 160, 200, 200].forEach((min, i) => expect(gaps[i], `gap ${i}`).to.be.at.least(min - 2));
    expect(messages().join('\n')).to.contain('succeeded again after 5 failure(s)');
    // After the success, a new failure waits the first step again.
    failures = 1;
    await waitFor(() => messages().filter((m) => m.includes('failed')).length >= 6);
    expect(messages().filter((m) => m.includes('failed')).at(-1)).to.contain('(1 in a row)').and.contain('Next poll in 40ms');
  });

  it('honours Retry-After on 429 (seconds) and on 503 (an HTTP date) over its own backoff', async () => {
    const answers: Array<() => [number, Record<string, string>]> = [
      () => [429, { 'retry-after': '1' }],
      () => [503, { 'retry-after': new Date(Date.now() + 2000).toUTCString() }],
    ];
    const s = await server((_req, res) => {
      const next = answers.shift();
      if (next) {
        const [status, headers] = next();
        res.writeHead(status, headers).end();
      } else json(res, 200, 'done');
    });
    const got: unknown[] = [];
    const { messages } = await start((r) => r.from(`http-poll:${s.url}/x?${FAST}`).process((ex) => void got.push(ex.body)));
    await waitFor(() => got.length >= 1);
    const [first, second, third] = s.requests;
    // The own backoff would have waited 10 ms and 20 ms.
    expect(second!.at - first!.at).to.be.at.least(995);
    expect(third!.at - second!.at).to.be.at.least(995);
    expect(messages().filter((m) => m.includes('Retry-After'))).to.have.length(2);
    expect(messages().join('\n')).to.contain('HTTP 429 Too Many Requests').and.contain('HTTP 503 Service Unavailable');
  });

  it('gives up on a request after requestTimeout, aborting it, and polls again', async () => {
    let hang = true;
    const s = await server((_req, res) => {
      if (hang) {
        hang = false;
        return; // never answers
      }
      json(res, 200, 'late but fine');
    });
    const got: unknown[] = [];
    const { messages } = await start((r) => r.from(`http-poll:${s.url}/x?${FAST}&dromedary.requestTimeout=150ms`).process((ex) => void got.push(ex.body)));
    await waitFor(() => got.length >= 1);
    expect(got[0]).to.equal('late but fine');
    await waitFor(() => s.requests[0]!.aborted, { message: 'the server saw the first request aborted' });
    expect(messages().find((m) => m.includes('failed'))).to.contain('no response within 150ms (requestTimeout)');
  });

  it('sends If-None-Match/If-Modified-Since and emits nothing on 304', async () => {
    let version = 1;
    const s = await server((req, res) => {
      const etag = `"v${version}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304).end();
        return;
      }
      json(res, 200, { version }, { etag, 'last-modified': 'Tue, 24 Nov 2026 10:00:00 GMT' });
    });
    const got: unknown[] = [];
    await start((r) => r.from(`http-poll:${s.url}/state?${FAST}`).process((ex) => void got.push(ex.body)));
    await waitFor(() => s.requests.length >= 5);
    expect(got).to.deep.equal([{ version: 1 }]);
    expect(s.requests[1]!.headers['if-none-match']).to.equal('"v1"');
    expect(s.requests[1]!.headers['if-modified-since']).to.equal('Tue, 24 Nov 2026 10:00:00 GMT');
    version = 2;
    await waitFor(() => got.length >= 2);
    expect(got[1]).to.deep.equal({ version: 2 });
  });

  it('does not keep the validators of a response whose exchange failed, so the content comes again', async () => {
    const s = await server((req, res) => {
      if (req.headers['if-none-match'] === '"v1"') res.writeHead(304).end();
      else json(res, 200, 'content', { etag: '"v1"' });
    });
    let calls = 0;
    await start((r) =>
      r.from(`http-poll:${s.url}/state?${FAST}`).process(() => {
        calls += 1;
        if (calls === 1) throw new Error('first delivery fails');
      }),
    );
    await waitFor(() => s.requests.length >= 4);
    expect(calls).to.equal(2);
    expect(s.requests[1]!.headers['if-none-match']).to.equal(undefined);
    expect(s.requests[2]!.headers['if-none-match']).to.equal('"v1"');
  });

  it('sends headers, with values from environment variables that no log line shows', async () => {
    const secret = 'tg-s3cr3t-0123456789';
    process.env.DROMEDARY_TEST_POLL_AUTH = `Bearer ${secret}`;
    try {
      const s = await server((_req, res) => {
        res.writeHead(500).end();
      });
      const { all } = await start((r) =>
        r.from(`http-poll:${s.url}/x?${FAST}&dromedary.method=POST&dromedary.header.Accept=application/json&dromedary.headerEnv.Authorization=DROMEDARY_TEST_POLL_AUTH`).log('x'),
      );
      await waitFor(() => s.requests.length >= 2);
      expect(s.requests[0]!.method).to.equal('POST');
      expect(s.requests[0]!.headers.authorization).to.equal(`Bearer ${secret}`);
      expect(s.requests[0]!.headers.accept).to.equal('application/json');
      expect(all()).to.contain('HTTP 500').and.not.contain(secret);
      expect(all()).to.not.contain('DROMEDARY_TEST_POLL_AUTH=');
    } finally {
      delete process.env.DROMEDARY_TEST_POLL_AUTH;
    }
    const context = new Context();
    await context.addRoutes((r) => r.from('http-poll:http://127.0.0.1:1/x?dromedary.headerEnv.X-Api-Key=DROMEDARY_TEST_UNSET_VAR').log('x'));
    const err = await context.start().then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('the environment variable DROMEDARY_TEST_UNSET_VAR (for the X-Api-Key header) is not set');
  });

  it('aborts the request in flight at once when leadership is lost, without moving the cursor', async () => {
    const store = new MemoryLockStore();
    const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
    const capture = captureLogger();
    const cluster = new ElectorClusterService({ kind: 'memory', memberId: 'a', store, timings, logger: capture.logger });
    let hold = false;
    const handler = telegram([1, 2]);
    const s = await server((req, res) => {
      if (!hold) handler(req, res);
      // else: a long poll that never answers
    });
    const seen: number[] = [];
    const { context } = await start(
      (r) =>
        r.from(`master:tg:http-poll:${s.url}/getUpdates?${FAST}&dromedary.requestTimeout=60s&dromedary.splitPath=result&dromedary.cursorParam=offset&dromedary.cursorField=update_id`).process((ex) => {
          seen.push((ex.body as { update_id: number }).update_id);
          hold = true;
        }),
      { cluster, capture },
    );
    await waitFor(() => s.requests.some((q) => q.url.includes('offset=3')));
    const endpoint = (await context.endpoint(`http-poll:${s.url}/getUpdates?${FAST}&dromedary.requestTimeout=60s&dromedary.splitPath=result&dromedary.cursorParam=offset&dromedary.cursorField=update_id`)) as HttpPollEndpoint;
    expect(endpoint.cursor).to.equal(3);
    const inflight = s.requests.at(-1)!;
    expect(inflight.aborted).to.equal(false);
    store.hang(); // renewals stop: leadership lapses after renewDeadline, long before the 60 s request timeout
    await waitFor(() => inflight.aborted, { timeout: 5000, message: 'the in-flight request aborted on leadership loss' });
    expect(capture.messages().join('\n')).to.contain('Leadership lost for tg');
    expect(endpoint.cursor).to.equal(3);
    const after = s.requests.length;
    store.heal();
    expect(seen).to.deep.equal([1, 2]);
    // Leading again, it resumes from its cursor.
    await waitFor(() => s.requests.length > after, { timeout: 5000 });
    expect(s.requests.at(-1)!.url).to.contain('offset=3');
  });

  it('emits no further item of a batch once leadership is lost, and keeps the cursor', async () => {
    const store = new MemoryLockStore();
    const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
    const capture = captureLogger();
    const cluster = new ElectorClusterService({ kind: 'memory', memberId: 'a', store, timings, logger: capture.logger });
    const s = await server(telegram([1, 2, 3]));
    const uri = `http-poll:${s.url}/getUpdates?${FAST}&dromedary.splitPath=result&dromedary.cursorParam=offset&dromedary.cursorField=update_id`;
    const seen: number[] = [];
    const { context } = await start(
      (r) =>
        r.from(`master:tg:${uri}`).process(async (ex) => {
          seen.push((ex.body as { update_id: number }).update_id);
          if (seen.length === 1) {
            store.hang();
            await waitFor(() => capture.messages().some((m) => m.includes('Stopping consumer')), { timeout: 5000 });
          }
        }),
      { cluster, capture },
    );
    await waitFor(() => capture.messages().some((m) => m.includes('Stopping consumer')), { timeout: 5000 });
    const endpoint = (await context.endpoint(uri)) as HttpPollEndpoint;
    await waitFor(() => context.routes[0]!.inflight === 0);
    expect(seen).to.deep.equal([1]);
    // Item 2 never reached the master's gate: the consumer itself stopped emitting.
    expect(capture.messages().join('\n')).to.not.contain('Refused an exchange');
    expect(endpoint.cursor).to.equal(undefined);
    expect(s.requests).to.have.length(1);
    store.heal();
  });

  it('stops at once on context stop even with a long request in flight', async () => {
    const s = await server(() => undefined);
    const { context } = await start((r) => r.from(`http-poll:${s.url}/x?${FAST}&dromedary.requestTimeout=60s`).log('x'));
    await waitFor(() => s.requests.length === 1);
    const consumer = context.routes[0]!.consumer as HttpPollConsumer;
    await context.stop();
    contexts.length = 0;
    await waitFor(() => s.requests[0]!.aborted);
    expect(consumer.polls).to.equal(1);
  });

  describe('schedule', () => {
    const schedule = { delay: 1000, jitter: 0.1, backoffDelay: 100, backoffMultiplier: 2, backoffMax: 1000 };

    it('jitters the delay within its bounds', () => {
      expect(jittered(1000, 0.1, () => 0)).to.equal(900);
      expect(jittered(1000, 0.1, () => 0.5)).to.equal(1000);
      expect(jittered(1000, 0.1, () => 0.999999)).to.equal(1100);
      expect(jittered(1000, 0, () => 0)).to.equal(1000);
    });

    it('doubles the backoff per failure up to the cap, jittered but never above it', () => {
      const mid = () => 0.5;
      expect([1, 2, 3, 4, 5, 20].map((n) => backoff(n, schedule, mid))).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
      expect(backoff(5, schedule, () => 0.999999)).to.equal(1000);
      expect(backoff(5, schedule, () => 0)).to.equal(900);
    });

    it('reads Retry-After as seconds or an HTTP date', () => {
      const now = Date.parse('Tue, 24 Nov 2026 10:00:00 GMT');
      expect(parseRetryAfter('120', now)).to.equal(120_000);
      expect(parseRetryAfter('Tue, 24 Nov 2026 10:00:30 GMT', now)).to.equal(30_000);
      expect(parseRetryAfter('Tue, 24 Nov 2026 09:00:00 GMT', now)).to.equal(0);
      expect(parseRetryAfter(undefined, now)).to.equal(undefined);
      expect(parseRetryAfter('soon', now)).to.equal(undefined);
      expect(parseRetryAfter('-5', now)).to.equal(undefined);
    });
  });
});
