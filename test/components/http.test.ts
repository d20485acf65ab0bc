import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import { HttpOperationFailedError, HttpRequestError } from '../../lib/components/http/errors.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { json, startHttpServer, type TestServer } from '../support/http-server.ts';
import { waitFor } from '../support/wait.ts';

describe('http/https producer', function () {
  this.timeout(20_000);
  let s: TestServer;
  let context: Context;
  let capture: ReturnType<typeof captureLogger>;

  beforeEach(async () => {
    s = await startHttpServer((req, res, recorded) => {
      const path = new URL(req.url!, 'http://x').pathname;
      if (path === '/missing') return json(res, 404, { error: 'no such order' });
      if (path === '/moved') {
        res.writeHead(302, { location: '/echo' }).end();
        return;
      }
      if (path === '/hang') return;
      json(res, 200, { method: recorded.method, url: recorded.url, body: recorded.body, type: req.headers['content-type'] ?? null, tenant: req.headers['x-tenant'] ?? null }, { 'x-served-by': 'test' });
    });
    capture = captureLogger();
    context = new Context({ logger: capture.logger });
    await context.start();
  });

  afterEach(async () => {
    await context.stop();
    await s.close();
  });

  const template = () => context.createProducerTemplate();

  it('picks the method from the option, then CamelHttpMethod, then the body, and serialises the body by type', async () => {
    const t = template();
    const get = await t.send(`${s.url}/echo`);
    expect(get.body).to.include({ method: 'GET', body: '' });
    const post = await t.send(`${s.url}/echo`, { n: 1 });
    expect(post.body).to.include({ method: 'POST', body: '{"n":1}', type: 'application/json' });
    const text = await t.send(`${s.url}/echo`, 'hello', { CamelHttpMethod: 'put' });
    expect(text.body).to.include({ method: 'PUT', body: 'hello', type: 'text/plain; charset=utf-8' });
    const bytes = await t.send(`${s.url}/echo`, Buffer.from([1, 2]));
    expect(bytes.body).to.include({ type: 'application/octet-stream' });
    const option = await t.send(`${s.url}/echo?dromedary.method=DELETE`, undefined, { CamelHttpMethod: 'POST' });
    expect(option.body).to.include({ method: 'DELETE' });
  });

  it('puts the response in the exchange: body, status, response headers; exchange headers go out, Camel ones do not', async () => {
    const ex = await template().send(`${s.url}/echo`, { n: 1 }, { 'X-Tenant': 'acme', CamelSecretish: 'no' });
    expect(ex.exception).to.equal(undefined);
    expect(ex.body).to.include({ tenant: 'acme' });
    expect(ex.headers.get('CamelHttpResponseCode')).to.equal(200);
    expect(ex.headers.get('CamelHttpResponseText')).to.equal('OK');
    expect(ex.headers.get('X-Served-By')).to.equal('test');
    expect(s.requests[0]!.headers['camelsecretish']).to.equal(undefined);
  });

  it('sends the target query verbatim, and takes CamelHttpPath and CamelHttpQuery from the exchange', async () => {
    const t = template();
    await t.send(`${s.url}/echo?b=2&a=1&dromedary.requestTimeout=5s&c=x%2By`);
    expect(s.requests.at(-1)!.url).to.equal('/echo?b=2&a=1&c=x%2By');
    await t.send(`${s.url}/api?x=1`, undefined, { CamelHttpPath: 'orders/7', CamelHttpQuery: 'expand=lines' });
    expect(s.requests.at(-1)!.url).to.equal('/api/orders/7?expand=lines');
  });

  it('fails on a status of 300 or more with the status, the body and the redirect location, unless told not to', async () => {
    const t = template();
    const missing = await t.send(`${s.url}/missing`);
    expect(missing.exception).to.be.instanceOf(HttpOperationFailedError);
    const err = missing.exception as HttpOperationFailedError;
    expect(err.statusCode).to.equal(404);
    expect(err.responseBody).to.deep.equal({ error: 'no such order' });
    expect(err.message).to.contain(`HTTP operation failed invoking ${s.url}/missing with statusCode: 404 Not Found`);
    const moved = await t.send(`${s.url}/moved`);
    expect((moved.exception as HttpOperationFailedError).redirectLocation).to.equal('/echo');
    const followed = await t.send(`${s.url}/moved?dromedary.followRedirects=true`);
    expect(followed.body).to.include({ method: 'GET', url: '/echo' });
    const tolerated = await t.send(`${s.url}/missing?dromedary.throwExceptionOnFailure=false`);
    expect(tolerated.exception).to.equal(undefined);
    expect(tolerated.headers.get('CamelHttpResponseCode')).to.equal(404);
    expect(tolerated.body).to.deep.equal({ error: 'no such order' });
  });

  describe('secret headers on redirects (issue 12.5)', () => {
    let other: TestServer;
    beforeEach(async () => {
      other = await startHttpServer((_req, res) => json(res, 200, { landed: true }));
      process.env.DROMEDARY_TEST_REDIRECT_SECRET = 'env-s3cret-value';
    });
    afterEach(async () => {
      delete process.env.DROMEDARY_TEST_REDIRECT_SECRET;
      await other.close();
    });

    const secretHeaders = { Authorization: 'Bearer a1', 'Proxy-Authorization': 'Basic b2', Cookie: 'sid=c3', 'X-Auth-Token': 'd4', 'X-Api-Key': 'e5', 'X-Session-Id': 'f6' };
    const uri = (target: string) =>
      `${s.url}/to?target=${encodeURIComponent(target)}&dromedary.followRedirects=true` +
      '&dromedary.headerEnv.X-Custom-Credential=DROMEDARY_TEST_REDIRECT_SECRET&dromedary.headerEnv.X-Plain-Name=DROMEDARY_TEST_REDIRECT_SECRET' +
      '&dromedary.header.Accept=application/json';

    beforeEach(() => {
      s.handler = (req, res) => {
        const url = new URL(req.url!, 'http://x');
        if (url.pathname === '/to') res.writeHead(302, { location: url.searchParams.get('target')! }).end();
        else json(res, 200, { landed: true });
      };
    });

    it('drops every secret header when a redirect leaves the origin, and keeps the others', async () => {
      const ex = await template().send(uri(`${other.url}/landing`), undefined, { ...secretHeaders, 'X-Tenant': 'acme' });
      expect(ex.exception).to.equal(undefined);
      expect(ex.body).to.deep.equal({ landed: true });
      expect(s.requests[0]!.headers).to.include({ authorization: 'Bearer a1', 'x-auth-token': 'd4', 'x-plain-name': 'env-s3cret-value', 'x-custom-credential': 'env-s3cret-value' });
      const landed = other.requests[0]!.headers;
      for (const name of [...Object.keys(secretHeaders), 'X-Custom-Credential', 'X-Plain-Name']) expect(landed, name).not.to.have.property(name.toLowerCase());
      expect(landed).to.include({ 'x-tenant': 'acme', accept: 'application/json' });
    });

    it('keeps them on a redirect within the origin', async () => {
      await template().send(uri('/landing'), undefined, { ...secretHeaders });
      expect(s.requests[1]!.url).to.equal('/landing');
      expect(s.requests[1]!.headers).to.include({ authorization: 'Bearer a1', cookie: 'sid=c3', 'x-auth-token': 'd4', 'x-plain-name': 'env-s3cret-value' });
    });

    it('does not give them back when a later redirect returns to the origin', async () => {
      other.handler = (_req, res) => {
        res.writeHead(302, { location: `${s.url}/landing` }).end();
      };
      await template().send(uri(`${other.url}/bounce`), undefined, { ...secretHeaders });
      const back = s.requests.find((r) => r.url === '/landing')!;
      expect(back.headers).not.to.have.property('x-auth-token');
      expect(back.headers).not.to.have.property('x-plain-name');
      expect(back.headers).not.to.have.property('authorization');
    });
  });

  it('times out a request that gets no answer, aborting it', async () => {
    const ex = await template().send(`${s.url}/hang?dromedary.requestTimeout=150ms`);
    expect(ex.exception).to.be.instanceOf(HttpRequestError);
    expect((ex.exception as HttpRequestError).timedOut).to.equal(true);
    expect(ex.exception!.message).to.contain('no response within 150ms');
    await waitFor(() => s.requests[0]!.aborted);
  });

  it('sends a header from an environment variable and never prints it', async () => {
    process.env.DROMEDARY_TEST_HTTP_KEY = 'k3y-abcdef-123456';
    try {
      const ex = await template().send(`${s.url}/missing?dromedary.headerEnv.X-Api-Key=DROMEDARY_TEST_HTTP_KEY`);
      expect(s.requests[0]!.headers['x-api-key']).to.equal('k3y-abcdef-123456');
      expect(ex.exception!.message).to.not.contain('k3y-abcdef');
      const refused = await template().send('http://127.0.0.1:1/x?dromedary.headerEnv.X-Api-Key=DROMEDARY_TEST_HTTP_KEY');
      expect(refused.exception).to.be.instanceOf(HttpRequestError);
      expect(refused.exception!.message).to.contain('ECONNREFUSED').and.not.contain('k3y-abcdef');
    } finally {
      delete process.env.DROMEDARY_TEST_HTTP_KEY;
    }
  });

  it('rejects unknown component options and consuming', async () => {
    const typo = await template().send(`${s.url}/echo?dromedary.throwExceptionOnFailur=false`);
    expect(typo.exception!.message).to.contain('Did you mean "dromedary.throwExceptionOnFailure"');
    const c = new Context();
    await c.addRoutes((r) => r.from(`${s.url}/echo`).log('x'));
    const err = await c.start().then(() => undefined, (e: Error) => e);
    expect(err?.message).to.contain('the http component cannot consume');
  });

  it('resolves https: URIs with the same rules', async () => {
    const endpoint = await context.endpoint('https://example.invalid/path?a=1&dromedary.method=PUT');
    expect(endpoint.maskedUri).to.equal('https://example.invalid/path?a=1&dromedary.method=PUT');
    const ex = await template().send('https://127.0.0.1:1/x?dromedary.requestTimeout=2s');
    expect(ex.exception).to.be.instanceOf(HttpRequestError);
  });
});
