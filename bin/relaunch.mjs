// Running the CLI on a newer Node than the one that started it, with signals delivered exactly once.
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/**
 * Runs `node args...` as a child and resolves with its exit code. The child gets its own process group
 * (and session), so a terminal's Ctrl-C, sent to the whole foreground group, reaches only this process,
 * which forwards it once: had the child stayed in the group it would see every Ctrl-C twice, and the second
 * one forces an exit without a graceful stop. A pipe on fd 3 tells the child if this process dies without
 * forwarding anything (SIGKILL): its end closes, and the child stops as on SIGTERM.
 */
export function relaunch(node, args) {
  const child = spawn(node, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    detached: true,
    env: { ...process.env, DROMEDARY_REEXEC: '1', DROMEDARY_LIFELINE_FD: '3' },
  });
  const forward = (signal) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`dromedary: could not start ${node}: ${err.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15)));
  });
}

/** In the relaunched child: stop gracefully, as on SIGTERM, when the parent's end of the lifeline closes. */
export function watchLifeline() {
  const fd = Number(process.env.DROMEDARY_LIFELINE_FD);
  // Not for this process's own children (--replicas members).
  delete process.env.DROMEDARY_LIFELINE_FD;
  let lifeline;
  try {
    lifeline = new Socket({ fd, readable: true, writable: false });
  } catch {
    return;
  }
  let gone = false;
  const parentGone = () => {
    if (!gone) process.kill(process.pid, 'SIGTERM');
    gone = true;
  };
  lifeline.on('end', parentGone).on('error', parentGone).resume();
  lifeline.unref();
}
