import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';

/** The CLI told a port that is taken, or a file it cannot write: the option and the fix, no stack trace. */
describe('dromedary with a port in use or a path it cannot write (end to end)', function () {
  this.timeout(30_000);
  let dir: string;
  let taken: Server;
  let port: number;
  const processes: ProcessHandle[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-ports-'));
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as { port: number }).port;
  });

  afterEach(async () => {
    for (const p of processes.splice(0)) await p.stop();
    await new Promise((resolve) => taken.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  async function fails(args: string[]): Promise<ProcessHandle> {
    const p = spawnCli(args, { cwd: dir, env: { DROMEDARY_CLUSTER_ROOT: join(dir, 'locks') } });
    processes.push(p);
    const { code } = await p.exited;
    expect(code, p.output).to.equal(1);
    expect(p.output).not.to.match(/^\s+at /m);
    expect(p.output).not.to.contain('node:');
    return p;
  }

  it('kube-api --port in use names the flag and the fix', async () => {
    const p = await fails(['kube-api', '--port', String(port), '--kubeconfig', join(dir, 'k.yaml')]);
    expect(p.output).to.contain(`dromedary: --port ${port} is in use by another process (127.0.0.1:${port}): stop that process, or choose another port (0 picks a free one)`);
  });

  it('kube-api --kubeconfig in a missing folder says the folder does not exist', async () => {
    const path = join(dir, 'no-such-folder', 'k.yaml');
    const p = await fails(['kube-api', '--port', '0', '--kubeconfig', path]);
    expect(p.output).to.contain(`dromedary: --kubeconfig ${path} cannot be written (ENOENT): its folder does not exist`);
  });

  it('run --health-port in use names the flag and the fix', async () => {
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    await writeFile(join(dir, 'routes', 'r.mjs'), "export default (r) => r.from('direct:a');\n");
    const p = await fails(['run', '--health-port', String(port)]);
    expect(p.output).to.contain(`Startup failed: --health-port (or DROMEDARY_HEALTH_PORT) ${port} is in use by another process (127.0.0.1:${port})`);
  });
});
