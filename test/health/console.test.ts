import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { launchChromium } from '../support/chromium.ts';
import { json, startHttpServer, type TestServer } from '../support/http-server.ts';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

/** Where the screenshot is kept after the run (ignored by git), for people and CI to look at. */
const ARTIFACTS = fileURLToPath(new URL('../../.tmp/artifacts/', import.meta.url));

interface Shown {
  member: string;
  status: string;
  routes: string[][];
  locks: string[][];
  endpoints: string[][];
}

/** What the page shows now, as text: the header, the status line and each table's cells. */
function shown(page: Page): Promise<Shown> {
  // A string, run in the page: the tests compile without the DOM library.
  return page.evaluate(`(() => {
    const rows = (id) => [...document.querySelectorAll('#' + id + ' tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
    return {
      member: document.getElementById('member').textContent,
      status: document.getElementById('status').textContent,
      routes: rows('routes'),
      locks: rows('locks'),
      endpoints: rows('endpoints'),
    };
  })()`) as Promise<Shown>;
}

describe('the web console at / on the health port (real members, real browser)', function () {
  this.timeout(120_000);
  let dir: string;
  let supervisor: ProcessHandle | undefined;
  let browser: Browser | undefined;
  let api: TestServer | undefined;

  before(async () => {
    browser = await launchChromium();
    // The API an http-poll route polls: the console shows the endpoint's own counts.
    api = await startHttpServer((_req, res) => json(res, 200, [{ id: 1 }, { id: 2 }]));
  });

  after(async () => {
    await browser?.close();
    await api?.close();
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-console-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    await writeFile(
      join(dir, 'routes', 'work.ts'),
      [
        "import { from } from 'dromedary';",
        "from('master:orders:timer:poll?period=200&delay=0').routeId('poll-orders').log('polled');",
        'let n = 0;',
        "from('timer:work?period=150&delay=0').routeId('work').process(() => {",
        "  if (++n % 3 === 0) throw new Error('every third exchange fails');",
        '});',
        `from('http-poll:${api!.url}/items?dromedary.split=true&dromedary.delay=200').routeId('items').to('log:items?level=debug');`,
        '',
      ].join('\n'),
    );
  });

  afterEach(async () => {
    await supervisor?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows routes with live counts and state, the lock with its leader and term, and the members; a screenshot is saved', async () => {
    supervisor = spawnCli(['run', 'routes', '--replicas', '2', '--member-id', 'web', '--health-port', '0'], {
      cwd: dir,
      env: { DROMEDARY_CLUSTER_ROOT: join(dir, 'locks'), DROMEDARY_LEASE_DURATION: '2s', DROMEDARY_RENEW_DEADLINE: '1300ms', DROMEDARY_RETRY_PERIOD: '200ms' },
    });
    const p = supervisor;
    // The leader of "orders" is the member that logs "polled"; open its console.
    const leaderLine = await p.waitForLine(/^web-\d \| .*polled/, 30_000);
    const leader = /^(web-\d)/.exec(leaderLine)![1]!;
    const urlOf = (member: string) =>
      waitFor(() => {
        const line = p.lines.find((l) => l.startsWith(`${member} | `) && l.includes('Health endpoints on http://'));
        return line && /(http:\/\/[\d.:]+)\/healthz/.exec(line)![1];
      });
    const url = await urlOf(leader);
    const follower = leader === 'web-1' ? 'web-2' : 'web-1';
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.setViewport({ width: 1000, height: 660 });
    const response = await page.goto(`${url}/`);
    expect(response!.status()).to.equal(200);
    expect(response!.headers()['content-security-policy']).to.contain("default-src 'none'");

    // Both members take part in the lock: the leader sees the other's heartbeats.
    const first = await waitFor(
      async () => {
        const s = await shown(page);
        const lock = s.locks.find((r) => r[0] === 'orders');
        return lock && lock[4]!.includes('web-1') && lock[4]!.includes('web-2') && s.routes.length === 3 && s;
      },
      { timeout: 20_000, message: 'the console to show the three routes and both members of "orders"' },
    );
    expect(first.member).to.equal(`· member ${leader} (file)`);
    expect(first.status).to.match(/^started · live, updated /);
    const orders = first.locks.find((r) => r[0] === 'orders')!;
    expect(orders[1]).to.equal(leader);
    expect(orders[2]).to.equal('leader');
    expect(Number(orders[3])).to.be.a('number').and.not.NaN;
    expect(orders[4]).to.contain(`${leader} (this)`);
    const work = first.routes.find((r) => r[0] === 'work')!;
    expect(work.slice(1, 3)).to.deep.equal(['timer:work?period=150&delay=0', 'started']);
    expect(first.routes.find((r) => r[0] === 'poll-orders')![2]).to.equal('started');

    // Live: the counts grow without a reload, failures included.
    const before = { completed: Number(work[3]), failed: Number(work[4]) };
    const later = await waitFor(
      async () => {
        const row = (await shown(page)).routes.find((r) => r[0] === 'work')!;
        return Number(row[3]) > before.completed && Number(row[4]) > before.failed && row;
      },
      { timeout: 10_000, message: 'the work route counts to grow on the page' },
    );
    expect(Number(later[4])).to.be.greaterThan(0);

    // The http-poll endpoint's own counts, live too.
    const endpoint = `http-poll:${api!.url}/items?dromedary.split=true&dromedary.delay=200`;
    const counts = (s: Shown) => {
      const row = s.endpoints.find((r) => r[0] === endpoint);
      const m = row && /^polls (\d+) · items (\d+) · failures 0 · backoff \(s\) 0$/.exec(row[1]!);
      return m ? { polls: Number(m[1]), items: Number(m[2]) } : undefined;
    };
    const polled = await waitFor(async () => counts(await shown(page)), { timeout: 10_000, message: 'the http-poll endpoint and its counts on the page' });
    expect(polled.items).to.be.at.least(2 * polled.polls - 2);
    await waitFor(async () => (counts(await shown(page))?.polls ?? 0) > polled.polls, { timeout: 10_000, message: 'the poll count to grow on the page' });

    // The follower's console shows the master: route on standby there, and the other member leading.
    const followerPage = await browser!.newPage();
    await followerPage.goto(`${await urlOf(follower)}/`);
    const atFollower = await waitFor(
      async () => {
        const s = await shown(followerPage);
        return s.routes.length === 3 && s.locks.length === 1 && s;
      },
      { timeout: 10_000, message: "the follower's console to fill" },
    );
    expect(atFollower.routes.find((r) => r[0] === 'poll-orders')![2]).to.equal('standby');
    expect(atFollower.routes.find((r) => r[0] === 'work')![2]).to.equal('started');
    expect(atFollower.locks[0]!.slice(0, 3)).to.deep.equal(['orders', leader, 'follower']);
    await followerPage.close();

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'console.png') });
    expect(errors).to.deep.equal([]);

    // The page says so when its member goes away.
    const pid = Number(new RegExp(`Started member ${leader} \\(pid (\\d+)\\)`).exec(p.output)![1]);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => (await shown(page)).status.startsWith('disconnected'), { timeout: 10_000, message: 'the page to show it is disconnected' });
    await page.close();
  });
});
