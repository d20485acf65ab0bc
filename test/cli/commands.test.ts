import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileLockStore } from '../../lib/cluster/file/file-lock-store.ts';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

describe('dromedary commands, options and route loading (end to end)', function () {
  this.timeout(60_000);
  let dir: string;
  const processes: ProcessHandle[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-cmd-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
  });

  afterEach(async () => {
    for (const p of processes.splice(0)) await p.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function run(args: string[], env?: Record<string, string>) {
    const p = spawnCli(args, { cwd: dir, env: { DROMEDARY_CLUSTER_ROOT: join(dir, '.locks'), ...env } });
    processes.push(p);
    return p;
  }

  async function routes(files: Record<string, string>) {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'routes', name), text);
  }

  describe('help and options', () => {
    for (const args of [['run', '--help'], ['help', 'run'], ['run', '-h'], ['--help', 'run']]) {
      it(`dromedary ${args.join(' ')} prints run's options`, async () => {
        const p = run(args);
        expect((await p.exited).code).to.equal(0);
        expect(p.output).to.contain('Usage: dromedary run [paths...] [options]');
        expect(p.output).to.contain('--shutdown-timeout');
        expect(p.output).not.to.contain('--kubeconfig');
      });
    }

    it("dromedary kube-api --help prints kube-api's options", async () => {
      const p = run(['kube-api', '--help']);
      expect((await p.exited).code).to.equal(0);
      expect(p.output).to.contain('Usage: dromedary kube-api');
      expect(p.output).to.contain('--kubeconfig');
      expect(p.output).not.to.contain('--replicas');
    });

    it("refuses an option the command does not take (run --port), naming it and the command's help", async () => {
      const p = run(['run', '--port', '8080']);
      expect((await p.exited).code).to.equal(2);
      expect(p.output).to.match(/run: Unknown option '--port'/);
      expect(p.output).to.contain('dromedary run --help');
      const k = run(['kube-api', '--replicas', '2']);
      expect((await k.exited).code).to.equal(2);
      expect(k.output).to.match(/kube-api: Unknown option '--replicas'/);
    });

    it('accepts --log-level trace, the level .log() takes, and shows trace lines', async () => {
      await routes({ 'r.mjs': "import { from } from 'dromedary';\nfrom('timer:t?delay=0&period=50').log('trace', 'fine detail');\n" });
      const p = run(['run', '--log-level', 'trace', '--cluster', 'none']);
      await p.waitForLine(/SILLY .*fine detail/);
    });

    it('reads the properties file from DROMEDARY_PROPERTIES when --properties is not given', async () => {
      await writeFile(join(dir, 'app.properties'), 'timer.name = from-the-environment\n');
      await routes({
        'r.mjs': "import { from } from 'dromedary';\nfrom('timer:{{timer.name}}?delay=0&period=50&includeMetadata=true').log('fired ${exchangeProperty.CamelTimerName}');\n",
      });
      const p = run(['run', '--cluster', 'none'], { DROMEDARY_PROPERTIES: 'app.properties' });
      await p.waitForLine(/fired from-the-environment/);
    });
  });

  describe('running', () => {
    it('stays up with only direct: routes and a finished timer, until stopped', async () => {
      await routes({
        'r.mjs': "import { from } from 'dromedary';\nfrom('timer:once?repeatCount=1&delay=0').log('the only tick');\nfrom('direct:idle').log('never');\n",
      });
      const p = run(['run', '--cluster', 'none']);
      await p.waitForLine(/the only tick/);
      // Before, the process ended as soon as the timer finished: exit 13, "unsettled top-level await".
      const ended = await Promise.race([p.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1500))]);
      expect(ended, p.output).to.equal(false);
      p.signal('SIGTERM');
      expect((await p.exited).code, p.output).to.equal(0);
    });

    it('a closed stdout (dromedary run | head -2) stops it gracefully and releases its lock', async () => {
      await routes({ 'r.mjs': "import { from } from 'dromedary';\nfrom('master:lock1:timer:t?period=20&delay=0').log('tick');\n" });
      const p = run(['run']);
      await p.waitForLine(/tick/);
      p.child.stdout!.destroy();
      const { code } = await p.exited;
      expect(code, p.output).to.equal(0);
      expect(p.output).not.to.match(/EPIPE|Unhandled/);
      const record = await new FileLockStore(join(dir, '.locks')).get('lock1');
      expect(record?.record.holderIdentity, 'lock1 released').to.equal('');
    });

    it('a stop signal repeated at once counts as one stop; a later one still forces the exit', async () => {
      // The shutdown waits for an in-flight exchange that only ends when the process is forced out.
      await routes({
        'r.mjs': "import { from } from 'dromedary';\nfrom('timer:t?delay=0&repeatCount=1').log('working').process(() => new Promise(() => {}));\n",
      });
      const p = run(['run', '--cluster', 'none', '--shutdown-timeout', '60s']);
      await p.waitForLine(/working/);
      // Twice at once, as a terminal's Ctrl-C under `npm start` arrives (see test/package/signals.test.ts).
      p.signal('SIGINT');
      p.signal('SIGINT');
      await p.waitForLine(/Received SIGINT: shutting down/);
      // Past the 500 ms in which a repeat counts as the same stop (plus a margin), a second Ctrl-C forces the exit.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(p.running, p.output).to.equal(true);
      p.signal('SIGINT');
      expect((await p.exited).code).to.equal(130);
      expect(p.count(/Received SIGINT: shutting down/)).to.equal(1);
      expect(p.output).to.contain('exiting without waiting');
    });
  });

  describe('route files', () => {
    it('loads TypeScript route files with types, `import type`, and relative imports written ./x.js or ./x', async () => {
      await routes({
        '_greeting.ts': "export const greeting: string = 'typed hello';\n",
        '_suffix.ts': 'export function suffix(n: number): string { return `#${n}`; }\n',
        // Without TypeScript syntax of its own, so it is loaded as JavaScript first.
        'plain.ts': "import { from } from 'dromedary';\nimport { greeting } from './_greeting.js';\nfrom('timer:p?delay=0&period=50').log(`plain ${greeting}`);\n",
        'r.ts':
          "import { from, type Exchange } from 'dromedary';\nimport { greeting } from './_greeting.js';\nimport { suffix } from './_suffix';\ninterface Shape { n: number }\nconst s: Shape = { n: 1 };\nfrom('timer:t?delay=0&period=50').process((e: Exchange) => { e.message.body = greeting + suffix(s.n); }).log('${body}');\n",
      });
      const p = run(['run', '--cluster', 'none']);
      await p.waitForLine(/typed hello#1/);
      await p.waitForLine(/plain typed hello/);
    });

    it('reads type arguments as TypeScript, though `get<string>(x)` would parse as JavaScript comparisons', async () => {
      await routes({
        'r.ts': "import { from } from 'dromedary';\nfrom('timer:t?delay=0&period=50').setHeader('h', 'v1').process((e) => { e.message.body = e.message.getHeader<string>('h'); }).log('header ${body}');\n",
      });
      const p = run(['run', '--cluster', 'none']);
      await p.waitForLine(/header v1/);
    });

    it('works with a read-only temp folder: nothing is written there', async () => {
      // Root ignores permissions, so a temp "folder" that is a file makes every write there fail.
      const notADir = join(dir, 'tmp-file');
      await writeFile(notADir, '');
      await routes({ 'r.ts': "import { from } from 'dromedary';\nconst n: number = 2;\nfrom('timer:t?delay=0&period=50').log(`read-only ok ${n}`);\n" });
      const p = run(['run'], { TMPDIR: notADir, TEMP: notADir, TMP: notADir });
      await p.waitForLine(/read-only ok 2/);
    });

    const failures: [string, string, RegExp][] = [
      ['a type imported without `type`', "import { from, Logger } from 'dromedary';\nfrom('direct:x');\n", /export named 'Logger'.*import type \{ Logger \}/],
      ['an enum', "import { from } from 'dromedary';\nenum Color { Red }\nfrom('direct:x');\n", /enum.*erasable syntax only: replace enums/],
    ];
    for (const [what, text, expected] of failures) {
      it(`a TypeScript route file with ${what} fails with the file, the cause and the fix`, async () => {
        await routes({ 'r.ts': text });
        const p = run(['run', '--cluster', 'none']);
        expect((await p.exited).code, p.output).to.equal(1);
        expect(p.output).to.match(/Failed to load route file routes\/r\.ts/);
        expect(p.output).to.match(expected);
        expect(p.output).not.to.match(/^\s+at /m);
      });
    }
  });
});
