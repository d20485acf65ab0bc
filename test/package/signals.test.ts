import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileLockStore } from '../../lib/cluster/file/file-lock-store.ts';
import { CLI, ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

const RELAUNCH = fileURLToPath(new URL('../../bin/relaunch.mjs', import.meta.url));

/**
 * Every documented way to run dromedary stops gracefully, releasing its lock, on one SIGTERM, and on a
 * terminal's Ctrl-C (SIGINT to the whole foreground process group: each process in it gets one).
 * The process under test gets its own process group here, as a terminal's foreground job would.
 */
describe('stopping dromedary through npm and a relaunch', function () {
  this.timeout(60_000);
  let dir: string;
  const processes: ProcessHandle[] = [];
  const pids: number[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-signals-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    await writeFile(join(dir, 'routes', 'hello.mjs'), "import { from } from 'dromedary';\nfrom('master:lock1:timer:clock?period=100&delay=0').log('Hello World!');\n");
  });

  afterEach(async () => {
    for (const p of processes.splice(0)) {
      if (p.running) process.kill(-p.pid, 'SIGKILL');
      await p.exited;
    }
    for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  function alive(pid: number): boolean {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  function start(command: string, args: string[]): ProcessHandle {
    const child = spawn(command, args, {
      cwd: dir,
      detached: true,
      env: { ...process.env, NO_COLOR: '1', DROMEDARY_CLUSTER_ROOT: join(dir, '.locks'), DROMEDARY_LOG_LEVEL: 'debug', npm_config_update_notifier: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new ProcessHandle(child);
    processes.push(p);
    return p;
  }

  /** The pid of the dromedary process itself, from its member id (host name and pid). */
  async function memberPid(p: ProcessHandle): Promise<number> {
    const line = await p.waitForLine(/Cluster service file started as member \S+-\d+/, 20_000);
    const pid = Number(/-(\d+)\s*$/.exec(line)![1]);
    pids.push(pid);
    return pid;
  }

  async function expectGracefulStop(p: ProcessHandle, signal: string) {
    await waitFor(() => p.count(/dromedary stopped/) > 0, { timeout: 20_000, message: () => `a graceful stop; output:\n${p.output}` });
    expect(p.count(new RegExp(`Received ${signal}: shutting down`)), p.output).to.equal(1);
    expect(p.output, 'not a forced exit').not.to.match(/exiting without waiting/);
    expect(p.output).to.match(/released lock1/);
    const record = await new FileLockStore(join(dir, '.locks')).get('lock1');
    expect(record?.record.holderIdentity, 'lock1 is released').to.equal('');
  }

  it('relaunched on another Node: a Ctrl-C to the whole group reaches the CLI once', async () => {
    await writeFile(join(dir, 'launcher.mjs'), `import { relaunch } from ${JSON.stringify(RELAUNCH)};\nprocess.exit(await relaunch(process.execPath, [${JSON.stringify(CLI)}, 'run']));\n`);
    const p = start(process.execPath, ['launcher.mjs']);
    await memberPid(p);
    await p.waitForLine(/Hello World!/);
    process.kill(-p.pid, 'SIGINT');
    expect((await p.exited).code, p.output).to.equal(0);
    await expectGracefulStop(p, 'SIGINT');
    expect(p.output, 'one delivery').not.to.match(/delivered twice/);
  });

  it('relaunched on another Node: when the launcher is killed outright, the CLI stops gracefully', async () => {
    await writeFile(join(dir, 'launcher.mjs'), `import { relaunch } from ${JSON.stringify(RELAUNCH)};\nprocess.exit(await relaunch(process.execPath, [${JSON.stringify(CLI)}, 'run']));\n`);
    const p = start(process.execPath, ['launcher.mjs']);
    const pid = await memberPid(p);
    await p.waitForLine(/Hello World!/);
    p.signal('SIGKILL');
    await waitFor(() => !alive(pid), { timeout: 20_000, message: () => `pid ${pid} to exit; output:\n${p.output}` });
    await expectGracefulStop(p, 'SIGTERM');
  });

  describe('npm start and npx', () => {
    // A project like this one: its start script, this copy of dromedary as its dependency.
    beforeEach(async () => {
      const pkg = { name: 'app', private: true, type: 'module', scripts: { start: 'exec dromedary run routes' } };
      await writeFile(join(dir, 'package.json'), JSON.stringify(pkg));
      await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true });
      // The bin as npm links it; `node` is the Node running the tests, as the project's `node` package provides it.
      await writeFile(join(dir, 'node_modules', '.bin', 'dromedary'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
    });

    it('SIGTERM to npm alone (a container stop) stops the CLI gracefully', async () => {
      const p = start('npm', ['start']);
      await memberPid(p);
      await p.waitForLine(/Hello World!/);
      p.signal('SIGTERM');
      await p.exited;
      await expectGracefulStop(p, 'SIGTERM');
    });

    it('a Ctrl-C (SIGINT to npm and the CLI, which npm forwards too) stops it gracefully, not forced', async () => {
      const p = start('npm', ['start']);
      await memberPid(p);
      await p.waitForLine(/Hello World!/);
      process.kill(-p.pid, 'SIGINT');
      await p.exited;
      await expectGracefulStop(p, 'SIGINT');
    });

    it('npx dromedary run: SIGTERM to npm, which only its shell gets, stops the CLI gracefully', async () => {
      const p = start('npx', ['--no-install', 'dromedary', 'run']);
      const pid = await memberPid(p);
      await p.waitForLine(/Hello World!/);
      p.signal('SIGTERM');
      // The CLI polls for its parent each second; then a graceful stop.
      await waitFor(() => !alive(pid), { timeout: 20_000, message: () => `pid ${pid} to exit; output:\n${p.output}` });
      await expectGracefulStop(p, 'SIGTERM');
    });
  });
});
