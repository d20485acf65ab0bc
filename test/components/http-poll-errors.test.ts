import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import type { HttpPollEndpoint } from '../../lib/components/http-poll/http-poll-component.ts';
import { defaultErrorHandler } from '../../lib/dsl/error-handling.ts';
import type { RouteBuilder } from '../../lib/dsl/route-definition.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { json, startHttpServer, type TestServer } from '../support/http-server.ts';
import { waitFor } from '../support/wait.ts';

const FAST = 'dromedary.delay=5&dromedary.jitter=0&dromedary.backoffDelay=10&dromedary.backoffMax=50';
const CURSOR = 'dromedary.splitPath=result&dromedary.cursorParam=offset&dromedary.cursorField=update_id';

class MalformedUpdateError extends Error {
  override name = 'MalformedUpdateError';
}

/** The error model seen from http-poll: the cursor moves past an item only when its exchange is not failed. */
describe('error handling with http-poll', function () {
  this.timeout(20_000);
  let server: TestServer | undefined;
  let context: Context | undefined;

  afterEach(async () => {
    await context?.stop();
    context = undefined;
    await server?.close();
    server = undefined;
  });

  /** A getUpdates server with updates 10, 11 and 12, and a route polling it from the given URI. */
  async function start(routes: (r: RouteBuilder, uri: string) => void): Promise<{ server: TestServer; endpoint: () => HttpPollEndpoint }> {
    const s = await startHttpServer((req, res) => {
      const offset = Number(new URL(req.url!, 'http://x').searchParams.get('offset') ?? 0);
      json(res, 200, { ok: true, result: [10, 11, 12].filter((id) => id >= offset).map((id) => ({ update_id: id })) });
    });
    server = s;
    context = new Context({ logger: captureLogger().logger });
    await context.addRoutes((r) => routes(r, `http-poll:${s.url}/getUpdates?${FAST}&${CURSOR}`));
    await context.start();
    return { server: s, endpoint: () => context!.routes[0]!.endpoint as HttpPollEndpoint };
  }

  const idOf = (body: unknown) => (body as { update_id: number }).update_id;

  it('a handled failure is not a failure: the cursor moves past the item and the batch is not polled again', async () => {
    const seen: number[] = [];
    const handled: number[] = [];
    const { server: s, endpoint } = await start((r, uri) =>
      r
        .from(uri)
        .onException(MalformedUpdateError, { handled: true })
        .process((ex) => void handled.push(idOf(ex.body)))
        .end()
        .process((ex) => {
          seen.push(idOf(ex.body));
          if (idOf(ex.body) === 11) throw new MalformedUpdateError('update 11 has no text');
        }),
    );
    await waitFor(() => s.requests.some((q) => q.url.includes('offset=13')), { message: 'a poll from offset 13' });
    expect(seen).to.deep.equal([10, 11, 12]);
    expect(handled).to.deep.equal([11]);
    expect(endpoint().cursor).to.equal(13);
  });

  it('redelivery happens in process, inside the batch; an exhausted failure keeps the cursor so the batch comes again', async () => {
    const seen: number[] = [];
    let failures = 0;
    const { server: s, endpoint } = await start((r, uri) =>
      r
        .from(uri)
        .errorHandler(defaultErrorHandler({ maximumRedeliveries: 1, redeliveryDelay: 0 }))
        .process((ex) => {
          seen.push(idOf(ex.body));
          // 11 fails three times: the first poll exhausts its one redelivery, the second poll's first try fails, its redelivery succeeds.
          if (idOf(ex.body) === 11 && failures < 3) {
            failures += 1;
            throw new Error('downstream busy');
          }
        }),
    );
    await waitFor(() => s.requests.some((q) => q.url.includes('offset=13')), { message: 'a poll from offset 13' });
    expect(seen).to.deep.equal([10, 11, 11, 10, 11, 11, 12]);
    expect(endpoint().cursor).to.equal(13);
  });
});
