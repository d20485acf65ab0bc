import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';
import { restartBackoff } from '../../lib/cli/replicas.ts';

describe('dromedary run --replicas (end to end)', function () {
  this.timeout(60_000);
  let dir: string;
  let supervisor: ProcessHandle | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-replicas-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    await writeFile(join(dir, 'routes', 'hello.ts'), "import { from } from 'dromedary';\nfrom('master:lock1:timer:clock?period=100&delay=0').log('Hello World!');\n");
  });

  afterEach(async () => {
    await supervisor?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const memberOf = (line: string) => /^(\S+) \| /.exec(line)?.[1];

  it('starts 3 prefixed members, only one says Hello World, it moves when that member is killed, and SIGINT stops all', async () => {
    supervisor = spawnCli(['run', 'routes', '--replicas', '3', '--member-id', 'demo'], {
      cwd: dir,
      env: { DROMEDARY_CLUSTER_ROOT: join(dir, 'locks'), DROMEDARY_LEASE_DURATION: '1200ms', DROMEDARY_RENEW_DEADLINE: '800ms', DROMEDARY_RETRY_PERIOD: '150ms' },
    });
    const p = supervisor;
    await waitFor(() => p.count(/Hello World!/) >= 5, { timeout: 20_000, message: `Hello World from a member:\n${p.output}` });
    const speakers = new Set(p.lines.filter((l) => l.includes('Hello World!')).map(memberOf));
    expect(speakers.size).to.equal(1);
    const first = [...speakers][0]!;
    expect(['demo-1', 'demo-2', 'demo-3']).to.include(first);
    for (const m of ['demo-1', 'demo-2', 'demo-3']) expect(p.lines.some((l) => l.startsWith(`${m} | `))).to.equal(true);

    const pidLine = p.lines.find((l) => l.includes(`Started member ${first} (pid`))!;
    const pid = Number(/\(pid (\d+)\)/.exec(pidLine)![1]);
    const before = p.lines.length;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => p.lines.slice(before).some((l) => l.includes('Hello World!') && memberOf(l) !== first), { timeout: 15_000 });
    await p.waitForLine(new RegExp(`Member ${first} exited \\(signal SIGKILL\\); starting it again`));
    await waitFor(() => p.lines.filter((l) => l.startsWith(`${first} | `) && l.includes('started 1 route')).length === 2, {
      message: `${first} to start again`,
    });

    p.signal('SIGINT');
    const { code } = await p.exited;
    expect(code).to.equal(0);
    expect(p.output).to.contain('Received SIGINT: stopping 3 members');
    expect(p.count(/dromedary stopped/)).to.equal(3);
  });

  const clusterEnv = () => ({
    DROMEDARY_CLUSTER_ROOT: join(dir, 'locks'),
    DROMEDARY_LEASE_DURATION: '1200ms',
    DROMEDARY_RENEW_DEADLINE: '800ms',
    DROMEDARY_RETRY_PERIOD: '150ms',
  });
  /** The ISO time a text log line starts with, in ms. */
  const timeOf = (line: string) => Date.parse(/(\d{4}-\d\d-\d\dT[\d:.]+Z)/.exec(line)![1]!);

  it('restarts a crashing member after 1 s, 2 s, 4 s …: an exponential back-off it announces', async () => {
    await writeFile(join(dir, 'routes', 'crash.ts'), "setTimeout(() => process.exit(3), 100);\n");
    supervisor = spawnCli(['run', 'routes', '--replicas', '1', '--member-id', 'bo'], { cwd: dir, env: clusterEnv() });
    const p = supervisor;
    // Each restart waits its back-off plus a member's start-up (a few seconds on a busy machine).
    await p.waitForLine(/Member bo-1 exited \(code 3\); starting it again in 4s \(restart #3, back-off after 3 exits in a row\)/, 40_000);
    const exits = p.lines.filter((l) => /Member bo-1 exited \(code 3\)/.test(l));
    expect(exits[0]).to.match(/starting it again in 1s \(restart #1\)$/);
    expect(exits[1]).to.match(/starting it again in 2s \(restart #2, back-off after 2 exits in a row\)$/);
    // The supervisor waited at least the announced delay before each start (its own timestamps).
    const starts = p.lines.filter((l) => /Started member bo-1 \(pid/.test(l));
    expect(starts.length).to.be.greaterThanOrEqual(3);
    expect(timeOf(starts[1]!) - timeOf(exits[0]!)).to.be.greaterThanOrEqual(1000 - 5);
    expect(timeOf(starts[2]!) - timeOf(exits[1]!)).to.be.greaterThanOrEqual(2000 - 5);
  });

  it('starts a member that exited cleanly (SIGTERM) again too, as restartPolicy: Always does', async () => {
    supervisor = spawnCli(['run', 'routes', '--replicas', '2', '--member-id', 'ca'], { cwd: dir, env: clusterEnv() });
    const p = supervisor;
    await waitFor(() => p.count(/^ca-\d \| .*started 1 route/) === 2, { timeout: 20_000, message: () => `both members to start:\n${p.output}` });
    const pid = Number(/Started member ca-1 \(pid (\d+)\)/.exec(p.output)![1]);
    process.kill(pid, 'SIGTERM');
    await p.waitForLine(/Member ca-1 exited \(code 0\); starting it again in 1s \(restart #1\)$/);
    await waitFor(() => p.count(/^ca-1 \| .*started 1 route/) === 2, { timeout: 20_000, message: () => `ca-1 to start again:\n${p.output}` });
  });

  it('caps the back-off at 10 s', () => {
    expect([1, 2, 3, 4, 5, 6, 20].map((n) => restartBackoff(n, 1000, 10_000))).to.deep.equal([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  /** A port P with P and P+1 free on 127.0.0.1 now. */
  async function twoFreePorts(): Promise<number> {
    const tryListen = (port: number) =>
      new Promise<import('node:net').Server | undefined>((resolve) => {
        const server = createServer();
        server.once('error', () => resolve(undefined));
        server.listen(port, '127.0.0.1', () => resolve(server));
      });
    for (;;) {
      const first = (await tryListen(0))!;
      const port = (first.address() as import('node:net').AddressInfo).port;
      const second = port < 65535 ? await tryListen(port + 1) : undefined;
      await new Promise((r) => first.close(r));
      if (second) {
        await new Promise((r) => second.close(r));
        return port;
      }
    }
  }

  const getJson = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('--health-port P gives member i the port P+i-1, so every member serves its own probes', async () => {
    const port = await twoFreePorts();
    supervisor = spawnCli(['run', 'routes', '--replicas', '2', '--member-id', 'hp', '--health-port', String(port)], { cwd: dir, env: clusterEnv() });
    const p = supervisor;
    await p.waitForLine(new RegExp(`Health endpoints: member hp-1 on port ${port} … hp-2 on port ${port + 1}`));
    for (const [i, member] of [[0, 'hp-1'], [1, 'hp-2']] as const) {
      const leadership = await waitFor(() => getJson(`http://127.0.0.1:${port + i}/leadership`), { timeout: 20_000, message: `${member}'s health port:\n${p.output}` });
      expect(leadership.body.member).to.equal(member);
    }
    expect(p.output).not.to.match(/EADDRINUSE|exited \(code/);
  });

  it('--health-port 0 gives each member a free port of its own, which it prints', async () => {
    supervisor = spawnCli(['run', 'routes', '--replicas', '2', '--member-id', 'hz', '--health-port', '0'], { cwd: dir, env: clusterEnv() });
    const p = supervisor;
    const urls = await waitFor(
      () => {
        const found = ['hz-1', 'hz-2'].map((m) => p.lines.find((l) => l.startsWith(`${m} | `) && l.includes('Health endpoints on http://')));
        return found.every(Boolean) && found.map((l) => /(http:\/\/[\d.:]+)\/healthz/.exec(l!)![1]!);
      },
      { timeout: 20_000, message: () => `each member's health URL:\n${p.output}` },
    );
    expect(new Set(urls).size).to.equal(2);
    for (const [i, url] of urls.entries()) expect((await getJson(`${url}/leadership`)).body.member).to.equal(`hz-${i + 1}`);
  });

  it('--log-format json: every line is one JSON object with the member id as a field, a crash trace on stderr included', async () => {
    await writeFile(
      join(dir, 'routes', 'boom.ts'),
      "if (process.env.DROMEDARY_MEMBER_ID === 'js-2') setTimeout(() => { throw new Error('boom in js-2'); }, 200);\n",
    );
    supervisor = spawnCli(['run', 'routes', '--replicas', '2', '--member-id', 'js', '--log-format', 'json'], { cwd: dir, env: clusterEnv() });
    const p = supervisor;
    await waitFor(() => p.count(/Hello World!/) >= 3, { timeout: 20_000, message: () => `Hello World:\n${p.output}` });
    await p.waitForLine(/Member js-2 exited .*starting it again/, 20_000);
    p.signal('SIGINT');
    await p.exited;
    const entries = p.lines.filter((l) => l.trim() !== '').map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
    const speakers = new Set(entries.filter((e) => e.message === 'Hello World!').map((e) => e.member));
    expect([...speakers]).to.have.length.greaterThan(0);
    for (const speaker of speakers) expect(['js-1', 'js-2']).to.include(speaker);
    expect(entries.some((e) => e.member === 'js-2' && e.stream === 'stderr' && String(e.message).includes('boom in js-2'))).to.equal(true);
    // The supervisor's own lines are JSON too, and no line carries a text prefix.
    expect(entries.some((e) => String(e.message).startsWith('Started member js-1'))).to.equal(true);
    expect(entries.some((e) => String(e.message).startsWith('Received SIGINT: stopping 2 members'))).to.equal(true);
    expect(entries.every((e) => !/^js-\d \| /.test(String(e.message)))).to.equal(true);
  });

  it('refuses --health-port P whose last member port is beyond 65535, naming the fix', async () => {
    supervisor = spawnCli(['run', 'routes', '--replicas', '3', '--health-port', '65534'], { cwd: dir });
    const { code } = await supervisor.exited;
    expect(code).to.equal(1);
    expect(supervisor.output).to.contain('--health-port 65534 with --replicas 3 needs ports 65534 to 65536, beyond 65535: choose a lower port, or 0 for any free port');
  });
});
