import { expect } from 'chai';
import { Context, type ContextOptions } from '../../lib/engine/context.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { CLUSTER_SERVICE, MasterComponent } from '../../lib/components/master/master-component.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { HttpOperationFailedError, HttpRequestError } from '../../lib/components/http/errors.ts';
import { HttpHeader } from '../../lib/components/http/headers.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { json, startHttpServer, type TestServer } from '../support/http-server.ts';
import { waitFor } from '../support/wait.ts';

/** A Telegram-style bot token: the kind of secret that has to sit in a URL path. */
const TOKEN = '987654321:AAH-placeholder-s3cret-token';
const TOKEN_VAR = 'DROMEDARY_TEST_TG_TOKEN';

describe('property placeholders in endpoint URIs', function () {
  this.timeout(20_000);
  const contexts: Context[] = [];
  const servers: TestServer[] = [];

  beforeEach(() => {
    process.env[TOKEN_VAR] = TOKEN;
  });

  afterEach(async () => {
    delete process.env[TOKEN_VAR];
    for (const c of contexts.splice(0)) await c.stop();
    for (const s of servers.splice(0)) await s.close();
  });

  async function server(handler: Parameters<typeof startHttpServer>[0]): Promise<TestServer> {
    const s = await startHttpServer(handler);
    servers.push(s);
    return s;
  }

  async function start(routes: (r: RouteBuilder) => void, options: ContextOptions & { cluster?: boolean } = {}) {
    const capture = captureLogger();
    const context = new Context({ logger: capture.logger, components: { master: new MasterComponent({ backOffDelay: 20 }) }, ...options });
    contexts.push(context);
    if (options.cluster) {
      const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
      context.addService(CLUSTER_SERVICE, new ElectorClusterService({ kind: 'memory', memberId: 'a', store: new MemoryLockStore(), timings, logger: capture.logger }));
    }
    await context.addRoutes(routes);
    await context.start();
    /** Every log line with its metadata, as one text to search for the secret. */
    const all = () => capture.lines.map((l) => `${l.level} ${l.message} ${JSON.stringify(l.meta)}`).join('\n');
    return { context, template: context.createProducerTemplate(), all, ...capture };
  }

  it('resolves context properties and environment variables in from() and to(), and prints the URIs as written', async () => {
    process.env.DROMEDARY_TEST_OUT = 'sink';
    try {
      const { template, messages } = await start(
        (r) => {
          r.from('direct:{{in}}').routeId('in').setBody('${body}!').to('direct:{{env:DROMEDARY_TEST_OUT}}');
          r.from('direct:{{env:DROMEDARY_TEST_NOT_SET:sink}}').routeId('sink').setBody('${body}?');
        },
        { properties: { in: 'start' } },
      );
      expect(await template.requestBody('direct:{{in}}', 'hi')).to.equal('hi!?');
      expect(await template.requestBody('direct:start', 'ho')).to.equal('ho!?');
      expect(messages()).to.include('Started route in (direct:{{in}})');
      expect(messages()).to.include('Started route sink (direct:{{env:DROMEDARY_TEST_NOT_SET:sink}})');
    } finally {
      delete process.env.DROMEDARY_TEST_OUT;
    }
  });

  it('takes a whole URI from a placeholder in from(), to() and wireTap(), checked at startup instead of where the route is defined', async () => {
    const tapped: unknown[] = [];
    const { template } = await start(
      (r) => {
        r.from('{{entry}}').wireTap('{{tap}}').to('{{target:direct:sink}}');
        r.from('direct:sink').setBody('${body}!');
        r.from('direct:tap').process((ex) => void tapped.push(ex.body));
      },
      { properties: { entry: 'direct:whole', tap: 'direct:tap' } },
    );
    expect(await template.requestBody('direct:whole', 'x')).to.equal('x!');
    await waitFor(() => tapped.length === 1);
  });

  it('fails startup on a missing key with the key, the URI as written and the fix', async () => {
    const context = new Context({ properties: { known: 'x' } });
    await context.addRoutes((r) => r.from('timer:t?period={{period}}').log('x'));
    const err = await context.start().then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('Failed to resolve endpoint: timer:t?period={{period}} due to: the property "period" of the placeholder {{period}} is not defined');
    expect(err?.message).to.contain("Define it in new Context({ properties: { 'period': … } }) (defined: known), give a default: {{period:value}}");
  });

  it('keeps a value out of an option error: the message shows the placeholder', async () => {
    process.env.DROMEDARY_TEST_PERIOD = 'not-a-duration-s3cret';
    try {
      const context = new Context();
      await context.addRoutes((r) => r.from('timer:t?period={{env:DROMEDARY_TEST_PERIOD}}').log('x'));
      const err = await context.start().then(() => undefined, (e: Error) => e);
      expect(err?.message).to.contain('option "period" has the invalid value "{{env:DROMEDARY_TEST_PERIOD}}"');
      expect(`${err?.message} ${err?.stack}`).to.not.contain('s3cret');
    } finally {
      delete process.env.DROMEDARY_TEST_PERIOD;
    }
  });

  it('sends a secret path segment with the http producer and never prints it: not in errors, not in logs, not in a redirect location', async () => {
    const s = await server((req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      if (path.endsWith('/moved')) return void res.writeHead(302, { location: `/bot${TOKEN}/elsewhere` }).end();
      json(res, 404, { ok: false });
    });
    const port = new URL(s.url).port;
    const { template, all } = await start(
      (r) => {
        r.from('direct:missing').to(`http://127.0.0.1:{{port}}/bot{{env:${TOKEN_VAR}}}/getMe`);
        r.from('direct:moved').to(`http://127.0.0.1:{{port}}/bot{{env:${TOKEN_VAR}}}/moved`);
        r.from('direct:refused').to(`http://127.0.0.1:1/bot{{env:${TOKEN_VAR}}}/getMe?dromedary.requestTimeout=5s`);
      },
      { properties: { port } },
    );
    const missing = await template.send('direct:missing');
    expect(s.requests[0]!.url).to.equal(`/bot${TOKEN}/getMe`);
    expect(missing.exception).to.be.instanceOf(HttpOperationFailedError);
    expect(missing.exception!.message).to.contain(`invoking http://127.0.0.1:{{port}}/bot{{env:${TOKEN_VAR}}}/getMe with statusCode: 404`);
    const moved = await template.send('direct:moved');
    expect((moved.exception as HttpOperationFailedError).redirectLocation).to.equal(`/bot{{env:${TOKEN_VAR}}}/elsewhere`);
    const refused = await template.send('direct:refused');
    expect(refused.exception).to.be.instanceOf(HttpRequestError);
    expect(refused.exception!.message).to.contain('ECONNREFUSED');
    await waitFor(() => all().includes('ECONNREFUSED'), { message: 'the failure of direct:refused was logged' });
    for (const ex of [missing, moved, refused]) expect(`${ex.exception!.message} ${ex.exception!.stack}`).to.not.contain(TOKEN);
    expect(all()).to.contain(`{{env:${TOKEN_VAR}}}`).and.not.contain(TOKEN);
  });

  it('polls a secret path under master: and prints only the placeholder, in every leadership and failure line', async () => {
    let fail = true;
    const s = await server((_req, res) => {
      if (fail) return void res.writeHead(500).end();
      json(res, 200, { ok: true, result: [{ update_id: 7 }] });
    });
    const seen: unknown[] = [];
    const fast = 'dromedary.delay=5&dromedary.jitter=0&dromedary.backoffDelay=10&dromedary.backoffMax=50';
    const { all, lines } = await start(
      (r) =>
        r
          .from(`master:{{env:DROMEDARY_TEST_LOCK:tg}}:http-poll:${s.url}/bot{{env:${TOKEN_VAR}}}/getUpdates?limit=5&${fast}&dromedary.splitPath=result`)
          .process((ex) => void seen.push(ex.headers.get(HttpHeader.Uri))),
      { cluster: true },
    );
    await waitFor(() => s.requests.length >= 2);
    fail = false;
    await waitFor(() => seen.length >= 1);
    expect(s.requests[0]!.url).to.equal(`/bot${TOKEN}/getUpdates?limit=5`);
    expect(seen[0]).to.equal(`${s.url}/bot{{env:${TOKEN_VAR}}}/getUpdates?limit=5`);
    const text = all();
    expect(text).to.contain(`Consumer started: http-poll:${s.url}/bot{{env:${TOKEN_VAR}}}/getUpdates`);
    expect(text).to.contain(`Poll of ${s.url}/bot{{env:${TOKEN_VAR}}}/getUpdates?limit=5 failed`);
    expect(lines.some((l) => l.level === 'warn')).to.equal(true);
    expect(text).to.not.contain(TOKEN);
  });

  it('resolves placeholders written in a toD template, and refuses one that comes from the exchange', async () => {
    const s = await server((_req, res) => json(res, 200, { ok: true }));
    const { template, all } = await start((r) => r.from('direct:call').toD(`${s.url}/bot{{env:${TOKEN_VAR}}}/\${header.method}`));
    const ok = await template.send('direct:call', null, { method: 'getMe' });
    expect(ok.exception).to.equal(undefined);
    expect(s.requests[0]!.url).to.equal(`/bot${TOKEN}/getMe`);
    const injected = await template.send('direct:call', null, { method: `{{env:${TOKEN_VAR}}}` });
    expect(injected.exception!.message).to.contain(`the URI computed by toD contains the placeholder {{env:${TOKEN_VAR}}}, which is not written in the template`);
    expect(s.requests).to.have.length(1);
    expect(all()).to.not.contain(TOKEN);
  });
});
