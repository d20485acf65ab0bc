import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';
import { startKubeApiServer, type KubeApiServer } from '../../lib/testing/index.ts';
import { loadClientNode, resolveNamespace, statusOf, type K8s } from '../../lib/cluster/kubernetes/client.ts';

const ROUTES = fileURLToPath(new URL('./fixtures/routes', import.meta.url));
const MS = 1_000_000n;
/** The guarded routes tick every 40 ms (fixtures/routes/guarded.ts). */
const TICK = 40;

/**
 * Where the members coordinate, and with which timings. Every bound a test checks is derived from
 * these: the protocol's own waits (leaseDuration, acquireDelay, retryPeriod) plus `margin`, the
 * allowance for a notification, the API requests of one attempt and one tick of the guarded route.
 */
interface Target {
  title: string;
  cluster: 'file' | 'kubernetes';
  lock?: 'lease' | 'configmap';
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
if (!REAL_KUBECONFIG) {
  const missing = [process.env.KUBECONFIG ? undefined : 'KUBECONFIG is not set', process.env.DROMEDARY_TEST_REAL_K8S === '1' ? undefined : 'DROMEDARY_TEST_REAL_K8S is not 1'];
  console.log(
    `  [members.test] real-cluster chaos run skipped (${missing.filter(Boolean).join(', ')}): set KUBECONFIG to a cluster's kubeconfig and DROMEDARY_TEST_REAL_K8S=1 to run it there in Lease mode`,
  );
}

const TARGETS: Target[] = [
  { title: 'file backend', cluster: 'file', lease: 1200, renew: 800, retry: 150, margin: 250 },
  // A Lease stores its duration in whole seconds, so the kubernetes members use a whole-second lease.
  { title: 'kubernetes backend, Lease mode, API test server', cluster: 'kubernetes', lock: 'lease', api: 'test-server', lease: 2000, renew: 1300, retry: 150, margin: 250 },
  { title: 'kubernetes backend, ConfigMap mode, API test server', cluster: 'kubernetes', lock: 'configmap', api: 'test-server', lease: 2000, renew: 1300, retry: 150, margin: 250 },
  ...(REAL_KUBECONFIG
    ? [
        // Requests cross a real network to a real API server: longer timings, a wider margin.
        { title: 'kubernetes backend, Lease mode, real cluster', cluster: 'kubernetes', lock: 'lease', api: 'real', lease: 4000, renew: 2600, retry: 400, margin: 1000 } satisfies Target,
      ]
    : []),
];

interface Entry {
  member: string;
  what: string;
  at: bigint;
}

/** Lists and deletes, through the API, what one test's members created. */
class ApiJanitor {
  readonly #coordination: InstanceType<K8s['CoordinationV1Api']>;
  readonly #core: InstanceType<K8s['CoreV1Api']>;
  readonly namespace: string;

  static async connect(kubeconfig: string, env: Record<string, string | undefined>): Promise<ApiJanitor> {
    const k8s = await loadClientNode();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    return new ApiJanitor(k8s, kc, resolveNamespace(kc, env));
  }

  constructor(k8s: K8s, kc: InstanceType<K8s['KubeConfig']>, namespace: string) {
    this.#coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.#core = kc.makeApiClient(k8s.CoreV1Api);
    this.namespace = namespace;
  }

  /** Lease mode: the run's Leases. ConfigMap mode: its locks ConfigMap and member pods. Nothing else, so no other RBAC is needed. */
  async removeRun(lock: 'lease' | 'configmap', labelSelector: string, configMap: string): Promise<void> {
    const namespace = this.namespace;
    const gone = (err: unknown) => {
      if (statusOf(err) !== 404) throw err;
    };
    if (lock === 'lease') {
      const leases = await this.#coordination.listNamespacedLease({ namespace, labelSelector });
      for (const lease of leases.items) await this.#coordination.deleteNamespacedLease({ name: lease.metadata!.name!, namespace }).catch(gone);
      return;
    }
    await this.#core.deleteNamespacedConfigMap({ name: configMap, namespace }).catch(gone);
    const pods = await this.#core.listNamespacedPod({ namespace, labelSelector });
    for (const pod of pods.items) await this.#core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace }).catch(gone);
  }
}

/**
 * Real member processes with short lease timings, on each target: the file-lock folder; Kubernetes
 * Leases and the ConfigMap protocol on the API test server (each member with its own token and
 * kubeconfig); and, when enabled, Kubernetes Leases on a real cluster. Each member records its
 * guarded exchanges; the checks read those records.
 */
for (const target of TARGETS) describe(`clustered singleton routes across processes (${target.title})`, function () {
  this.timeout(target.api === 'real' ? 120_000 : 60_000);
  const { lease: LEASE, renew: RENEW, retry: RETRY, margin: MARGIN } = target;
  const configMapMode = target.lock === 'configmap';
  /** ConfigMap mode: after taking a lock, a member waits leaseDuration before leading. */
  const ACQUIRE_DELAY = configMapMode ? LEASE : 0;
  /** Followers poll every retryPeriod × up to this factor (the default jitter). */
  const JITTER = 1.2;
  /**
   * ConfigMap mode: the fixture's three locks share the one ConfigMap, so a member taking them all at
   * once can lose lock1's write to the other two; the first loss is retried at once, the second
   * after a retryPeriod. So one more retry wait.
   */
  const RACE_WAITS = configMapMode ? 1 : 0;
  /** The follower's poll after the fault (or the retry after a failed request), and the race waits. */
  const RETRIES = RETRY * JITTER * (1 + RACE_WAITS);
  const NAMESPACE = 'members';
  let dir: string;
  let records: string;
  let members: Map<string, ProcessHandle>;
  /** Member id → its bearer token on the API test server. */
  let tokens: Map<string, string>;
  let server: KubeApiServer | undefined;
  let janitor: ApiJanitor | undefined;
  /** This test's unique name: member ids, Lease names, the ConfigMap and the cluster label derive from it. */
  let run: string;

  before(async () => {
    if (target.api === 'test-server') {
      server = await startKubeApiServer({ namespace: NAMESPACE, tokens: Object.fromEntries(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'janitor'].map((t) => [t, {}])) });
      const kubeconfig = join(tmpdir(), `dromedary-members-janitor-${process.pid}.kubeconfig`);
      writeFileSync(kubeconfig, server.kubeconfig({ token: 'janitor', namespace: NAMESPACE }));
      janitor = await ApiJanitor.connect(kubeconfig, {});
      await rm(kubeconfig, { force: true });
    }
    if (target.api === 'real') janitor = await ApiJanitor.connect(REAL_KUBECONFIG!, process.env);
  });

  after(async () => {
    await server?.close();
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-members-'));
    records = join(dir, 'records.log');
    run = `dc${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
    await writeFile(records, '');
    members = new Map();
    tokens = new Map();
  });

  afterEach(async () => {
    for (const p of members.values()) await p.stop();
    server?.clearFaults();
    if (janitor) await janitor.removeRun(target.lock!, `dromedary-chaos=${run}`, `${run}-leaders`);
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts member `name` (m1…m6); returns its member id. In ConfigMap mode its pod comes first, Running and Ready. */
  function start(name: string): string {
    const id = `${run}-${name}`;
    let kubeconfig: string | undefined;
    if (server) {
      kubeconfig = join(dir, `${name}.kubeconfig`);
      writeFileSync(kubeconfig, server.kubeconfig({ token: name, namespace: NAMESPACE }));
      if (configMapMode) server.createPod({ name: id, namespace: NAMESPACE, labels: { 'dromedary-chaos': run } });
    }
    if (target.api === 'real') kubeconfig = REAL_KUBECONFIG;
    const p = spawnCli(['run', ROUTES, '--cluster', target.cluster], {
      env: {
        DROMEDARY_MEMBER_ID: id,
        DROMEDARY_CLUSTER_ROOT: join(dir, 'locks'),
        KUBECONFIG: kubeconfig,
        DROMEDARY_K8S_LOCK: target.lock,
        DROMEDARY_K8S_LEASE_PREFIX: run,
        DROMEDARY_K8S_CONFIGMAP: `${run}-leaders`,
        DROMEDARY_CLUSTER_LABELS: target.cluster === 'kubernetes' ? `dromedary-chaos=${run}` : undefined,
        DROMEDARY_LEASE_DURATION: `${LEASE}ms`,
        DROMEDARY_RENEW_DEADLINE: `${RENEW}ms`,
        DROMEDARY_RETRY_PERIOD: `${RETRY}ms`,
        RECORDS: records,
      },
    });
    members.set(id, p);
    tokens.set(id, name);
    return id;
  }

  /** SIGKILL; in ConfigMap mode the kubelet then reports the pod not Ready (its container is restarting). */
  function kill(id: string): void {
    members.get(id)!.signal('SIGKILL');
    if (configMapMode) server!.setPodStatus(id, { ready: false }, NAMESPACE);
  }

  /** SIGTERM, as a pod deletion sends it; once the process exits the pod is gone. */
  async function terminate(id: string): Promise<number | null> {
    members.get(id)!.signal('SIGTERM');
    const { code } = await members.get(id)!.exited;
    if (configMapMode) server!.deletePod(id, NAMESPACE);
    return code;
  }

  async function entries(): Promise<Entry[]> {
    const text = await readFile(records, 'utf8');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [member, what, at] = line.split(' ');
        return { member: member!, what: what!, at: BigInt(at!) };
      })
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /** The member that recorded `what` most recently, once it is recording steadily. */
  async function currentRunner(what: string, since = 0n): Promise<string> {
    return waitFor(
      async () => {
        const mine = (await entries()).filter((e) => e.what === what && e.at > since);
        const last = mine.slice(-3);
        return last.length === 3 && last.every((e) => e.member === last[0]!.member) ? last[0]!.member : undefined;
      },
      { timeout: 15_000 + 2 * ACQUIRE_DELAY, message: `someone to run ${what}` },
    );
  }

  /**
   * Never two members inside the guarded route at once. Each runner ticks every 40 ms, so a member
   * whose consecutive records are less than 3 ticks apart was running all that time: no other
   * member may have a record in between. A handover leaves a gap; a paused member leaves a gap.
   */
  function assertNeverTwoAtOnce(all: Entry[], what: string): void {
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
  async function firstRunAfter(from: bigint): Promise<bigint> {
    await currentRunner('lock1', from);
    return (await entries()).find((e) => e.what === 'lock1' && e.at > from)!.at;
  }

  const now = () => process.hrtime.bigint();
  const msSince = (from: bigint, to: bigint) => Number((to - from) / MS);

  /**
   * The leader of lock1, once every running member has seen it lead: a member still starting when a
   * fault hits first sees the lease afterwards, and rightly starts its lease clock then.
   */
  async function settledRunner(): Promise<string> {
    const runner = await currentRunner('lock1');
    const running = [...members.values()].filter((m) => m.running);
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
  async function followersPolledPastLease(victim: string, sinceEpochMs: number): Promise<void> {
    const after = sinceEpochMs + LEASE;
    const others = [...members.keys()].filter((id) => id !== victim && members.get(id)!.running);
    await waitFor(
      () => others.every((id) => server!.requests({ token: tokens.get(id), verb: 'get', resource: 'configmaps' }).filter((r) => r.time > after).length >= 2),
      { timeout: 15_000, message: 'every follower to poll the locks ConfigMap after the lease ran out' },
    );
  }

  it('runs master routes on exactly one of 3 members, non-master routes on all, and locks independently', async () => {
    for (const name of ['m1', 'm2', 'm3']) start(name);
    const runner1 = await currentRunner('lock1');
    const runner2 = await currentRunner('lock2');
    await waitFor(async () => new Set((await entries()).filter((e) => e.what === 'all').map((e) => e.member)).size === 3, {
      message: 'every member to run the non-master route',
    });
    const from = now();
    await waitFor(async () => (await entries()).filter((e) => e.what === 'lock1' && e.at > from).length >= 20);
    const all = await entries();
    const recent = all.filter((e) => e.at > from);
    expect(new Set(recent.filter((e) => e.what === 'lock1').map((e) => e.member))).to.deep.equal(new Set([runner1]));
    expect(new Set(recent.filter((e) => e.what === 'lock2').map((e) => e.member))).to.deep.equal(new Set([runner2]));
    expect(all.filter((e) => e.what === 'service-start').length).to.equal(1);
    assertNeverTwoAtOnce(all, 'lock1');
    assertNeverTwoAtOnce(all, 'lock2');
    const leaderLog = members.get(runner1)!.output;
    expect(leaderLog).to.contain(`member ${runner1} is now leader of lock1 (this member)`);
  });

  // Lease mode and file locks: a follower may take over once the lease it last saw renewed runs out
  // (≤ leaseDuration after the kill), and polls at most one retryPeriod late.
  // ConfigMap mode: the holder stops being a live member the moment its pod goes not Ready; the
  // followers hear it from the pod watch, take the lock, and wait acquireDelay (= leaseDuration).
  const failoverBound = Math.ceil((configMapMode ? 0 : LEASE) + ACQUIRE_DELAY + RETRIES + MARGIN);
  it(`after SIGKILL of the leader, another member runs the route within ${failoverBound} ms`, async () => {
    for (const name of ['m1', 'm2', 'm3']) start(name);
    const victim = await settledRunner();
    const killedAt = now();
    kill(victim);
    const next = await currentRunner('lock1', killedAt);
    expect(next).not.to.equal(victim);
    const first = (await entries()).find((e) => e.what === 'lock1' && e.at > killedAt)!;
    expect(msSince(killedAt, first.at)).to.be.below(failoverBound);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  // A graceful stop releases the lock, so a follower takes it at once; 1 s covers the shutdown
  // reaching the release, the notification and the takeover. ConfigMap mode adds acquireDelay.
  const handoverBound = ACQUIRE_DELAY + 1000;
  it(`after SIGTERM of the leader, another member takes over within ${handoverBound} ms because the lock was released`, async () => {
    for (const name of ['m1', 'm2', 'm3']) start(name);
    const victim = await settledRunner();
    const termAt = now();
    expect(await terminate(victim)).to.equal(0);
    const next = await currentRunner('lock1', termAt);
    expect(next).not.to.equal(victim);
    const first = (await entries()).find((e) => e.what === 'lock1' && e.at > termAt && e.member !== victim)!;
    expect(msSince(termAt, first.at)).to.be.below(handoverBound);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  if (!configMapMode) {
    it('a leader paused past its lease (SIGSTOP) produces no exchange after SIGCONT until it leads again', async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await settledRunner();
      const stoppedAt = now();
      members.get(victim)!.signal('SIGSTOP');
      const next = await currentRunner('lock1', stoppedAt);
      expect(next).not.to.equal(victim);
      const resumedAt = now();
      members.get(victim)!.signal('SIGCONT');
      // Let the resumed member run for several ticks and renew attempts.
      const until = now() + BigInt(RENEW + RETRY) * MS;
      await waitFor(async () => (await entries()).some((e) => e.at > until), { timeout: 10_000 });
      const afterResume = (await entries()).filter((e) => e.what === 'lock1' && e.member === victim && e.at > resumedAt);
      expect(afterResume, `${victim} ran lock1 after resuming`).to.deep.equal([]);
      expect(members.get(victim)!.output).to.match(/Leadership lost for lock1|no member leads lock1|member \S+ is now leader of lock1$/m);
      assertNeverTwoAtOnce(await entries(), 'lock1');
    });
  } else {
    // A stopped process keeps its pod Ready (the kubelet sees a container, not a hang), so nobody may
    // take the lock from it. On SIGCONT its renewDeadline has passed: it has stopped the guarded
    // work, and renewing its own lock is a fresh acquisition, with acquireDelay before leading.
    const resumeBound = Math.ceil(RETRIES + ACQUIRE_DELAY + MARGIN);
    it(`a leader paused past its lease (SIGSTOP) keeps a Ready pod: nobody takes over, and it leads again within ${resumeBound} ms of SIGCONT, not sooner than acquireDelay`, async () => {
      for (const name of ['m1', 'm2', 'm3']) start(name);
      const victim = await settledRunner();
      const stoppedAt = now();
      members.get(victim)!.signal('SIGSTOP');
      await followersPolledPastLease(victim, Date.now());
      const resumedAt = now();
      members.get(victim)!.signal('SIGCONT');
      const next = await currentRunner('lock1', resumedAt);
      const all = await entries();
      const whileStopped = all.filter((e) => e.what === 'lock1' && e.at > stoppedAt + BigInt(TICK) * MS && e.at < resumedAt);
      expect(whileStopped, 'exchanges while the holder was stopped').to.deep.equal([]);
      expect(next).to.equal(victim);
      const first = all.find((e) => e.what === 'lock1' && e.at > resumedAt)!;
      expect(msSince(resumedAt, first.at)).to.be.at.least(ACQUIRE_DELAY);
      expect(msSince(resumedAt, first.at)).to.be.below(resumeBound);
      assertNeverTwoAtOnce(all, 'lock1');
    });
  }

  it('survives a rolling replacement of every member, one at a time, with a runner after each step', async () => {
    const old = ['m1', 'm2', 'm3'].map(start);
    await currentRunner('lock1');
    for (const [i, fresh] of ['m4', 'm5', 'm6'].entries()) {
      const id = start(fresh);
      await members.get(id)!.waitForLine(/started \d+ route/);
      const stoppedAt = now();
      expect(await terminate(old[i]!)).to.equal(0);
      await currentRunner('lock1', stoppedAt);
    }
    const last = await currentRunner('lock1', now());
    expect(['m4', 'm5', 'm6'].map((n) => `${run}-${n}`)).to.include(last);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  if (target.api === 'test-server') {
    if (!configMapMode) {
      it('a leader blackholed from the API server stops running the route, and another member takes over', async () => {
        for (const name of ['m1', 'm2', 'm3']) start(name);
        const victim = await settledRunner();
        const cutAt = now();
        server!.faults(tokens.get(victim)).blackhole();
        // The victim legitimately runs on until its renewDeadline passes; wait for someone else.
        const next = await waitFor(
          async () => (await entries()).filter((e) => e.what === 'lock1' && e.at > cutAt && e.member !== victim).slice(-3).at(-3)?.member,
          { timeout: 15_000, message: 'another member to run lock1' },
        );
        expect(next).not.to.equal(victim);
        const all = await entries();
        const takeover = all.find((e) => e.what === 'lock1' && e.member === next && e.at > cutAt)!.at;
        // The cut-off leader stepped down by itself (renewDeadline) before the new one started (leaseDuration).
        expect(all.some((e) => e.what === 'lock1' && e.member === victim && e.at > takeover)).to.equal(false);
        expect(msSince(cutAt, takeover)).to.be.below(failoverBound);
        assertNeverTwoAtOnce(all, 'lock1');
      });
    } else {
      // Cut off from the API server, the leader stops within renewDeadline; its pod stays Ready, so
      // nobody may take over. Once the partition heals it renews its own lock: a fresh acquisition.
      const healBound = Math.ceil(RETRIES + ACQUIRE_DELAY + MARGIN);
      it(`a leader blackholed from the API server stops within renewDeadline; its Ready pod keeps the lock, and it leads again within ${healBound} ms of the partition healing`, async () => {
        for (const name of ['m1', 'm2', 'm3']) start(name);
        const victim = await settledRunner();
        const cutAt = now();
        server!.faults(tokens.get(victim)).blackhole();
        await followersPolledPastLease(victim, Date.now());
        const healedAt = now();
        server!.faults(tokens.get(victim)).clear();
        const next = await currentRunner('lock1', healedAt);
        const all = await entries();
        // The last renewal began before the cut, so its renewDeadline ended before cutAt + renewDeadline;
        // the margin covers an exchange admitted just before that and recorded a little later.
        const stepDown = cutAt + BigInt(RENEW + MARGIN) * MS;
        const cutOff = all.filter((e) => e.what === 'lock1' && e.at > stepDown && e.at < healedAt);
        expect(cutOff, 'exchanges after renewDeadline while the leader was cut off').to.deep.equal([]);
        expect(next).to.equal(victim);
        const first = all.find((e) => e.what === 'lock1' && e.at > healedAt)!;
        expect(msSince(healedAt, first.at)).to.be.at.least(ACQUIRE_DELAY);
        expect(msSince(healedAt, first.at)).to.be.below(healBound);
        assertNeverTwoAtOnce(all, 'lock1');
      });
    }

    // If the faults made the leader step down, a follower takes over once its lease runs out (Lease
    // mode), or the leader takes its own lock back and waits acquireDelay (ConfigMap mode), after at
    // most one retry wait.
    const recoveryBound = Math.ceil(LEASE + ACQUIRE_DELAY + RETRIES + MARGIN);
    it(`keeps one runner through 5xx bursts, slow responses and an API server restart, with a runner within ${recoveryBound} ms after each`, async () => {
      const ids = ['m1', 'm2', 'm3'].map(start);
      await settledRunner();
      const failed = () => server!.requests().filter((r) => r.fault === 'fail').length;
      const before = failed();
      for (const id of ids) server!.faults(tokens.get(id)).failRate(0.3, 503).latency(100);
      await waitFor(() => failed() >= before + 10, { timeout: 20_000, message: 'ten failed API requests' });
      for (const id of ids) server!.faults(tokens.get(id)).clear();
      const clearedAt = now();
      expect(msSince(clearedAt, await firstRunAfter(clearedAt))).to.be.below(recoveryBound);
      const restartedAt = now();
      await server!.restart();
      expect(msSince(restartedAt, await firstRunAfter(restartedAt))).to.be.below(recoveryBound);
      assertNeverTwoAtOnce(await entries(), 'lock1');
    });
  }

  it('moves a custom singleton service with leadership', async () => {
    const first = start('m1');
    await waitFor(async () => (await entries()).some((e) => e.what === 'service-start' && e.member === first), { timeout: 10_000 + ACQUIRE_DELAY });
    const second = start('m2');
    await members.get(second)!.waitForLine(new RegExp(`member ${first} is now leader of lock3`));
    expect(await terminate(first)).to.equal(0);
    await waitFor(async () => (await entries()).some((e) => e.what === 'service-start' && e.member === second), { timeout: 10_000 + ACQUIRE_DELAY });
    const services = (await entries()).filter((e) => e.what.startsWith('service-')).map((e) => `${e.member} ${e.what}`);
    expect(services).to.deep.equal([`${first} service-start`, `${first} service-stop`, `${second} service-start`]);
  });
});
