import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProcessHandle } from '../support/cli-process.ts';
import { PROJECT, installedApp, installedVersion, npm } from './packed-install.ts';

const run = promisify(execFile);

/**
 * The package as a user gets it: `npm pack` (which builds dist/), the tarball installed into a fresh app,
 * and that app using it from plain JavaScript, from strict TypeScript compiled by tsc, and through its CLI.
 */
describe('the npm package (packed and installed into an app)', function () {
  // npm pack runs the build; npm install reads the npm cache. Both are slow on a busy 2-core machine.
  this.timeout(180_000);
  let work: string;
  let app: string;
  let files: string[];
  const processes: ProcessHandle[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dromedary-pack-'));
    const out = await npm(['pack', '--json', '--pack-destination', work], PROJECT);
    const [info] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    files = info!.files.map((f) => f.path);
    app = await installedApp(join(work, info!.filename), [await installedVersion('@types/node')]);
  });

  after(async () => {
    for (const p of processes.splice(0)) await p.stop();
    await rm(work, { recursive: true, force: true });
    if (app) await rm(app, { recursive: true, force: true });
  });

  async function node(args: string[], cwd = app) {
    return run(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1' } });
  }

  it('holds compiled JavaScript with types and source maps, the bin and the LICENSE, and no TypeScript sources', () => {
    expect(files).to.include.members([
      'LICENSE',
      'README.md',
      'package.json',
      'bin/dromedary.mjs',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      'dist/cli/main.js',
      'dist/health/console.html',
    ]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).to.deep.equal([]);
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('lib/'))).to.deep.equal([]);
  });

  it('works from a plain JavaScript app: a Context with routes, and dromedary/testing', async () => {
    await writeFile(
      join(app, 'plain.js'),
      `import { Context, from } from 'dromedary';
import { startKubeApiServer } from 'dromedary/testing';
const context = new Context();
await context.addRoutes((r) => r.from('direct:greet').setBody('Hello \${body}'));
await context.start();
const reply = await context.createProducerTemplate().requestBody('direct:greet', 'Ann');
await context.stop();
const server = await startKubeApiServer();
const url = server.url;
await server.close();
console.log(JSON.stringify({ reply, from: typeof from, url: url.startsWith('http') }));
`,
    );
    const { stdout } = await node(['plain.js']);
    expect(JSON.parse(stdout)).to.deep.equal({ reply: 'Hello Ann', from: 'function', url: true });
  });

  it('type-checks and runs in a strict TypeScript app compiled by tsc (module nodenext)', async () => {
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', strict: true, outDir: 'out', types: ['node'], skipLibCheck: false },
        include: ['typed.ts'],
      }),
    );
    await writeFile(
      join(app, 'typed.ts'),
      `import { Context, Exchange, type RouteBuilder, type Logger } from 'dromedary';
import { startKubeApiServer, type KubeApiServer } from 'dromedary/testing';
const logger: Logger | undefined = undefined;
const context = new Context({ logger });
await context.addRoutes((r: RouteBuilder) => r.from('direct:len').process((e: Exchange) => { e.message.body = String(e.message.body).length; }));
await context.start();
const reply: unknown = await context.createProducerTemplate().requestBody('direct:len', 'four');
await context.stop();
const server: KubeApiServer = await startKubeApiServer();
await server.close();
console.log(JSON.stringify({ reply }));
`,
    );
    const tsc = join(PROJECT, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      await node([tsc, '-p', '.']);
    } catch (err) {
      throw new Error(`tsc failed against the installed package:\n${(err as { stdout?: string }).stdout ?? String(err)}`);
    }
    const { stdout } = await node([join('out', 'typed.js')]);
    expect(JSON.parse(stdout)).to.deep.equal({ reply: 4 });
  });

  it("runs TypeScript and JavaScript route files with the installed CLI, importing the app's dromedary", async () => {
    await writeFile(
      join(app, 'routes', 'hello.ts'),
      "import { from, type Exchange } from 'dromedary';\nconst greeting: string = 'Hello from TS';\nfrom('timer:t?period=50&delay=0').process((e: Exchange) => { e.message.body = greeting; }).log('${body}');\n",
    );
    await writeFile(join(app, 'routes', 'plain.mjs'), "export default (r) => { r.from('timer:j?period=50&delay=0').log('Hello from JS'); };\n");
    const child = spawn(process.execPath, [join(app, 'node_modules', '.bin', 'dromedary'), 'run', '--cluster', 'none'], {
      cwd: app,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new ProcessHandle(child);
    processes.push(p);
    await p.waitForLine(/Hello from TS/);
    await p.waitForLine(/Hello from JS/);
    p.signal('SIGTERM');
    expect((await p.exited).code, p.output).to.equal(0);
  });

  it("its CLI loads JavaScript route files, TypeScript ones without types, and its own compiled library without Node's TypeScript stripper (amaro)", async () => {
    await mkdir(join(app, 'js-routes'), { recursive: true });
    await writeFile(
      join(app, 'js-routes', 'a.mjs'),
      "import { from } from 'dromedary';\nfrom('timer:a?delay=0&repeatCount=1').process(() => console.log('ts loader: ' + process.moduleLoadList.some((m) => /amaro/.test(m))));\n",
    );
    // A .ts file with no TypeScript syntax in it needs no stripper either.
    await writeFile(join(app, 'js-routes', 'b.ts'), "import { from } from 'dromedary';\nfrom('timer:b?delay=0&period=50').log('type-free TypeScript');\n");
    const child = spawn(process.execPath, [join(app, 'node_modules', '.bin', 'dromedary'), 'run', 'js-routes', '--cluster', 'none'], {
      cwd: app,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new ProcessHandle(child);
    processes.push(p);
    await p.waitForLine(/type-free TypeScript/);
    await p.waitForLine(/ts loader: false/);
    p.signal('SIGTERM');
    expect((await p.exited).code, p.output).to.equal(0);
  });

  it('serves the health endpoints and the web console from the installed CLI (--health-port)', async () => {
    await mkdir(join(app, 'health-routes'), { recursive: true });
    await writeFile(join(app, 'health-routes', 'a.mjs'), "import { from } from 'dromedary';\nfrom('timer:h?delay=0&period=1000').log('tick');\n");
    const child = spawn(process.execPath, [join(app, 'node_modules', '.bin', 'dromedary'), 'run', 'health-routes', '--cluster', 'none', '--health-port', '0'], {
      cwd: app,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new ProcessHandle(child);
    processes.push(p);
    const line = await p.waitForLine(/Health endpoints on http:\/\/\S+\/healthz/);
    const base = /(http:\/\/[^/\s]+)\/healthz/.exec(line)![1]!;
    expect((await fetch(`${base}/healthz`)).status).to.equal(200);
    // The console's page is a file beside the compiled module, which the build must ship.
    const page = await fetch(`${base}/`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('<script>');
    p.signal('SIGTERM');
    expect((await p.exited).code, p.output).to.equal(0);
  });

  it('runs a clustered Hello World without loading what it does not use (Kubernetes client, prom-client, amqplib, ...)', async () => {
    await mkdir(join(app, 'lean-routes'), { recursive: true });
    // Every module the process loads (import or require), seen by a hook installed before the CLI starts.
    await writeFile(
      join(app, 'record-loads.mjs'),
      "import { registerHooks } from 'node:module';\nglobalThis.loadedUrls = [];\nregisterHooks({ load(url, context, next) { globalThis.loadedUrls.push(url); return next(url, context); } });\n",
    );
    await writeFile(
      join(app, 'lean-routes', 'hello.mjs'),
      "import { from } from 'dromedary';\nfrom('master:lean:timer:clock?delay=0&period=200').log('Hello World!').process(() => console.log('loaded: ' + JSON.stringify(globalThis.loadedUrls)));\n",
    );
    const child = spawn(process.execPath, ['--import', './record-loads.mjs', join(app, 'node_modules', '.bin', 'dromedary'), 'run', 'lean-routes'], {
      cwd: app,
      env: { ...process.env, NO_COLOR: '1', DROMEDARY_CLUSTER_ROOT: join(work, 'lean-locks') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new ProcessHandle(child);
    processes.push(p);
    const line = await p.waitForLine(/^loaded: /);
    const urls = JSON.parse(line.slice('loaded: '.length)) as string[];
    expect(urls.some((u) => u.includes('/node_modules/dromedary/dist/')), 'the hook sees the library').to.equal(true);
    expect(urls.some((u) => u.includes('/node_modules/winston/')), 'the hook sees packages it uses').to.equal(true);
    const unused = ['@kubernetes/client-node', 'prom-client', 'amqplib', 'axios', 'etcd3', 'pg', 'node-zookeeper-client', 'node-cron'];
    expect(unused.filter((name) => urls.some((u) => u.includes(`/node_modules/${name}/`)))).to.deep.equal([]);
    p.signal('SIGTERM');
    expect((await p.exited).code, p.output).to.equal(0);
  });
});
