import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import * as k8s from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from '../lib/testing/index.ts';
import { createKubernetesClusterService } from '../lib/cluster/kubernetes/index.ts';
import { resolveClusterConfig } from '../lib/cluster/config.ts';
import { DEFAULT_TIMINGS } from '../lib/cluster/election/timings.ts';
import type { ClusterService, ClusterView } from '../lib/cluster/cluster-service.ts';
import { fmt, median, printTable } from './measure.ts';

const MEMBERS = ['m1', 'm2', 'm3'];
const LOCKS = Array.from({ length: 10 }, (_, i) => `lock${i}`);
const logger = winston.createLogger({ silent: true });
const { leaseDuration, renewDeadline, retryPeriod, jitter } = DEFAULT_TIMINGS;

/** What both contenders offer the bench: who leads each lock here, and a way to stop. */
interface Member {
  id: string;
  leads(lock: string): boolean;
  stop(graceful: boolean): Promise<void>;
}

/** dromedary's kubernetes backend, one ClusterService per member with its own client and token. */
async function dromedaryMember(server: KubeApiServer, dir: string, id: string, prefix: string): Promise<Member> {
  const kubeconfig = join(dir, `${id}.yaml`);
  await writeFile(kubeconfig, server.kubeconfig({ token: id }));
  const config = resolveClusterConfig({ flags: { cluster: 'kubernetes', memberId: id }, env: { KUBECONFIG: kubeconfig, DROMEDARY_K8S_LEASE_PREFIX: prefix } });
  const service: ClusterService = await createKubernetesClusterService(config, logger);
  await service.start();
  const views = new Map<string, ClusterView>(LOCKS.map((l) => [l, service.view(l)]));
  return {
    id,
    leads: (lock) => views.get(lock)!.isLeader,
    async stop(graceful) {
      if (graceful) await service.stop();
      else server.faults(id).blackhole(); // a crash, as the API server and the others see it
    },
  };
}

/**
 * The reference: client-go's loop, written out. Every member polls each lock every
 * retryPeriod × (1 + random × jitter) with a GET, then a PUT when it holds the lock or the lock is
 * free or expired by its own observation; the leader renews every retryPeriod with GET then PUT.
 * No watch and, like client-go without ReleaseOnCancel, no release: a stopped leader just goes quiet.
 */
async function referenceMember(server: KubeApiServer, _dir: string, id: string, prefix: string): Promise<Member> {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(server.kubeconfig({ token: id }));
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const ns = server.namespace;
  const state = new Map<string, { validUntil: number; observedRv?: string; observedAt: number; timer?: NodeJS.Timeout }>();
  let running = true;
  let reported = false;
  const tick = async (lock: string) => {
    const s = state.get(lock)!;
    const name = `${prefix}-${lock}`;
    const start = performance.now();
    try {
      let lease: k8s.V1Lease | undefined;
      try {
        lease = await api.readNamespacedLease({ name, namespace: ns });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
      const now = new k8s.V1MicroTime();
      const spec = { holderIdentity: id, leaseDurationSeconds: leaseDuration / 1000, acquireTime: now, renewTime: now, leaseTransitions: 0 };
      if (!lease) {
        await api.createNamespacedLease({ namespace: ns, body: { metadata: { name, namespace: ns }, spec } });
        s.validUntil = start + renewDeadline;
      } else {
        if (lease.metadata?.resourceVersion !== s.observedRv) {
          s.observedRv = lease.metadata?.resourceVersion;
          s.observedAt = performance.now();
        }
        const holder = lease.spec?.holderIdentity ?? '';
        const expired = s.observedAt + (lease.spec?.leaseDurationSeconds ?? 0) * 1000 < performance.now();
        if (holder === id || holder === '' || expired) {
          const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === id ? 0 : 1);
          await api.replaceNamespacedLease({ name, namespace: ns, body: { ...lease, spec: { ...spec, leaseTransitions: transitions } } });
          s.validUntil = start + renewDeadline;
        }
      }
    } catch (err) {
      // A failed try (a lost race is normal); the next one comes on schedule.
      if ((err as { code?: number }).code !== 409 && !reported) {
        reported = true;
        process.stderr.write(`[kubernetes bench, reference] ${id}: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}\n`);
      }
    }
    if (!running) return;
    const leading = performance.now() < s.validUntil;
    const wait = leading ? retryPeriod : retryPeriod * (1 + Math.random() * jitter);
    s.timer = setTimeout(() => void tick(lock), wait);
  };
  for (const lock of LOCKS) {
    state.set(lock, { validUntil: -Infinity, observedAt: 0 });
    void tick(lock);
  }
  return {
    id,
    leads: (lock) => performance.now() < state.get(lock)!.validUntil,
    async stop() {
      running = false;
      for (const s of state.values()) clearTimeout(s.timer);
    },
  };
}

function until(check: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve(performance.now()) : setTimeout(poll, 5));
    poll();
  });
}

interface Figures {
  requestsPerSecond: number;
  handover: number[];
  crash: number[];
}

/** Steady-state request rate, then one graceful stop and one crash of the member leading most locks. */
async function measure(make: (server: KubeApiServer, dir: string, id: string, prefix: string) => Promise<Member>, name: string): Promise<Figures> {
  const server = await startKubeApiServer({ tokens: Object.fromEntries(MEMBERS.map((m) => [m, {}])) });
  const dir = await mkdtemp(join(tmpdir(), 'dromedary-bench-k8s-'));
  const figures: Figures = { requestsPerSecond: 0, handover: [], crash: [] };
  try {
    const progress = (text: string) => process.stderr.write(`[kubernetes bench, ${name === 'd' ? 'dromedary' : 'reference'}] ${text}\n`);
    let members = await Promise.all(MEMBERS.map((id) => make(server, dir, id, name)));
    progress('members started');
    await until(() => LOCKS.every((l) => members.some((m) => m.leads(l))));
    progress('every lock has a leader');
    // Let followers settle, then count requests over a window.
    await new Promise((r) => setTimeout(r, 2 * retryPeriod));
    server.resetRequestCounts();
    const window = 20_000;
    await new Promise((r) => setTimeout(r, window));
    figures.requestsPerSecond = server.requestCount() / (window / 1000);
    progress(`steady state: ${figures.requestsPerSecond.toFixed(2)} requests/s`);

    for (const graceful of [true, false]) {
      const leader = members.reduce((best, m) => (LOCKS.filter((l) => m.leads(l)).length > LOCKS.filter((l) => best.leads(l)).length ? m : best));
      const held = LOCKS.filter((l) => leader.leads(l));
      const others = members.filter((m) => m !== leader);
      const t0 = performance.now();
      await leader.stop(graceful);
      await Promise.all(
        held.map(async (lock) => {
          const t = await until(() => others.some((m) => m.leads(lock)));
          (graceful ? figures.handover : figures.crash).push(t - t0);
        }),
      );
      members = others;
      progress(`${graceful ? 'graceful handover' : 'crash failover'} of ${held.length} locks done`);
    }
    for (const m of members) await m.stop(true);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

export async function run(): Promise<void> {
  const ours = await measure(dromedaryMember, 'd');
  const reference = await measure(referenceMember, 'r');
  const ms = (v: number) => `${fmt(v, 0)} ms`;
  printTable(`Kubernetes Leases on the API test server (3 members, 10 locks, lease ${leaseDuration / 1000} s, renew ${renewDeadline / 1000} s, retry ${retryPeriod / 1000} s; medians over the locks moved)`, [
    {
      name: `graceful handover (${ours.handover.length} locks)`,
      value: ms(median(ours.handover)),
      baseline: `${ms(median(reference.handover))} (client-go loop, ${reference.handover.length} locks)`,
      ratio: (median(ours.handover) / median(reference.handover)).toFixed(3),
      note: 'aim: well under 1 s',
    },
    {
      name: `crash failover (${ours.crash.length} locks)`,
      value: ms(median(ours.crash)),
      baseline: `${ms(median(reference.crash))} (client-go loop, ${reference.crash.length} locks)`,
      ratio: (median(ours.crash) / median(reference.crash)).toFixed(3),
      note: `aim: ≤ leaseDuration + 0.5 s = ${leaseDuration + 500} ms`,
    },
    {
      name: 'API requests/s at steady state',
      value: fmt(ours.requestsPerSecond, 2),
      baseline: `${fmt(reference.requestsPerSecond, 2)} (client-go loop)`,
      ratio: (ours.requestsPerSecond / reference.requestsPerSecond).toFixed(3),
      note: 'aim: ≤ 0.2 (watches count as one request each)',
    },
  ]);
}
