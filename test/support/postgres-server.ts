/**
 * A real PostgreSQL for tests: Debian's server binaries, a cluster made with initdb in a temp folder
 * (as the `postgres` user when running as root, since PostgreSQL refuses root), listening on a free
 * loopback port with trust authentication, stopped by PID. restart() keeps the data folder;
 * pause() and resume() SIGSTOP and SIGCONT every server process.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureInstalled, freePort, ServerProcess, waitReady } from './local-server.ts';

const execFileAsync = promisify(execFile);
const ROOT = '/usr/lib/postgresql';

function binDir(): string {
  ensureInstalled(ROOT, ['postgresql']);
  const versions = readdirSync(ROOT)
    .filter((v) => existsSync(join(ROOT, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${ROOT}: install it with \`apt-get install postgresql\``);
  return join(ROOT, versions[0]!, 'bin');
}

export class PostgresServer {
  readonly dir: string;
  readonly #bin: string;
  readonly #asRoot: boolean;
  port = 0;
  #proc: ServerProcess | undefined;

  private constructor() {
    this.#bin = binDir();
    this.#asRoot = process.getuid?.() === 0;
    this.dir = mkdtempSync(join(tmpdir(), 'dromedary-pg-'));
  }

  static async start(): Promise<PostgresServer> {
    const server = new PostgresServer();
    try {
      server.port = await freePort();
      await server.#initdb();
      await server.#start();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** The command line, run as the postgres user when this process is root. */
  #as(command: string, args: string[]): [string, string[]] {
    return this.#asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  }

  async #initdb(): Promise<void> {
    if (this.#asRoot) chownSync(this.dir, Number((await execFileAsync('id', ['-u', 'postgres'])).stdout.trim()), Number((await execFileAsync('id', ['-g', 'postgres'])).stdout.trim()));
    const [cmd, args] = this.#as(join(this.#bin, 'initdb'), ['-D', join(this.dir, 'data'), '-U', 'postgres', '--auth=trust', '-N', '-E', 'UTF8', '--locale=C.UTF-8']);
    await execFileAsync(cmd, args, { cwd: this.dir, timeout: 60_000 });
  }

  async #start(): Promise<void> {
    const [cmd, args] = this.#as(join(this.#bin, 'postgres'), [
      '-D', join(this.dir, 'data'),
      '-c', 'listen_addresses=127.0.0.1', '-p', String(this.port),
      '-c', `unix_socket_directories=${this.dir}`,
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    ]);
    this.#proc = new ServerProcess(cmd, args, { cwd: this.dir, logFile: join(this.dir, 'server.log') });
    await waitReady('postgres', this.#proc, async () => {
      await execFileAsync(join(this.#bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(this.port), '-t', '1'], { timeout: 3000 });
      return true;
    });
  }

  /** A fast shutdown (SIGINT: sessions are cut), then a start on the same data folder and port. */
  async restart(onStopped?: () => void): Promise<void> {
    await this.#shutdown();
    onStopped?.();
    await this.#start();
  }

  /** Until the postmaster is gone (runuser may exit before it), so a restart never finds it still there. */
  async #shutdown(): Promise<void> {
    await this.#proc?.stop(5000, 'SIGINT');
    const pidFile = join(this.dir, 'data', 'postmaster.pid');
    const deadline = performance.now() + 10_000;
    while (existsSync(pidFile) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /** Runs one statement as the superuser (for inspection and faults such as deleting a lease row). */
  async sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }

  pause(): void {
    this.#proc?.signal('SIGSTOP');
  }

  resume(): void {
    this.#proc?.signal('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.#shutdown();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
