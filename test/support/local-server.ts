/**
 * Shared parts of the harnesses that run a real server on loopback for tests (etcd, PostgreSQL,
 * ZooKeeper): a free port, the apt install when the server is missing, a process started in its own
 * group and stopped by PID, readiness polling with a deadline, and a last-resort kill at exit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
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

const checked = new Set<string>();

/** Installs Debian packages when `binary` is missing and we are root on Debian; otherwise says what to install. */
export function ensureInstalled(binary: string, packages: string[]): void {
  if (checked.has(binary) || existsSync(binary)) {
    checked.add(binary);
    return;
  }
  const isRoot = process.getuid?.() === 0;
  const isDebian = existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
  const list = packages.join(' ');
  if (!isRoot || !isDebian) throw new Error(`${binary} is missing: install it with \`sudo apt-get install ${list}\` (Debian/Ubuntu)`);
  // Without a policy-rc.d that denies, a postinst could start a system server on its default port.
  const script = [
    'set -e',
    "[ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }",
    `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${list} || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${list}; }`,
  ].join('\n');
  const res = spawnSync('sh', ['-c', script], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
  if (res.status !== 0 || !existsSync(binary)) throw new Error(`installing ${list} with apt-get failed (exit ${res.status}); install it by hand: apt-get install ${list}`);
  checked.add(binary);
}

/** A server process in its own process group, its output kept in `log`. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  #output: string[] = [];

  constructor(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; logFile: string }) {
    this.child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => this.#output.push(d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => this.#output.push(d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.once('exit', () => writeFileSync(options.logFile, this.#output.join('')));
    live.add(this);
    void this.exited.then(() => live.delete(this));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get output(): string {
    return this.#output.join('');
  }

  /** Signals the process group and every descendant (servers such as PostgreSQL put each child in its own session). */
  signal(signal: NodeJS.Signals): void {
    if (!this.child.pid || !this.running) return;
    const pids = [this.child.pid, ...descendants(this.child.pid)];
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
    for (const pid of pids.slice(1)) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }

  /** `signal` (SIGTERM), then SIGKILL after `grace` ms; resolves once the process exited. */
  async stop(grace = 5000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.signal('SIGCONT');
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), grace);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Polls `ready` every 50 ms until it resolves true, the process exits, or `timeout` passes. */
export async function waitReady(name: string, proc: ServerProcess, ready: () => Promise<boolean>, timeout = 30_000): Promise<void> {
  const deadline = performance.now() + timeout;
  for (;;) {
    if (!proc.running) throw new Error(`${name} exited before it was ready:\n${proc.output.slice(-3000)}`);
    if (await ready().catch(() => false)) return;
    if (performance.now() > deadline) throw new Error(`${name} not ready after ${timeout}ms:\n${proc.output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every descendant of `root`, from /proc's parent links. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The fields after the command name, which is in parentheses and may hold spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const stack = [root];
  while (stack.length > 0) for (const child of children.get(stack.pop()!) ?? []) found.push(child), stack.push(child);
  return found;
}

const live = new Set<ServerProcess>();
process.on('exit', () => {
  for (const p of live) p.signal('SIGKILL');
});
