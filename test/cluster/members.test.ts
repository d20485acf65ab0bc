import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';
import { startKubeApiServer, type KubeApiServer } from '../../lib/testing/index.ts';

const ROUTES = fileURLToPath(new URL('./fixtures/routes', import.meta.url));
const RETRY = 150;
const MS = 1_000_000n;

interface Entry {
  member: string;
  what: string;
  at: bigint;
}

/**
 * Real member processes with short lease timings, on each backend: the file-lock folder, and
 * Kubernetes Leases on the API test server (each member with its own token and kubeconfig). Each
 * member records its guarded exchanges; the checks read those records.
 */
for (const backend of ['file', 'kubernetes'] as const) describe(`clustered singleton routes across processes (${backend} backend)`, function () {
  this.timeout(60_000);
  // A Lease stores its duration in whole seconds, so the kubernetes members use a whole-second lease.
  const LEASE = backend === 'kubernetes' ? 2000 : 1200;
  const RENEW = backend === 'kubernetes' ? 1300 : 800;
  let dir: string;
  let records: string;
  let members: Map<string, ProcessHandle>;
  let server: KubeApiServer | undefined;
  // Each test's members share fresh Lease names, so tests do not inherit each other's holders.
  let leasePrefix: string;

  before(async () => {
    if (backend === 'kubernetes') server = await startKubeApiServer({ namespace: 'members', tokens: Object.fromEntries(['m1', 'm2', 'm3', 'm4', 'm5', 'm6'].map((t) => [t, {}])) });
  });

  after(async () => {
    await server?.close();
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-members-'));
    records = join(dir, 'records.log');
    leasePrefix = `t${Date.now().toString(36)}`;
    await writeFile(records, '');
    members = new Map();
  });

  afterEach(async () => {
    for (const p of members.values()) await p.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function start(id: string): ProcessHandle {
    const kubeconfig = join(dir, `${id}.kubeconfig`);
    if (server) writeFileSync(kubeconfig, server.kubeconfig({ token: id, namespace: 'members' }));
    const p = spawnCli(['run', ROUTES, '--cluster', backend], {
      env: {
        DROMEDARY_MEMBER_ID: id,
        DROMEDARY_CLUSTER_ROOT: join(dir, 'locks'),
        KUBECONFIG: server ? kubeconfig : undefined,
        DROMEDARY_K8S_LEASE_PREFIX: server ? leasePrefix : undefined,
        DROMEDARY_LEASE_DURATION: `${LEASE}ms`,
        DROMEDARY_RENEW_DEADLINE: `${RENEW}ms`,
        DROMEDARY_RETRY_PERIOD: `${RETRY}ms`,
        RECORDS: records,
      },
    });
    members.set(id, p);
    return p;
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
      { timeout: 15_000, message: `someone to run ${what}` },
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
        if (to - from > 120n * MS) continue;
        const intruder = list.find((e) => e.member !== member && e.at > from && e.at < to);
        expect(intruder, `${intruder?.member} ran ${what} while ${member} was running it`).to.equal(undefined);
      }
    }
  }

  const now = () => process.hrtime.bigint();

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

  it('runs master routes on exactly one of 3 members, non-master routes on all, and locks independently', async () => {
    for (const id of ['m1', 'm2', 'm3']) start(id);
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

  it('after SIGKILL of the leader, another member runs the route within leaseDuration + retryPeriod', async () => {
    for (const id of ['m1', 'm2', 'm3']) start(id);
    const victim = await settledRunner();
    const killedAt = now();
    members.get(victim)!.signal('SIGKILL');
    const next = await currentRunner('lock1', killedAt);
    expect(next).not.to.equal(victim);
    const first = (await entries()).find((e) => e.what === 'lock1' && e.at > killedAt)!;
    const failoverMs = Number((first.at - killedAt) / MS);
    expect(failoverMs).to.be.below(LEASE + RETRY + 250);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  it('after SIGTERM of the leader, another member takes over within 1 s because the lease was released', async () => {
    for (const id of ['m1', 'm2', 'm3']) start(id);
    const victim = await settledRunner();
    const termAt = now();
    members.get(victim)!.signal('SIGTERM');
    expect((await members.get(victim)!.exited).code).to.equal(0);
    const next = await currentRunner('lock1', termAt);
    expect(next).not.to.equal(victim);
    const first = (await entries()).find((e) => e.what === 'lock1' && e.at > termAt && e.member !== victim)!;
    expect(Number((first.at - termAt) / MS)).to.be.below(1000);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  it('a leader paused past its lease (SIGSTOP) produces no exchange after SIGCONT until it leads again', async () => {
    for (const id of ['m1', 'm2', 'm3']) start(id);
    const victim = await settledRunner();
    const stoppedAt = now();
    members.get(victim)!.signal('SIGSTOP');
    const next = await currentRunner('lock1', stoppedAt);
    expect(next).not.to.equal(victim);
    const resumedAt = now();
    members.get(victim)!.signal('SIGCONT');
    // Let the resumed member run for several ticks and renew attempts.
    const until = now() + 1500n * MS;
    await waitFor(async () => (await entries()).some((e) => e.at > until), { timeout: 10_000 });
    const afterResume = (await entries()).filter((e) => e.what === 'lock1' && e.member === victim && e.at > resumedAt);
    expect(afterResume, `${victim} ran lock1 after resuming`).to.deep.equal([]);
    expect(members.get(victim)!.output).to.match(/Leadership lost for lock1|no member leads lock1|member \S+ is now leader of lock1$/m);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  it('survives a rolling replacement of every member, one at a time, with a runner after each step', async () => {
    for (const id of ['m1', 'm2', 'm3']) start(id);
    await currentRunner('lock1');
    for (const [old, fresh] of [['m1', 'm4'], ['m2', 'm5'], ['m3', 'm6']] as const) {
      start(fresh);
      await members.get(fresh)!.waitForLine(/started \d+ route/);
      const stoppedAt = now();
      members.get(old)!.signal('SIGTERM');
      expect((await members.get(old)!.exited).code).to.equal(0);
      await currentRunner('lock1', stoppedAt);
    }
    const last = await currentRunner('lock1', now());
    expect(['m4', 'm5', 'm6']).to.include(last);
    assertNeverTwoAtOnce(await entries(), 'lock1');
  });

  if (backend === 'kubernetes') {
    it('a leader blackholed from the API server stops running the route, and another member takes over', async () => {
      for (const id of ['m1', 'm2', 'm3']) start(id);
      const victim = await settledRunner();
      const cutAt = now();
      server!.faults(victim).blackhole();
      try {
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
        assertNeverTwoAtOnce(all, 'lock1');
      } finally {
        server!.faults(victim).clear();
      }
    });

    it('keeps one runner through 5xx bursts, slow responses and an API server restart', async () => {
      for (const id of ['m1', 'm2', 'm3']) start(id);
      await currentRunner('lock1');
      const failed = () => server!.requests().filter((r) => r.fault === 'fail').length;
      const before = failed();
      for (const id of ['m1', 'm2', 'm3']) server!.faults(id).failRate(0.3, 503).latency(100);
      await waitFor(() => failed() >= before + 10, { timeout: 20_000, message: 'ten failed API requests' });
      for (const id of ['m1', 'm2', 'm3']) server!.faults(id).clear();
      const restartedAt = now();
      await server!.restart();
      await currentRunner('lock1', restartedAt);
      assertNeverTwoAtOnce(await entries(), 'lock1');
    });
  }

  it('moves a custom singleton service with leadership', async () => {
    start('m1');
    await waitFor(async () => (await entries()).some((e) => e.what === 'service-start' && e.member === 'm1'));
    start('m2');
    await members.get('m2')!.waitForLine(/member m1 is now leader of lock3/);
    members.get('m1')!.signal('SIGTERM');
    await members.get('m1')!.exited;
    await waitFor(async () => (await entries()).some((e) => e.what === 'service-start' && e.member === 'm2'));
    const services = (await entries()).filter((e) => e.what.startsWith('service-')).map((e) => `${e.member} ${e.what}`);
    expect(services).to.deep.equal(['m1 service-start', 'm1 service-stop', 'm2 service-start']);
  });
});
