import { expect } from 'chai';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';

describe('dromedary run (end to end)', function () {
  this.timeout(60_000);
  let dir: string;
  const processes: ProcessHandle[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-cli-'));
    // Like a user's project: ESM, but without dromedary installed, so the CLI's own copy is used.
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
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
    await mkdir(join(dir, 'routes'), { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(dir, 'routes', name, '..'), { recursive: true });
      await writeFile(join(dir, 'routes', name), text);
    }
  }

  it('runs top-level and default-export route files from ./routes, in a stable order, and exits 0 on SIGTERM', async () => {
    await routes({
      'b.ts': "import { from } from 'dromedary';\nfrom('timer:b?period=30&delay=0').routeId('b').log('tick ${exchangeProperty.CamelTimerCounter}');\n",
      'a.mjs': "export default (r) => { r.from('direct:a').routeId('a').log('a'); };\n",
      '_skipped.ts': "throw new Error('files starting with _ are not loaded');\n",
      'types.d.ts': 'export declare const x: number;\n',
      'nested/c.ts': "import { from } from 'dromedary';\nfrom('direct:c').routeId('c');\n",
    });
    const p = run(['run']);
    await p.waitForLine(/\[b\] tick 2/);
    const started = p.lines.filter((l) => /Started route/.test(l)).map((l) => /Started route (\w+)/.exec(l)![1]);
    expect(started).to.deep.equal(['a', 'b', 'c']);
    const t0 = performance.now();
    p.signal('SIGTERM');
    const { code } = await p.exited;
    expect(code).to.equal(0);
    expect(performance.now() - t0).to.be.below(2000);
    expect(p.output).to.contain('Received SIGTERM: shutting down');
  });

  it('exits 0 on SIGINT too', async () => {
    await routes({ 'r.ts': "import { from } from 'dromedary';\nfrom('timer:x?period=20&delay=0').log('hi');\n" });
    const p = run(['run', 'routes']);
    await p.waitForLine(/hi/);
    p.signal('SIGINT');
    expect((await p.exited).code).to.equal(0);
  });

  it('writes JSON lines with --log-format json', async () => {
    await routes({ 'r.ts': "import { from } from 'dromedary';\nfrom('timer:x?period=20&delay=0').routeId('j').log('json please');\n" });
    const p = run(['run', '--log-format', 'json']);
    const line = await p.waitForLine(/json please/);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed).to.include({ level: 'info', message: 'json please', route: 'j' });
    expect(parsed.timestamp).to.be.a('string');
  });

  it('prints help', async () => {
    const p = run(['--help']);
    expect((await p.exited).code).to.equal(0);
    expect(p.output).to.contain('dromedary run [paths...]');
  });

  describe('startup failures exit non-zero with the cause and no deep stack trace', () => {
    async function failsWith(files: Record<string, string>, expected: RegExp[]) {
      await routes(files);
      const p = run(['run']);
      const { code } = await p.exited;
      expect(code, p.output).to.equal(1);
      for (const e of expected) expect(p.output).to.match(e);
      expect(p.output).not.to.match(/^\s+at /m);
      return p;
    }

    it('a route file with a syntax error names the file and the line', async () => {
      await failsWith({ 'ok.ts': "import { from } from 'dromedary';\nfrom('direct:ok');\n", 'broken.ts': "import { from } from 'dromedary';\n\nfrom('direct:x').log('x'\n;\n" }, [
        /Failed to load route file routes\/broken\.ts:\d+/,
      ]);
    });

    it('a route file that throws names the file, the line and the error', async () => {
      await failsWith({ 'throws.ts': "const x = 1;\nthrow new Error('config missing');\n" }, [/Failed to load route file routes\/throws\.ts:2(:\d+)?: config missing/]);
    });

    it('an unknown option lists the valid ones', async () => {
      await failsWith({ 'r.ts': "import { from } from 'dromedary';\nfrom('timer:x?periodd=5').log('x');\n" }, [
        /Unknown parameters=\[\{periodd=5\}\]/,
        /Valid options for timer: delay, fixedRate, includeMetadata, period, repeatCount/,
      ]);
    });

    it('an unknown scheme lists the components', async () => {
      await failsWith({ 'r.ts': "import { from } from 'dromedary';\nfrom('jms:queue:x').log('x');\n" }, [/no component found with scheme "jms"\. Available components: .*direct.*timer/]);
    });

    it('a malformed URI says what is wrong', async () => {
      await failsWith({ 'r.ts': "import { from } from 'dromedary';\nfrom('timer:x?period=1&period=2').log('x');\n" }, [/routes\/r\.ts:2/, /given more than once/]);
    });

    it('a bad expression names the route and the expression', async () => {
      await failsWith({ 'r.ts': "import { from } from 'dromedary';\nfrom('timer:x').routeId('exprs').setBody('${header.a');\n" }, [/Route exprs at routes\/r\.ts:2/, /\$\{header\.a/]);
    });

    it('duplicate route ids across files name both places', async () => {
      await failsWith(
        {
          'one.ts': "import { from } from 'dromedary';\nfrom('direct:a').routeId('dup');\n",
          'two.ts': "import { from } from 'dromedary';\n\nfrom('direct:b').routeId('dup');\n",
        },
        [/Duplicate route id "dup": defined at routes\/one\.ts:2 and at routes\/two\.ts:3/],
      );
    });

    it('a CommonJS route file is told to become an ES module', async () => {
      await writeFile(join(dir, 'package.json'), '{"type":"commonjs"}\n');
      await failsWith({ 'r.ts': "import { from } from 'dromedary';\nfrom('direct:x');\n" }, [/Route files are ES modules: add "type": "module"/]);
    });

    it('a folder with no route files says so', async () => {
      await mkdir(join(dir, 'routes'));
      const p = run(['run']);
      expect((await p.exited).code).to.equal(1);
      expect(p.output).to.contain('No route files found in routes');
    });

    it('an unknown flag exits 2 and points to --help', async () => {
      const p = run(['run', '--no-such-flag']);
      expect((await p.exited).code).to.equal(2);
      expect(p.output).to.contain('--help');
    });
  });
});

/** A GET over HTTPS trusting `ca` (fetch cannot be given a CA). */
function httpsGet(url: string, ca: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dromedary kube-api (end to end)', function () {
  this.timeout(30_000);
  it('serves the Kubernetes API on the given port, writes a kubeconfig, and stops on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dromedary-kubeapi-'));
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    const p = spawnCli(['kube-api', '--port', '0', '--namespace', 'demo', '--kubeconfig', kubeconfig]);
    try {
      const line = await p.waitForLine(/listening on https:\/\/127\.0\.0\.1:\d+/);
      const url = /(https:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]!;
      await p.waitForLine(/kubeconfig written to/);
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(kubeconfig, 'utf8');
      expect(text).to.contain(url);
      const token = /token: "([^"]+)"/.exec(text)![1]!;
      const ca = Buffer.from(/certificate-authority-data: "([^"]+)"/.exec(text)![1]!, 'base64').toString();
      expect((await import('node:fs')).statSync(kubeconfig).mode & 0o777).to.equal(0o600);
      const leases = `${url}/apis/coordination.k8s.io/v1/namespaces/demo/leases`;
      expect((await httpsGet(leases, ca)).status).to.equal(401);
      const response = await httpsGet(leases, ca, token);
      expect(response.status).to.equal(200);
      expect((JSON.parse(response.body) as { kind: string }).kind).to.equal('LeaseList');
      p.signal('SIGTERM');
      expect((await p.exited).code).to.equal(0);
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with --anonymous, serves requests without a token and writes none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dromedary-kubeapi-'));
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    const p = spawnCli(['kube-api', '--port', '0', '--anonymous', '--kubeconfig', kubeconfig]);
    try {
      const url = /(https:\/\/127\.0\.0\.1:\d+)/.exec(await p.waitForLine(/listening on https:\/\/127\.0\.0\.1:\d+/))![1]!;
      await p.waitForLine(/Anonymous access/);
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(kubeconfig, 'utf8');
      expect(text).not.to.contain('token:');
      const ca = Buffer.from(/certificate-authority-data: "([^"]+)"/.exec(text)![1]!, 'base64').toString();
      expect((await httpsGet(`${url}/api/v1/namespaces/default/configmaps`, ca)).status).to.equal(200);
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('dromedary run --health-port (end to end)', function () {
  this.timeout(30_000);
  it('serves liveness, readiness and leadership while running, on 127.0.0.1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dromedary-health-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    await writeFile(join(dir, 'routes', 'r.ts'), "import { from } from 'dromedary';\nfrom('master:lock1:timer:t?period=50&delay=0').routeId('guarded').log('tick');\n");
    const p = spawnCli(['run', '--health-port', '0', '--member-id', 'h1'], { cwd: dir, env: { DROMEDARY_CLUSTER_ROOT: join(dir, 'locks') } });
    try {
      const line = await p.waitForLine(/Health endpoints on http:\/\/127\.0\.0\.1:\d+/);
      const base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]!;
      await p.waitForLine(/\[guarded\] tick/);
      const health = await fetch(`${base}/healthz`);
      expect(health.status).to.equal(200);
      const ready = (await (await fetch(`${base}/readyz`)).json()) as { status: string; routes: Array<{ id: string }> };
      expect(ready.status).to.equal('UP');
      expect(ready.routes.map((r) => r.id)).to.deep.equal(['guarded']);
      const leadership = (await (await fetch(`${base}/leadership`)).json()) as { member: string; locks: Array<{ lock: string; leader: string; isLeader: boolean }> };
      expect(leadership.member).to.equal('h1');
      expect(leadership.locks).to.deep.include({ lock: 'lock1', leader: 'h1', isLeader: true, members: ['h1'] });
      expect((await fetch(`${base}/nope`)).status).to.equal(404);
      p.signal('SIGTERM');
      expect((await p.exited).code).to.equal(0);
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
