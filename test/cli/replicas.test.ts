import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

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
});
