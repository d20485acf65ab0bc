/**
 * A real etcd for tests: Debian's etcd-server started in a temp folder on free loopback ports,
 * stopped by PID. restart() keeps the data folder (leases survive, as on a real restart); pause()
 * and resume() SIGSTOP and SIGCONT it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureInstalled, freePort, ServerProcess, waitReady } from './local-server.ts';

const ETCD = '/usr/bin/etcd';
const ETCDCTL = '/usr/bin/etcdctl';
const execFileAsync = promisify(execFile);

export class EtcdServer {
  readonly dir: string;
  port = 0;
  #peerPort = 0;
  #proc: ServerProcess | undefined;

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'dromedary-etcd-'));
  }

  static async start(): Promise<EtcdServer> {
    ensureInstalled(ETCD, ['etcd-server', 'etcd-client']);
    const server = new EtcdServer();
    try {
      server.port = await freePort();
      server.#peerPort = await freePort();
      await server.#start();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.child.pid;
  }

  async #start(): Promise<void> {
    const client = this.endpoint;
    const peer = `http://127.0.0.1:${this.#peerPort}`;
    const name = 'dromedary-test';
    this.#proc = new ServerProcess(
      ETCD,
      [
        '--name', name, '--data-dir', join(this.dir, 'data'),
        '--listen-client-urls', client, '--advertise-client-urls', client,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `${name}=${peer}`, '--initial-cluster-state', 'new',
        '--listen-metrics-urls', '', '--logger', 'zap', '--log-outputs', join(this.dir, 'etcd.log'),
      ],
      { cwd: this.dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH }, logFile: join(this.dir, 'stdout.log') },
    );
    await waitReady('etcd', this.#proc, () => this.#healthy());
  }

  async #healthy(): Promise<boolean> {
    await execFileAsync(ETCDCTL, [`--endpoints=${this.endpoint}`, '--command-timeout=1s', 'endpoint', 'health'], { env: { ETCDCTL_API: '3' }, timeout: 3000 });
    return true;
  }

  /** etcdctl against this server (for inspection and faults such as deleting a key). */
  async ctl(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(ETCDCTL, [`--endpoints=${this.endpoint}`, '--command-timeout=3s', ...args], { env: { ETCDCTL_API: '3' }, timeout: 10_000 });
    return stdout;
  }

  /** SIGTERM, then a start on the same data folder and ports; resolves once healthy again. */
  async restart(onStopped?: () => void): Promise<void> {
    await this.#proc?.stop();
    onStopped?.();
    await this.#start();
  }

  pause(): void {
    this.#proc?.signal('SIGSTOP');
  }

  resume(): void {
    this.#proc?.signal('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.#proc?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
