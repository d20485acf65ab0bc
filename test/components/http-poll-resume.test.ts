import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import { LeadershipLostError } from '../../lib/errors.ts';
import type { Exchange } from '../../lib/exchange/exchange.ts';
import type { HttpPollEndpoint } from '../../lib/components/http-poll/http-poll-component.ts';
import type { HttpPollConsumer } from '../../lib/components/http-poll/poll-consumer.ts';
import { partialCursor } from '../../lib/components/http-poll/poll-state.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { json, startHttpServer, type Handler, type TestServer } from '../support/http-server.ts';
import { MemorySlot } from '../support/memory-slot.ts';
import { waitFor } from '../support/wait.ts';

const FAST = 'dromedary.delay=5&dromedary.jitter=0&dromedary.backoffDelay=10&dromedary.backoffMax=50';
const SINCE = 'dromedary.split=true&dromedary.cursorParam=since&dromedary.cursorField=id';

/** A stateless since-API: `GET /events?since=N&limit=L` returns the events with id >= N, at most L. */
function sinceApi(ids: number[]): Handler {
  return (req, res) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    const since = Number(q.get('since') ?? 0);
    const limit = Number(q.get('limit') ?? 100);
    json(res, 200, ids.filter((id) => id >= since).slice(0, limit).map((id) => ({ id })));
  };
}

/**
 * The poller's side of leader state (issue 14): what it resumes from and what it saves. The slot is
 * a plain object here; the cluster store behind it is tested with the backends, and the master:
 * wiring with real member processes (test/cluster/members-resume.test.ts).
 */
describe('http-poll resuming from leader state', function () {
  this.timeout(20_000);
  const servers: TestServer[] = [];
  const consumers: HttpPollConsumer[] = [];

  afterEach(async () => {
    for (const c of consumers.splice(0)) await c.stop();
    for (const s of servers.splice(0)) await s.close();
  });

  async function poller(uri: string, slot: MemorySlot | undefined, processor: (ex: Exchange) => void | Promise<void>) {
    const capture = captureLogger();
    const context = new Context({ logger: capture.logger });
    const endpoint = (await context.endpoint(uri)) as HttpPollEndpoint;
    const consumer = endpoint.createConsumer(processor);
    if (slot) consumer.resumeFrom(slot);
    await consumer.start();
    consumers.push(consumer);
    return { endpoint, consumer, ...capture };
  }

  async function server(handler: Handler): Promise<TestServer> {
    const s = await startHttpServer(handler);
    servers.push(s);
    return s;
  }

  it('continues from the saved cursor instead of the URL’s, so a new leader replays nothing that was completed', async () => {
    const s = await server(sinceApi([1, 2, 3, 4, 5]));
    const seen: number[] = [];
    await poller(`http-poll:${s.url}/events?since=0&${FAST}&${SINCE}`, new MemorySlot({ cursor: 4 }), (ex) => void seen.push((ex.body as { id: number }).id));
    await waitFor(() => seen.length >= 2 && s.requests.length >= 3);
    expect(s.requests[0]!.url).to.equal('/events?since=4');
    expect(seen.slice(0, 2)).to.deep.equal([4, 5]);
  });

  it('saves the cursor after each completed batch and before the next poll, and only when it moved', async () => {
    const ids = [1, 2, 3];
    const s = await server(sinceApi(ids));
    const slot = new MemorySlot();
    const seen: number[] = [];
    await poller(`http-poll:${s.url}/events?since=0&limit=2&${FAST}&${SINCE}`, slot, (ex) => void seen.push((ex.body as { id: number }).id));
    await waitFor(() => s.requests.length >= 4);
    expect(slot.saves).to.deep.equal([{ cursor: 3 }, { cursor: 4 }]);
    ids.push(4);
    await waitFor(() => slot.saves.length >= 3);
    expect(slot.saves[2]).to.deep.equal({ cursor: 5 });
    expect(seen).to.deep.equal([1, 2, 3, 4]);
  });

  it('saves within a long batch every saveEvery items, so a crash mid-batch replays at most that many', async () => {
    const s = await server(sinceApi([10, 11, 12, 13, 14, 15, 16, 17]));
    const slot = new MemorySlot();
    const seen: number[] = [];
    // Item 16 fails: the batch stops there, and the poller itself asks again from the batch's start,
    // but a new leader would start after the last saved item: 15 is the only one it replays.
    await poller(`http-poll:${s.url}/events?${FAST}&${SINCE}&dromedary.saveEvery=3`, slot, (ex) => {
      const id = (ex.body as { id: number }).id;
      seen.push(id);
      if (id === 16) throw new Error('downstream refused 16');
    });
    await waitFor(() => seen.filter((id) => id === 16).length >= 2);
    expect(s.requests[1]!.url, 'the poller itself asks for the failed batch again').to.equal('/events');
    expect(slot.saves, 'the same items done again are not saved again').to.deep.equal([{ cursor: 13 }, { cursor: 16 }]);
  });

  it('computes a partial cursor that never passes an item not done yet', () => {
    expect(partialCursor([10, 11, 12, 13], 2)).to.equal(12);
    expect(partialCursor([10, 12, 11, 13], 2), 'out of order: 11 is not done').to.equal(11);
    expect(partialCursor([10, 11], 0)).to.equal(undefined);
    expect(partialCursor([10, 11], 2)).to.equal(12);
  });

  it('keeps the validators without their URL (it may hold a secret) and sends them again after a failover', async () => {
    const s = await server((req, res) => {
      if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304).end();
      res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"' }).end(JSON.stringify({ v: 1 }));
    });
    const first = new MemorySlot();
    const bodies: unknown[] = [];
    const a = await poller(`http-poll:${s.url}/config?token=s3cret&${FAST}`, first, (ex) => void bodies.push(ex.body));
    await waitFor(() => first.saves.length >= 1 && s.requests.length >= 2);
    expect(first.saves[0]).to.deep.equal({ validators: { etag: '"v1"' } });
    expect(JSON.stringify(first.saves)).not.to.contain('s3cret');
    await a.consumer.stop();
    // The next leader: a fresh endpoint in another context, resuming from what the first saved.
    const before = s.requests.length;
    await poller(`http-poll:${s.url}/config?token=s3cret&${FAST}`, new MemorySlot(first.latest), (ex) => void bodies.push(ex.body));
    await waitFor(() => s.requests.length >= before + 2);
    expect(s.requests[before]!.headers['if-none-match']).to.equal('"v1"');
    expect(bodies).to.have.length(1);
  });

  it('ignores a saved value it cannot read, says so, and starts from the URL', async () => {
    const s = await server(sinceApi([1, 2]));
    const seen: number[] = [];
    const { lines } = await poller(`http-poll:${s.url}/events?since=0&${FAST}&${SINCE}`, new MemorySlot({ cursor: 'twelve' }), (ex) => void seen.push((ex.body as { id: number }).id));
    await waitFor(() => seen.length >= 2);
    expect(s.requests[0]!.url).to.equal('/events?since=0');
    expect(lines.some((l) => l.level === 'warn' && l.message.includes('Ignoring the poll state saved') && l.message.includes('"twelve" is not a number'))).to.equal(true);
  });

  it('polls on when a save fails: a lost term is quiet (the master: consumer is stopping it), a store outage is told once, and its end too', async () => {
    const ids = [1, 2];
    const s = await server(sinceApi(ids));
    const slot = new MemorySlot();
    slot.failWith = new LeadershipLostError('lock1', 'm1', 'gone');
    const seen: number[] = [];
    const { lines } = await poller(`http-poll:${s.url}/events?${FAST}&${SINCE}`, slot, (ex) => void seen.push((ex.body as { id: number }).id));
    await waitFor(() => seen.length >= 2 && s.requests.filter((r) => r.url.endsWith('since=3')).length >= 3);
    expect(lines.filter((l) => l.level === 'warn')).to.deep.equal([]);
    slot.failWith = new Error('store unavailable');
    const polled = s.requests.length;
    await waitFor(() => s.requests.length >= polled + 5);
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).to.have.length(1);
    expect(warnings[0]!.message).to.contain('Could not save the poll state').and.to.contain('store unavailable');
    slot.failWith = undefined;
    ids.push(3);
    await waitFor(() => seen.length >= 3 && (slot.latest as { cursor?: number } | undefined)?.cursor === 4, { message: 'the cursor after item 3 saved' });
    expect(lines.some((l) => l.level === 'info' && l.message.includes('works again'))).to.equal(true);
  });

  it('saves nothing and reads nothing without master: (no slot)', async () => {
    const s = await server(sinceApi([1, 2]));
    const seen: number[] = [];
    const { endpoint } = await poller(`http-poll:${s.url}/events?since=0&${FAST}&${SINCE}`, undefined, (ex) => void seen.push((ex.body as { id: number }).id));
    await waitFor(() => seen.length >= 2);
    expect(endpoint.cursor).to.equal(3);
  });
});
