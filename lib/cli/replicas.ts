import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../logging/logger.ts';

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
  /** Wait before restarting a member that crashed; 0 disables restarts. */
  restartDelay?: number;
}

interface Member {
  id: string;
  child: ChildProcess | undefined;
  restarts: number;
}

/**
 * `dromedary run --replicas N`: N member processes on this machine, like N pods of a Deployment.
 * Each gets its own member id and its lines are prefixed with it. A member that crashes is started
 * again, as Kubernetes would; SIGINT or SIGTERM stops every member gracefully and waits for them.
 */
export async function runReplicas(options: ReplicaOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const restartDelay = options.restartDelay ?? 1000;
  const members: Member[] = Array.from({ length: options.count }, (_, i) => ({ id: `${options.memberPrefix}-${i + 1}`, child: undefined, restarts: 0 }));
  let stopping = false;
  const pendingRestarts = new Set<NodeJS.Timeout>();
  let worstExit = 0;
  let allStopped!: () => void;
  const finished = new Promise<void>((resolve) => (allStopped = resolve));
  const checkDone = () => {
    if (stopping && members.every((m) => m.child === undefined)) allStopped();
  };

  const start = (member: Member) => {
    const child = spawn(process.execPath, [options.script, 'run', ...options.args], {
      env: { ...process.env, DROMEDARY_MEMBER_ID: member.id, DROMEDARY_REPLICA_CHILD: '1' },
      // Their own process group, so a terminal's Ctrl-C reaches only this supervisor, which then
      // stops each member once. The stdin pipe tells a member that the supervisor is gone.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    member.child = child;
    const width = Math.max(...members.map((m) => m.id.length));
    const prefix = `${member.id.padEnd(width)} | `;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => out.write(`${prefix}${line}\n`));
    }
    options.logger.info(`Started member ${member.id} (pid ${child.pid})`);
    child.on('exit', (code, signal) => {
      member.child = undefined;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (stopping) {
        if (code !== 0 && code !== null) worstExit = Math.max(worstExit, code);
        checkDone();
        return;
      }
      if (code === 0) {
        options.logger.info(`Member ${member.id} exited (${how})`);
        return;
      }
      if (restartDelay <= 0) {
        options.logger.warn(`Member ${member.id} exited (${how})`);
        worstExit = Math.max(worstExit, code ?? 1);
        return;
      }
      member.restarts += 1;
      options.logger.warn(`Member ${member.id} exited (${how}); starting it again in ${restartDelay}ms (restart #${member.restarts})`);
      const timer = setTimeout(() => {
        pendingRestarts.delete(timer);
        if (!stopping) start(member);
      }, restartDelay);
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
