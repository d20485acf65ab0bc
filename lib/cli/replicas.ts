import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DromedaryError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { formatDuration } from '../uri/duration.ts';

export interface ReplicaOptions {
  count: number;
  /** Arguments for each member's `dromedary run`, without --replicas. */
  args: string[];
  /** Member ids are `<prefix>-1` … `<prefix>-N`. */
  memberPrefix: string;
  /** The script to run for each member (bin/dromedary.mjs). */
  script: string;
  logger: Logger;
  out?: NodeJS.WritableStream;
  /** The first wait before restarting a member that crashed; it doubles per crash in a row. 0 disables restarts. Default 1 s. */
  restartDelay?: number;
  /** The longest wait between restarts. Default 10 s (the kubelet's cap is 5 min; members here are local processes). */
  maxRestartDelay?: number;
  /** A member that ran this long before it crashed starts its back-off afresh. Default 60 s. */
  stableAfter?: number;
  /** Where DROMEDARY_LOG_FORMAT and DROMEDARY_HEALTH_PORT are read when the flags are absent. Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

interface Member {
  id: string;
  /** The health port this member is given, if the health port is on. */
  healthPort: number | undefined;
  child: ChildProcess | undefined;
  startedAt: number;
  restarts: number;
  /** Exits since the member last ran for `stableAfter`: what the back-off grows with. */
  exitsInARow: number;
}

/** The wait before the nth restart in a row (1-based): base, 2×base, 4×base …, never above the cap. */
export function restartBackoff(exitsInARow: number, base: number, cap: number): number {
  return Math.min(cap, base * 2 ** Math.max(0, exitsInARow - 1));
}

/**
 * `dromedary run --replicas N`: N member processes on this machine, like N pods of a Deployment.
 * Each gets its own member id (a line prefix in text logs, a `member` field in JSON logs) and, with
 * `--health-port P`, its own port P+i (member 1 gets P) or, with 0, any free port, which it prints.
 * A member that exits, crashed or not, is started again after an exponential back-off, as the kubelet does;
 * SIGINT or SIGTERM stops every member gracefully and waits for them.
 */
export async function runReplicas(options: ReplicaOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const env = options.env ?? process.env;
  const restartDelay = options.restartDelay ?? 1000;
  const maxRestartDelay = options.maxRestartDelay ?? 10_000;
  const stableAfter = options.stableAfter ?? 60_000;
  const json = (flagValue(options.args, '--log-format') ?? env.DROMEDARY_LOG_FORMAT ?? 'text').toLowerCase() === 'json';
  const basePort = healthPortBase(flagValue(options.args, '--health-port') ?? env.DROMEDARY_HEALTH_PORT, options.count);
  const memberArgs = withoutFlag(options.args, '--health-port');
  const members: Member[] = Array.from({ length: options.count }, (_, i) => ({
    id: `${options.memberPrefix}-${i + 1}`,
    healthPort: basePort === undefined ? undefined : basePort === 0 ? 0 : basePort + i,
    child: undefined,
    startedAt: 0,
    restarts: 0,
    exitsInARow: 0,
  }));
  if (basePort !== undefined) {
    options.logger.info(
      basePort === 0
        ? 'Health endpoints: each member takes a free port and prints it'
        : `Health endpoints: member ${members[0]!.id} on port ${basePort} … ${members.at(-1)!.id} on port ${basePort + options.count - 1}`,
    );
  }
  const width = Math.max(...members.map((m) => m.id.length));
  let stopping = false;
  const pendingRestarts = new Set<NodeJS.Timeout>();
  let worstExit = 0;
  let allStopped!: () => void;
  const finished = new Promise<void>((resolve) => (allStopped = resolve));
  const checkDone = () => {
    if (stopping && members.every((m) => m.child === undefined)) allStopped();
  };

  // In JSON mode every line the supervisor writes is one JSON object: a member's own lines get its
  // id as a field, and anything else it prints (a crash's stack trace on stderr) is wrapped.
  const relay = (member: Member, line: string, stream: 'stdout' | 'stderr') => {
    if (!json) {
      out.write(`${member.id.padEnd(width)} | ${line}\n`);
      return;
    }
    let entry: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) entry = { ...(parsed as Record<string, unknown>), member: member.id };
    } catch {
      // not JSON: wrapped below
    }
    entry ??= { level: stream === 'stderr' ? 'error' : 'info', message: line, member: member.id, stream, timestamp: new Date().toISOString() };
    out.write(`${JSON.stringify(entry)}\n`);
  };

  const start = (member: Member) => {
    const args = member.healthPort === undefined ? memberArgs : [...memberArgs, '--health-port', String(member.healthPort)];
    const child = spawn(process.execPath, [options.script, 'run', ...args], {
      env: { ...process.env, DROMEDARY_MEMBER_ID: member.id, DROMEDARY_REPLICA_CHILD: '1' },
      // Their own process group, so a terminal's Ctrl-C reaches only this supervisor, which then
      // stops each member once. The stdin pipe tells a member that the supervisor is gone.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    member.child = child;
    member.startedAt = performance.now();
    createInterface({ input: child.stdout! }).on('line', (line) => relay(member, line, 'stdout'));
    createInterface({ input: child.stderr! }).on('line', (line) => relay(member, line, 'stderr'));
    options.logger.info(`Started member ${member.id} (pid ${child.pid})`, { member: member.id, pid: child.pid });
    child.on('exit', (code, signal) => {
      member.child = undefined;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (stopping) {
        if (code !== 0 && code !== null) worstExit = Math.max(worstExit, code);
        checkDone();
        return;
      }
      // Like restartPolicy: Always, a member that exits cleanly (someone sent it SIGTERM) comes back too.
      if (restartDelay <= 0) {
        options.logger.warn(`Member ${member.id} exited (${how})`, { member: member.id });
        worstExit = Math.max(worstExit, code ?? 1);
        return;
      }
      // Like the kubelet: a member that keeps exiting waits longer each time, up to the cap, so a
      // crash loop costs little; one that ran a good while before it crashed starts over.
      member.exitsInARow = performance.now() - member.startedAt >= stableAfter ? 1 : member.exitsInARow + 1;
      member.restarts += 1;
      const delay = restartBackoff(member.exitsInARow, restartDelay, maxRestartDelay);
      const backoff = member.exitsInARow > 1 ? `, back-off after ${member.exitsInARow} exits in a row` : '';
      (code === 0 ? options.logger.info : options.logger.warn).call(options.logger, `Member ${member.id} exited (${how}); starting it again in ${formatDuration(delay)} (restart #${member.restarts}${backoff})`, {
        member: member.id,
        restartInMs: delay,
      });
      const timer = setTimeout(() => {
        pendingRestarts.delete(timer);
        if (!stopping) start(member);
      }, delay);
      pendingRestarts.add(timer);
    });
  };

  for (const member of members) start(member);

  const stopAll = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    options.logger.info(`Received ${signal}: stopping ${members.length} members`);
    for (const t of pendingRestarts) clearTimeout(t);
    for (const m of members) m.child?.kill('SIGTERM');
    checkDone();
  };
  process.on('SIGINT', stopAll);
  process.on('SIGTERM', stopAll);
  await finished;
  process.off('SIGINT', stopAll);
  process.off('SIGTERM', stopAll);
  return worstExit;
}

/** The first member's health port: undefined when off, 0 for any free port each. */
function healthPortBase(text: string | undefined, count: number): number | undefined {
  if (text === undefined || text === '') return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DromedaryError('CLI_OPTION', `--health-port "${text}" must be a port number from 0 to 65535`);
  }
  if (port !== 0 && port + count - 1 > 65535) {
    throw new DromedaryError(
      'CLI_OPTION',
      `--health-port ${port} with --replicas ${count} needs ports ${port} to ${port + count - 1}, beyond 65535: choose a lower port, or 0 for any free port`,
    );
  }
  return port;
}

/** The value of `--flag value` or `--flag=value`, the last one winning as in parseArgs. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === flag) value = args[i + 1];
    else if (args[i]!.startsWith(`${flag}=`)) value = args[i]!.slice(flag.length + 1);
  }
  return value;
}

/** The arguments with `--flag value` and `--flag=value` removed. */
function withoutFlag(args: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === flag) i += 1;
    else if (!args[i]!.startsWith(`${flag}=`)) out.push(args[i]!);
  }
  return out;
}
