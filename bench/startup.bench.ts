/**
 * `npm run bench -- startup`: the cost of starting dromedary as a user gets it (the packed package
 * installed into a fresh app, its CLI running the routes/ Hello World), against bare Node running the same
 * 1 s timer, interleaved in one run. Every trial is a cold start: a fresh temp folder and lock folder.
 * Measured: resident memory once idle, the time from spawn to the first "Hello World!", and the CPU used
 * until then. A Kubernetes-mode member (against the Kubernetes API test server) is measured beside them.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer } from '../lib/testing/index.ts';
import { installedApp, packProject, PROJECT } from '../test/package/packed-install.ts';
import { fmt, median, printTable } from './measure.ts';

const TRIALS = Number(process.env.STARTUP_BENCH_TRIALS ?? 5);
/** How long after the first Hello World the process is left idle before its memory is read. */
const SETTLE_MS = 2000;

interface Sample {
  firstHelloMs: number;
  /** Spawn to the log line saying this member leads lock1 (NaN for bare Node). */
  leaderMs: number;
  cpuMs: number;
  rssMb: number;
}

/** utime + stime of a running process, in ms, from /proc. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Spawns `args`, waits for its first "Hello World!", lets it idle, measures it and stops it with SIGTERM. */
async function trial(args: string[], cwd: string, env: Record<string, string>): Promise<Sample> {
  const fresh = await mkdtemp(join(tmpdir(), 'dromedary-startup-'));
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, NO_COLOR: '1', TMPDIR: fresh, DROMEDARY_CLUSTER_ROOT: join(fresh, 'locks'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let leaderMs = NaN;
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    const firstHelloMs = await new Promise<number>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (Number.isNaN(leaderMs) && output.includes('is now leader of lock1')) leaderMs = performance.now() - started;
        if (output.includes('Hello World!')) {
          child.stdout.off('data', onData);
          resolve(performance.now() - started);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before Hello World:\n${output}`)));
      setTimeout(() => reject(new Error(`no Hello World within 30 s from ${args.join(' ')}:\n${output}`)), 30_000).unref();
    });
    const cpu = await cpuMs(child.pid!);
    child.stdout.resume();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    return { firstHelloMs, leaderMs, cpuMs: cpu, rssMb: await rssMb(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(fresh, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dromedary-startup-bench-'));
  const tarball = await packProject(work);
  const app = await installedApp(tarball);
  const kube = await startKubeApiServer();
  try {
    const kubeconfig = await kube.writeKubeconfig(join(work, 'kubeconfig.yaml'));
    await copyFile(join(PROJECT, 'routes', 'hello.ts'), join(app, 'routes', 'hello.ts'));
    await mkdir(join(app, 'routes-js'));
    await copyFile(join(PROJECT, 'routes', 'hello.ts'), join(app, 'routes-js', 'hello.mjs'));
    // Bare Node doing the same: print Hello World! after the timer's default 1 s delay, then idle.
    await writeFile(join(app, 'bare.mjs'), "setTimeout(() => console.log('Hello World!'), 1000);\nsetInterval(() => {}, 1 << 30);\n");
    const cli = join(app, 'node_modules', '.bin', 'dromedary');
    const kinds: Record<string, { args: string[]; env: (i: number) => Record<string, string> }> = {
      bare: { args: ['bare.mjs'], env: () => ({}) },
      ts: { args: [cli, 'run', 'routes'], env: () => ({}) },
      js: { args: [cli, 'run', 'routes-js'], env: () => ({}) },
      kube: {
        args: [cli, 'run', 'routes', '--cluster', 'kubernetes'],
        // A fresh Lease per trial, so no trial waits for the one before to expire.
        env: (i) => ({ KUBECONFIG: kubeconfig, DROMEDARY_K8S_LEASE_PREFIX: `startup${i}`, POD_NAME: `member-${i}` }),
      },
    };
    const samples: Record<string, Sample[]> = { bare: [], ts: [], js: [], kube: [] };
    for (let i = 0; i < TRIALS; i += 1) {
      for (const [name, kind] of Object.entries(kinds)) samples[name]!.push(await trial(kind.args, app, kind.env(i)));
    }
    const m = (name: string, key: keyof Sample) => median(samples[name]!.map((s) => s[key]));
    const bareRss = m('bare', 'rssMb');
    const bareHello = m('bare', 'firstHelloMs');
    const rows = [
      ['routes/ Hello World (hello.ts), file locks', 'ts'],
      ['the same route as hello.mjs, file locks', 'js'],
      ['routes/ Hello World (hello.ts), Kubernetes Leases (API test server)', 'kube'],
    ].flatMap(([label, name]) => [
      { name: `${label}: RSS idle, MB`, value: fmt(m(name!, 'rssMb'), 1), baseline: fmt(bareRss, 1), ratio: fmt(m(name!, 'rssMb') / bareRss, 2) },
      {
        name: `${label}: spawn to first Hello World, ms`,
        value: fmt(m(name!, 'firstHelloMs')),
        baseline: fmt(bareHello),
        ratio: `+${fmt(m(name!, 'firstHelloMs') - bareHello)} ms`,
        note: `CPU to then: ${fmt(m(name!, 'cpuMs'))} ms (bare: ${fmt(m('bare', 'cpuMs'))} ms); leads lock1 ${fmt(m(name!, 'leaderMs'))} ms after spawn`,
      },
    ]);
    printTable(`Start-up, installed package, median of ${TRIALS} cold starts (baseline: bare Node, same 1 s timer)`, rows);
  } finally {
    await kube.close();
    await rm(work, { recursive: true, force: true });
    await rm(app, { recursive: true, force: true });
  }
}
