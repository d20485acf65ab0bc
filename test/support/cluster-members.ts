import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCli, type ProcessHandle } from './cli-process.ts';
import { waitFor } from './wait.ts';
import { startKubeApiServer, type KubeApiServer } from '../../lib/testing/index.ts';
import { loadClientNode, resolveNamespace, statusOf, type K8s } from '../../lib/cluster/kubernetes/client.ts';
import { ServerBackend } from './server-backend.ts';

/** The chaos suite's member app: guarded routes on lock1 and lock2, a route on every member, a singleton on lock3. */
export const GUARDED_ROUTES = fileURLToPath(new URL('../cluster/fixtures/routes', import.meta.url));
export const MS = 1_000_000n;
/** The guarded routes tick every 40 ms (fixtures/routes/guarded.ts). */
export const TICK = 40;

/**
 * Where the members coordinate, and with which timings. Every bound a test checks is derived from
 * these: the protocol's own waits (leaseDuration, acquireDelay, retryPeriod) plus `margin`, the
 * allowance for a notification, the API requests of one attempt and one tick of the guarded route.
 */
export interface Target {
  title: string;
  cluster: 'file' | 'kubernetes' | 'etcd' | 'postgres' | 'zookeeper';
  lock?: 'lease' | 'configmap';
  /** The file and Lease backends' renewal mode (DROMEDARY_RENEWALS): one heartbeat per member, or each lock's record. */
  renewals?: 'heartbeat' | 'per-lock';
  /** The API test server, which can inject faults and play the kubelet, or a real cluster. */
  api?: 'test-server' | 'real';
  lease: number;
  renew: number;
  retry: number;
  margin: number;
}

/**
 * The real-cluster run: `KUBECONFIG` and `DROMEDARY_TEST_REAL_K8S=1`. It runs Lease mode only: in
 * ConfigMap mode the members are the cluster's pods, and these members are local processes, not
 * pods; pod objects standing in for them would be scheduled and run by the cluster's kubelets, not
 * by this test. (ConfigMap mode on a real cluster: examples/kubernetes with DROMEDARY_K8S_LOCK=configmap.)
 */
const REAL_KUBECONFIG = process.env.DROMEDARY_TEST_REAL_K8S === '1' && process.env.KUBECONFIG ? process.env.KUBECONFIG : undefined;

export const TARGETS: Target[] = [
  // The default renewals (one heartbeat per member keeps all its locks), then one record renewal per lock.
  { title: 'file backend', cluster: 'file', renewals: 'heartbeat', lease: 1200, renew: 800, retry: 150, margin: 250 },
  { title: 'file backend, per-lock renewals', cluster: 'file', renewals: 'per-lock', lease: 1200, renew: 800, retry: 150, margin: 250 },
  // A Lease stores its duration in whole seconds, so the kubernetes members use a whole-second lease.
  // Heartbeat renewals (the default): a round every renewDeadline / 3 keeps every lock of a member alive.
  { title: 'kubernetes backend, Lease mode, API test server', cluster: 'kubernetes', lock: 'lease', renewals: 'heartbeat', api: 'test-server', lease: 2000, renew: 1300, retry: 150, margin: 250 },
  { title: 'kubernetes backend, Lease mode, per-lock renewals, API test server', cluster: 'kubernetes', lock: 'lease', renewals: 'per-lock', api: 'test-server', lease: 2000, renew: 1300, retry: 150, margin: 250 },
  { title: 'kubernetes backend, ConfigMap mode, API test server', cluster: 'kubernetes', lock: 'configmap', api: 'test-server', lease: 2000, renew: 1300, retry: 150, margin: 250 },
  ...(REAL_KUBECONFIG
    ? [
        // Requests cross a real network to a real API server: longer timings, a wider margin.
        { title: 'kubernetes backend, Lease mode, real cluster', cluster: 'kubernetes', lock: 'lease', renewals: 'heartbeat', api: 'real', lease: 4000, renew: 2600, retry: 400, margin: 1000 } satisfies Target,
      ]
    : []),
  // A real etcd the harness starts (test/support/server-backend.ts). Lease TTLs are whole seconds,
  // and etcd checks for expired leases every 500 ms: that check is part of the margin.
  { title: 'etcd backend, real etcd', cluster: 'etcd', lease: 2000, renew: 1300, retry: 150, margin: 750 },
  // A real PostgreSQL the harness starts; followers wait for the expiry the server reports.
  { title: 'postgres backend, real PostgreSQL', cluster: 'postgres', lease: 1200, renew: 800, retry: 150, margin: 250 },
  // A real ZooKeeper the harness starts (tickTime 200 ms): it expires sessions in tickTime buckets.
  { title: 'zookeeper backend, real ZooKeeper', cluster: 'zookeeper', lease: 2000, renew: 1300, retry: 150, margin: 500 },
];

export function reportRealClusterSkip(file: string): void {
  if (REAL_KUBECONFIG) return;
  const missing = [process.env.KUBECONFIG ? undefined : 'KUBECONFIG is not set', process.env.DROMEDARY_TEST_REAL_K8S === '1' ? undefined : 'DROMEDARY_TEST_REAL_K8S is not 1'];
  console.log(
    `  [${file}] real-cluster chaos run skipped (${missing.filter(Boolean).join(', ')}): set KUBECONFIG to a cluster's kubeconfig and DROMEDARY_TEST_REAL_K8S=1 to run it there in Lease mode`,
  );
}

export interface Entry {
  member: string;
  what: string;
  at: bigint;
  /** A fencing token, when the fixture records one as a fourth field (NaN otherwise). */
  token: number;
}

/** Lists and deletes, through the API, what one test's members created. */
class ApiJanitor {
  readonly coordination: InstanceType<K8s['CoordinationV1Api']>;
  readonly core: InstanceType<K8s['CoreV1Api']>;
  readonly namespace: string;

  static async connect(kubeconfig: string, env: Record<string, string | undefined>): Promise<ApiJanitor> {
    const k8s = await loadClientNode();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    return new ApiJanitor(k8s, kc, resolveNamespace(kc, env));
  }

  constructor(k8s: K8s, kc: InstanceType<K8s['KubeConfig']>, namespace: string) {
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.namespace = namespace;
  }

  /** Lease mode: the run's Leases. ConfigMap mode: its locks ConfigMap and member pods. Nothing else, so no other RBAC is needed. */
  async removeRun(lock: 'lease' | 'configmap', labelSelector: string, configMap: string): Promise<void> {
    const namespace = this.namespace;
    const gone = (err: unknown) => {
      if (statusOf(err) !== 404) throw err;
    };
    if (lock === 'lease') {
      const leases = await this.coordination.listNamespacedLease({ namespace, labelSelector });
      for (const lease of leases.items) await this.coordination.deleteNamespacedLease({ name: lease.metadata!.name!, namespace }).catch(gone);
      return;
    }
    await this.core.deleteNamespacedConfigMap({ name: configMap, namespace }).catch(gone);
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector });
    for (const pod of pods.items) await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace }).catch(gone);
  }
}

export interface StartOptions {
  /** The member app's routes folder (default: the guarded routes). */
  routes?: string;
  /** Extra environment, e.g. a fixed DROMEDARY_MEMBER_ID. */
  env?: Record<string, string | undefined>;
  /** Extra CLI arguments after `run <routes> --cluster <kind>`. */
  args?: string[];
}

/**
 * Real member processes with short lease timings, on one target: the file-lock folder; Kubernetes
 * Leases and the ConfigMap protocol on the API test server (each member with its own token and
 * kubeconfig); and, when enabled, Kubernetes Leases on a real cluster. Each member records its
 * guarded exchanges; the checks read those records. One harness per describe block: its hooks give
 * every test a fresh folder, records file and run name, and stop every member it started.
 */
export class MembersHarness {
  readonly target: Target;
  readonly LEASE: number;
  readonly RENEW: number;
  readonly RETRY: number;
  readonly MARGIN: number;
  readonly configMapMode: boolean;
  /** ConfigMap mode: after taking a lock, a member waits leaseDuration before leading. */
  readonly ACQUIRE_DELAY: number;
  /** Followers poll every retryPeriod × up to this factor (the default jitter). */
  readonly JITTER = 1.2;
  /**
   * ConfigMap mode: the fixture's three locks share the one ConfigMap, so a member taking them all at
   * once can lose lock1's write to the other two; the first loss is retried at once, the second
   * after a retryPeriod. So one more retry wait.
   */
  readonly RACE_WAITS: number;
  /** The follower's poll after the fault (or the retry after a failed request), and the race waits. */
  readonly RETRIES: number;
  readonly NAMESPACE = 'members';
  dir = '';
  records = '';
  members = new Map<string, ProcessHandle>();
  /** Member id → its bearer token on the API test server. */
  tokens = new Map<string, string>();
  server: KubeApiServer | undefined;
  janitor: ApiJanitor | undefined;
  /** The etcd, postgres and zookeeper targets' server, and a proxy per member to cut its connection. */
  backend: ServerBackend | undefined;
  /** This test's unique name: member ids, Lease names, the ConfigMap and the cluster label derive from it. */
  run = '';

  constructor(target: Target) {
    this.target = target;
    this.LEASE = target.lease;
    this.RENEW = target.renew;
    this.RETRY = target.retry;
    this.MARGIN = target.margin;
    this.configMapMode = target.lock === 'configmap';
    this.ACQUIRE_DELAY = this.configMapMode ? this.LEASE : 0;
    this.RACE_WAITS = this.configMapMode ? 1 : 0;
    this.RETRIES = this.RETRY * this.JITTER * (1 + this.RACE_WAITS);
  }

  /** Registers the mocha hooks of the enclosing describe. */
  install(): void {
    before(async () => {
      if (this.target.api === 'test-server') {
        this.server = await startKubeApiServer({ namespace: this.NAMESPACE, tokens: Object.fromEntries(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'janitor'].map((t) => [t, {}])) });
        const kubeconfig = join(tmpdir(), `dromedary-members-janitor-${process.pid}.kubeconfig`);
        writeFileSync(kubeconfig, this.server.kubeconfig({ token: 'janitor', namespace: this.NAMESPACE }));
        this.janitor = await ApiJanitor.connect(kubeconfig, {});
        await rm(kubeconfig, { force: true });
      }
      if (this.target.api === 'real') this.janitor = await ApiJanitor.connect(REAL_KUBECONFIG!, process.env);
      if (this.target.cluster === 'etcd' || this.target.cluster === 'postgres' || this.target.cluster === 'zookeeper') this.backend = await ServerBackend.start(this.target.cluster);
    });
    after(async () => {
      await this.server?.close();
      await this.backend?.stop();
    });
    beforeEach(async () => {
      this.dir = await mkdtemp(join(tmpdir(), 'dromedary-members-'));
      this.records = join(this.dir, 'records.log');
      this.run = `dc${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
      await writeFile(this.records, '');
      this.members = new Map();
      this.tokens = new Map();
    });
    afterEach(async () => {
      for (const p of this.members.values()) await p.stop();
      this.server?.clearFaults();
      await this.backend?.endTest();
      if (this.janitor) await this.janitor.removeRun(this.target.lock!, `dromedary-chaos=${this.run}`, `${this.run}-leaders`);
      await rm(this.dir, { recursive: true, force: true });
    });
  }

  /** Starts member `name` (m1…m6); returns its member id. In ConfigMap mode its pod comes first, Running and Ready. */
  start(name: string, options: StartOptions = {}): string {
    const { target, server, backend } = this;
    const id = options.env?.DROMEDARY_MEMBER_ID ?? `${this.run}-${name}`;
    let kubeconfig: string | undefined;
    if (server) {
      kubeconfig = join(this.dir, `${name}.kubeconfig`);
      writeFileSync(kubeconfig, server.kubeconfig({ token: name, namespace: this.NAMESPACE }));
      if (this.configMapMode) server.createPod({ name: id, namespace: this.NAMESPACE, labels: { 'dromedary-chaos': this.run } });
    }
    if (target.api === 'real') kubeconfig = REAL_KUBECONFIG;
    const p = spawnCli(['run', options.routes ?? GUARDED_ROUTES, '--cluster', target.cluster, ...(options.args ?? [])], {
      env: {
        DROMEDARY_MEMBER_ID: id,
        DROMEDARY_CLUSTER_ROOT: join(this.dir, 'locks'),
        KUBECONFIG: kubeconfig,
        DROMEDARY_K8S_LOCK: target.lock,
        DROMEDARY_RENEWALS: target.renewals,
        DROMEDARY_K8S_LEASE_PREFIX: this.run,
        DROMEDARY_K8S_CONFIGMAP: `${this.run}-leaders`,
        DROMEDARY_CLUSTER_LABELS: target.cluster === 'kubernetes' ? `dromedary-chaos=${this.run}` : undefined,
        DROMEDARY_LEASE_DURATION: `${this.LEASE}ms`,
        DROMEDARY_RENEW_DEADLINE: `${this.RENEW}ms`,
        DROMEDARY_RETRY_PERIOD: `${this.RETRY}ms`,
        RECORDS: this.records,
        ...backend?.memberEnv(name, this.run),
        ...options.env,
      },
    });
    // Two processes may share a member id on purpose (the duplicate-id case): key them by name then.
    this.members.set(this.members.has(id) ? `${id}#${name}` : id, p);
    this.tokens.set(id, name);
    return id;
  }

  /** SIGKILL; in ConfigMap mode the kubelet then reports the pod not Ready (its container is restarting). */
  kill(id: string): void {
    this.members.get(id)!.signal('SIGKILL');
    if (this.configMapMode) this.server!.setPodStatus(id, { ready: false }, this.NAMESPACE);
  }

  /** SIGTERM, as a pod deletion sends it; once the process exits the pod is gone. */
  async terminate(id: string): Promise<number | null> {
    this.members.get(id)!.signal('SIGTERM');
    const { code } = await this.members.get(id)!.exited;
    if (this.configMapMode) this.server!.deletePod(id, this.NAMESPACE);
    return code;
  }

  async entries(): Promise<Entry[]> {
    const text = await readFile(this.records, 'utf8');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [member, what, at, token] = line.split(' ');
        return { member: member!, what: what!, at: BigInt(at!), token: Number(token) };
      })
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /**
   * The member that recorded `what` most recently, once it is recording steadily: its last `count`
   * records (3 by default) are its own. `extra`: more time for fixtures whose records are slow to come.
   */
  async currentRunner(what: string, since = 0n, options: { count?: number; extra?: number } = {}): Promise<string> {
    const count = options.count ?? 3;
    return waitFor(
      async () => {
        const mine = (await this.entries()).filter((e) => e.what === what && e.at > since);
        const last = mine.slice(-count);
        return last.length === count && last.every((e) => e.member === last[0]!.member) ? last[0]!.member : undefined;
      },
      { timeout: 15_000 + 2 * this.ACQUIRE_DELAY + (options.extra ?? 0), message: `someone to run ${what}` },
    );
  }

  /**
   * Never two members inside the guarded route at once. Each runner ticks every 40 ms, so a member
   * whose consecutive records are less than 3 ticks apart was running all that time: no other
   * member may have a record in between. A handover leaves a gap; a paused member leaves a gap.
   */
  assertNeverTwoAtOnce(all: Entry[], what: string): void {
    const list = all.filter((e) => e.what === what);
    const byMember = new Map<string, bigint[]>();
    for (const e of list) byMember.set(e.member, [...(byMember.get(e.member) ?? []), e.at]);
    for (const [member, times] of byMember) {
      for (let i = 1; i < times.length; i += 1) {
        const [from, to] = [times[i - 1]!, times[i]!];
        if (to - from > BigInt(3 * TICK) * MS) continue;
        const intruder = list.find((e) => e.member !== member && e.at > from && e.at < to);
        expect(intruder, `${intruder?.member} ran ${what} while ${member} was running it`).to.equal(undefined);
      }
    }
  }

  /** When lock1 first ran after `from`, once someone runs it steadily. */
  async firstRunAfter(from: bigint): Promise<bigint> {
    await this.currentRunner('lock1', from);
    return (await this.entries()).find((e) => e.what === 'lock1' && e.at > from)!.at;
  }

  now(): bigint {
    return process.hrtime.bigint();
  }

  msSince(from: bigint, to: bigint): number {
    return Number((to - from) / MS);
  }

  /**
   * The leader of lock1, once every running member has seen it lead: a member still starting when a
   * fault hits first sees the lease afterwards, and rightly starts its lease clock then.
   */
  async settledRunner(): Promise<string> {
    const runner = await this.currentRunner('lock1');
    const running = [...this.members.values()].filter((m) => m.running);
    await waitFor(() => running.every((m) => m.output.includes(`member ${runner} is now leader of lock1`)), {
      timeout: 15_000,
      message: `every member to see ${runner} lead lock1`,
    });
    return runner;
  }

  /**
   * ConfigMap mode: resolves once every other running member has read the locks ConfigMap twice
   * after its view of the victim's lease ran out, so each had its chances to take over.
   */
  async followersPolledPastLease(victim: string, sinceEpochMs: number): Promise<void> {
    const after = sinceEpochMs + this.LEASE;
    const others = [...this.members.keys()].filter((id) => id !== victim && this.members.get(id)!.running);
    await waitFor(
      () => others.every((id) => this.server!.requests({ token: this.tokens.get(id), verb: 'get', resource: 'configmaps' }).filter((r) => r.time > after).length >= 2),
      { timeout: 15_000, message: 'every follower to poll the locks ConfigMap after the lease ran out' },
    );
  }
}

/**
 * Declares one describe block per target (file, Lease mode, ConfigMap mode, and a real cluster when
 * enabled, and the server backends), each with its own harness; `body` declares the tests. `only`
 * limits the blocks to some backends.
 */
export function describeMembers(title: string, body: (h: MembersHarness) => void, only?: { clusters: Target['cluster'][] }): void {
  for (const target of TARGETS.filter((t) => !only || only.clusters.includes(t.cluster))) {
    describe(`${title} (${target.title})`, function () {
      this.timeout(target.api === 'real' ? 120_000 : 60_000);
      const h = new MembersHarness(target);
      h.install();
      body(h);
    });
  }
}
