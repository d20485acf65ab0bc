import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.ts';

export const CLI = fileURLToPath(new URL('../../bin/dromedary.mjs', import.meta.url));

/** A child process whose output lines are collected, with helpers to wait on them and stop it by PID. */
export class ProcessHandle {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(child: ChildProcess) {
    this.child = child;
    const collect = (stream: NodeJS.ReadableStream | null) => {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop()!;
        this.lines.push(...parts);
      });
      stream?.on('end', () => {
        if (partial) this.lines.push(partial);
      });
    };
    collect(child.stdout);
    collect(child.stderr);
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  get output(): string {
    return this.lines.join('\n');
  }

  count(pattern: RegExp): number {
    return this.lines.filter((l) => pattern.test(l)).length;
  }

  waitForLine(pattern: RegExp, timeout = 15_000): Promise<string> {
    return waitFor(() => this.lines.find((l) => pattern.test(l)), {
      timeout,
      message: `a line matching ${pattern} from pid ${this.pid}; output so far:\n${this.output}`,
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** Stops the process by PID: SIGTERM, then SIGKILL if it has not exited within the grace period. */
  async stop(grace = 5000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), grace);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Runs the dromedary CLI on the Node that runs the tests. */
export function spawnCli(args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): ProcessHandle {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ProcessHandle(child);
}
