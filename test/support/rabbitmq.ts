/**
 * A real RabbitMQ for tests: Debian's rabbitmq-server started in a temp folder on free loopback
 * ports, with its own epmd on its own port (so concurrent test runs never share, or kill, each
 * other's epmd), stopped by PID.
 *
 * - `startRabbitMq()` starts a private broker; the caller stops it.
 * - `sharedRabbitMq()` / `useRabbitMq()` share one broker across all test files of a mocha run: the
 *   ~6 s start is paid once, and a root `after` hook plus a process 'exit' hook stop it.
 * - With `AMQP_URL` in the environment, that broker is used and nothing is started (restart() then
 *   throws: fault tests need a broker they own).
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const RMQ_BIN = '/usr/lib/rabbitmq/bin';
const SERVER = `${RMQ_BIN}/rabbitmq-server`;
const CTL = `${RMQ_BIN}/rabbitmqctl`;
const execFileAsync = promisify(execFile);

export interface RabbitMqOptions {
  /** How long to wait for the broker to accept AMQP connections. */
  readyTimeout?: number;
  /** Keep the temp folder after stop() (for post-mortems). */
  keepDir?: boolean;
  /** Start a local broker even when AMQP_URL is set: fault tests need a broker they may break. */
  local?: boolean;
}

export interface RabbitMqHandle {
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** PID of the rabbitmq-server wrapper (its process group holds beam). Undefined for an external broker. */
  readonly pid: number | undefined;
  /** True when this handle started the broker (false with AMQP_URL). */
  readonly owned: boolean;
  readonly dir: string | undefined;
  /** Stops the RabbitMQ application, keeping the Erlang VM (clients see CONNECTION_FORCED). */
  stopApp(): Promise<void>;
  /** Starts the application again and waits until AMQP is accepted. */
  startApp(): Promise<void>;
  /** Hard crash: SIGKILL to the broker's process group. */
  kill(): Promise<void>;
  /** Starts the broker again on the same data folder and ports (after kill()); waits until ready. */
  start(): Promise<void>;
  /** `mode: 'app'` (default): stopApp + startApp; `'kill'`: kill + start on the same data folder. */
  restart(mode?: 'app' | 'kill'): Promise<void>;
  /** Stops the broker and the epmd it started, by PID, and removes the temp folder. */
  stop(): Promise<void>;
}

/** Every live broker of this process, for the synchronous last-resort kill on exit. */
const live = new Set<LocalRabbitMq>();

export async function startRabbitMq(opts: RabbitMqOptions = {}): Promise<RabbitMqHandle> {
  const external = process.env.AMQP_URL;
  if (external && !opts.local) return externalBroker(external);
  ensureInstalled();
  installExitHooks();
  const broker = new LocalRabbitMq(opts);
  live.add(broker);
  try {
    await broker.start();
  } catch (err) {
    await broker.stop();
    throw err;
  }
  return broker;
}

let shared: Promise<RabbitMqHandle> | undefined;

/** One broker per process, started on first use; stopped by the root after-hook or at exit. */
export function sharedRabbitMq(): Promise<RabbitMqHandle> {
  shared ??= startRabbitMq();
  // A failed start must not be cached: the next file gets a fresh attempt and its own error.
  shared.catch(() => {
    shared = undefined;
  });
  return shared;
}

/**
 * For a describe block: `const rmq = useRabbitMq();` then `rmq().url` in tests. The broker is the
 * shared one; tests that break the broker (restart, kill) should use startRabbitMq() instead.
 */
export function useRabbitMq(): () => RabbitMqHandle {
  let handle: RabbitMqHandle | undefined;
  before(async function () {
    this.timeout(90_000);
    handle = await sharedRabbitMq();
  });
  return () => {
    if (!handle) throw new Error('useRabbitMq(): the broker is only available inside tests and hooks');
    return handle;
  };
}

async function stopShared(): Promise<void> {
  const s = shared;
  shared = undefined;
  if (s) await (await s.catch(() => undefined))?.stop();
}

// Imported at the top of a test file, this module body runs while mocha's current suite is the root
// suite, so this registers one root-level hook that stops the shared broker after the whole run.
if (typeof (globalThis as { after?: unknown }).after === 'function') {
  after(async function () {
    this.timeout(30_000);
    await stopShared();
  });
}

class LocalRabbitMq implements RabbitMqHandle {
  readonly owned = true;
  readonly dir: string;
  port = 0;
  #distPort = 0;
  #epmdPort = 0;
  readonly #node: string;
  readonly #opts: RabbitMqOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #epmdPid: number | undefined;
  #stopped = false;

  constructor(opts: RabbitMqOptions) {
    this.#opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), 'dromedary-rmq-'));
    this.#node = `dromedary${process.pid}x${Math.random().toString(36).slice(2, 8)}@localhost`;
    mkdirSync(join(this.dir, 'mnesia'));
    mkdirSync(join(this.dir, 'log'));
    writeFileSync(join(this.dir, 'enabled_plugins'), '[].\n');
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  #env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: this.dir, // private .erlang.cookie
      RABBITMQ_NODENAME: this.#node,
      RABBITMQ_CONF_ENV_FILE: '/dev/null',
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_DIST_PORT: String(this.#distPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_EPMD_PORT: String(this.#epmdPort),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  }

  async start(): Promise<void> {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) return;
    if (!this.port) {
      this.port = await freePort();
      this.#distPort = await freePort();
      this.#epmdPort = await freePort();
      writeFileSync(
        join(this.dir, 'rabbitmq.conf'),
        [`listeners.tcp.1 = 127.0.0.1:${this.port}`, 'log.console = false', 'log.file.level = info', ''].join('\n'),
      );
    }
    const hadEpmd = this.#epmdPid !== undefined;
    const out = join(this.dir, 'stdout.log');
    writeFileSync(out, '');
    // detached: the wrapper leads its own process group (it and beam), so kill() reaches both.
    const child = spawn(SERVER, [], { cwd: this.dir, env: this.#env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const log: string[] = [];
    child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => writeFileSync(out, log.join('')));
    try {
      await this.#waitReady(() => (child.exitCode !== null || child.signalCode !== null ? log.join('') : undefined));
    } finally {
      if (!hadEpmd) this.#epmdPid = findEpmd(this.#epmdPort);
    }
  }

  async #waitReady(exitedWith: () => string | undefined): Promise<void> {
    const timeout = this.#opts.readyTimeout ?? 60_000;
    const deadline = performance.now() + timeout;
    const amqp = await import('amqplib');
    let last: unknown;
    for (;;) {
      const early = exitedWith();
      if (early !== undefined) {
        throw new Error(`rabbitmq-server exited before accepting connections (folder ${this.dir}):\n${early.slice(-3000)}`);
      }
      try {
        const conn = await amqp.connect(this.url, { timeout: 2000 });
        await conn.close();
        return;
      } catch (err) {
        last = err;
      }
      if (performance.now() > deadline) {
        throw new Error(`RabbitMQ on 127.0.0.1:${this.port} not accepting AMQP after ${timeout}ms (last error: ${String(last)}); logs in ${this.dir}/log`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async #ctl(...args: string[]): Promise<void> {
    try {
      await execFileAsync(CTL, ['-n', this.#node, ...args], { env: this.#env(), timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`rabbitmqctl ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
    }
  }

  async stopApp(): Promise<void> {
    await this.#ctl('stop_app');
  }

  async startApp(): Promise<void> {
    await this.#ctl('start_app');
    await this.#waitReady(() => undefined);
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    killGroup(child.pid, 'SIGKILL');
    await this.#exited;
  }

  async restart(mode: 'app' | 'kill' = 'app'): Promise<void> {
    if (mode === 'app') {
      await this.stopApp();
      await this.startApp();
    } else {
      await this.kill();
      await this.start();
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const child = this.#child;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      // SIGTERM to the wrapper is a graceful shutdown; the data folder is thrown away, so do not
      // wait long for it.
      killGroup(child.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
    if (this.#epmdPid) killPid(this.#epmdPid, 'SIGKILL');
    this.#epmdPid = undefined;
    live.delete(this);
    if (!this.#opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort for process exit. */
  killNow(): void {
    const pid = this.#child?.pid;
    if (pid && this.#child?.exitCode === null && this.#child.signalCode === null) killGroup(pid, 'SIGKILL');
    if (this.#epmdPid) killPid(this.#epmdPid, 'SIGKILL');
    if (!this.#opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function externalBroker(url: string): RabbitMqHandle {
  const port = Number(new URL(url).port || 5672);
  const refuse = async () => {
    throw new Error('this test breaks the broker on purpose and cannot run against AMQP_URL; unset AMQP_URL to use a local broker');
  };
  return {
    url,
    port,
    pid: undefined,
    owned: false,
    dir: undefined,
    stopApp: refuse,
    startApp: refuse,
    kill: refuse,
    start: async () => undefined,
    restart: refuse,
    stop: async () => undefined,
  };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    killPid(pid, signal);
  }
}

function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** The epmd daemon listening on our private port: found by its command line in /proc. */
function findEpmd(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!cmd[0]?.endsWith('epmd')) continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(`ERL_EPMD_PORT=${port}`) || cmd.includes(String(port))) return Number(entry);
    } catch {
      // process gone or not ours to read
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

let installChecked = false;

/** Installs Debian's rabbitmq-server when missing and we are root on Debian; otherwise says what to install. */
function ensureInstalled(): void {
  if (installChecked || existsSync(SERVER)) {
    installChecked = true;
    return;
  }
  const isRoot = process.getuid?.() === 0;
  const isDebian = existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
  if (!isRoot || !isDebian) {
    throw new Error(
      `RabbitMQ is not installed (${SERVER} is missing). Install it with ` +
        '`sudo apt-get install rabbitmq-server` (Debian/Ubuntu), or point the tests at a running broker with ' +
        'AMQP_URL=amqp://user:pass@host:5672.',
    );
  }
  // Without a policy-rc.d that denies, the postinst would start a system broker on 0.0.0.0:5672.
  const script = [
    'set -e',
    "[ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }",
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server; }',
  ].join('\n');
  const res = spawnSync('sh', ['-c', script], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
  if (res.status !== 0 || !existsSync(SERVER)) {
    throw new Error(`installing rabbitmq-server with apt-get failed (exit ${res.status}); install it by hand: apt-get install rabbitmq-server`);
  }
  installChecked = true;
}

let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const b of live) b.killNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      for (const b of live) b.killNow();
      live.clear();
      process.off(signal, onSignal);
      // Re-raise only when nobody else (mocha) handles the signal, so default behaviour is kept.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
