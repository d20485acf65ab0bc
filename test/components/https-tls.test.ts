import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Context } from '../../lib/engine/context.ts';
import { CLUSTER_SERVICE, MasterComponent } from '../../lib/components/master/master-component.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { HttpRequestError } from '../../lib/components/http/errors.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { makeSelfSignedCertificate, startHttpsServer, type SelfSignedCertificate, type TestHttpsServer } from '../support/https-server.ts';
import { waitFor } from '../support/wait.ts';

const FAST = 'dromedary.delay=5&dromedary.jitter=0&dromedary.backoffDelay=10&dromedary.backoffMax=50';

describe('https against a real TLS server with a self-signed certificate', function () {
  this.timeout(20_000);
  let cert: SelfSignedCertificate;
  let s: TestHttpsServer;
  const contexts: Context[] = [];

  before(async () => {
    cert = makeSelfSignedCertificate();
    s = await startHttpsServer(cert, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, result: [{ update_id: 1, path: req.url }] }));
    });
  });

  after(async () => {
    await s.close();
    cert.remove();
  });

  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.stop();
  });

  async function start(routes?: (r: RouteBuilder) => void, options: { cluster?: boolean } = {}) {
    const capture = captureLogger();
    const context = new Context({ logger: capture.logger, components: { master: new MasterComponent({ backOffDelay: 20 }) } });
    contexts.push(context);
    if (options.cluster) {
      const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
      context.addService(CLUSTER_SERVICE, new ElectorClusterService({ kind: 'memory', memberId: 'a', store: new MemoryLockStore(), timings, logger: capture.logger }));
    }
    if (routes) await context.addRoutes(routes);
    await context.start();
    return { context, template: context.createProducerTemplate(), ...capture };
  }

  it('sends with the https producer when the server CA is trusted through dromedary.caFile', async () => {
    const { template } = await start();
    const ex = await template.send(`${s.url}/orders?id=1&dromedary.caFile=${encodeURIComponent(cert.certFile)}`);
    expect(ex.exception).to.equal(undefined);
    expect(ex.body).to.deep.include({ ok: true });
    expect(s.requests.at(-1)).to.equal('/orders?id=1');
  });

  it('polls an https URL under master: with the CA file given through an env placeholder', async () => {
    process.env.DROMEDARY_TEST_CA_FILE = cert.certFile;
    try {
      const items: unknown[] = [];
      await start(
        (r) => r.from(`master:tls:http-poll:${s.url}/getUpdates?${FAST}&dromedary.splitPath=result&dromedary.caFile={{env:DROMEDARY_TEST_CA_FILE}}`).process((ex) => void items.push(ex.body)),
        { cluster: true },
      );
      await waitFor(() => items.length >= 1);
      expect(items[0]).to.deep.equal({ update_id: 1, path: '/getUpdates' });
    } finally {
      delete process.env.DROMEDARY_TEST_CA_FILE;
    }
  });

  it('fails on an untrusted certificate with an error naming dromedary.caFile, in the producer and in the poller', async () => {
    const { template, messages } = await start((r) => r.from(`http-poll:${s.url}/getUpdates?${FAST}`).log('never'));
    const ex = await template.send(`${s.url}/orders`);
    expect(ex.exception).to.be.instanceOf(HttpRequestError);
    expect(ex.exception!.message).to.contain('SELF_SIGNED_CERT').and.contain("the server's certificate is not signed by a trusted authority").and.contain('set dromedary.caFile=<PEM file of its CA>');
    await waitFor(() => messages().some((m) => m.includes('dromedary.caFile')), { message: 'the poller warned with the option to set' });
    expect(messages().find((m) => m.includes('dromedary.caFile'))).to.contain(`Poll of ${s.url}/getUpdates failed`);
  });

  it('accepts any certificate with dromedary.rejectUnauthorized=false, and warns at startup', async () => {
    const { template, messages } = await start();
    const ex = await template.send(`${s.url}/insecure?dromedary.rejectUnauthorized=false`);
    expect(ex.exception).to.equal(undefined);
    expect(messages().join('\n')).to.contain('dromedary.rejectUnauthorized=false: server certificates are not verified');
  });

  it('refuses a CA file that is missing or holds no certificate, at startup, naming the option', async () => {
    const notPem = join(cert.dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    for (const [file, expected] of [
      [join(cert.dir, 'missing.pem'), 'dromedary.caFile: cannot read'],
      [notPem, 'holds no PEM certificate'],
    ] as const) {
      const context = new Context();
      await context.addRoutes((r) => r.from(`http-poll:${s.url}/x?dromedary.caFile=${encodeURIComponent(file)}`).log('x'));
      const err = await context.start().then(() => undefined, (e: Error) => e);
      expect(err?.message, file).to.contain(expected);
    }
  });
});
