import { expect } from 'chai';
import { cp, mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMembers, GUARDED_ROUTES, MembersHarness, reportRealClusterSkip, TARGETS } from '../support/cluster-members.ts';
import { waitFor } from '../support/wait.ts';

reportRealClusterSkip('members-filestore.test');

/** The fixture app's locks: lock1 and lock2 guard routes, lock3 a singleton service. */
const LOCKS = ['lock1', 'lock2', 'lock3'];

/** Passes a window of time: what these tests measure is what happens during it. */
const windowOf = (ms: number) => {
  const end = performance.now() + ms;
  return waitFor(() => performance.now() >= end, { timeout: ms + 5000, interval: 50 });
};

describeMembers('an idle leader', (h) => {
  // Without any change, a leader writes each lock's record once per renewal, at most every retryPeriod.
  const PERIODS = 20;
  it(`writes no more than its renewals over ${PERIODS} renew periods`, async () => {
    const id = h.start('m1');
    await h.currentRunner('lock1');
    await h.currentRunner('lock2');
    await waitFor(async () => (await h.entries()).some((e) => e.what === 'service-start'), { message: 'the singleton on lock3 to start' });
    const locks = join(h.dir, 'locks');
    const newest = async (lock: string) =>
      Math.max(0, ...(await readdir(join(locks, lock)).catch(() => [] as string[])).map((n) => /^v(\d+)\.json$/.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])));
    // Heartbeat mode: each heartbeat file carries its sequence number, the count of its writes.
    const heartbeats = async () => {
      const dir = join(locks, '.heartbeats');
      const files = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
      const sequences = await Promise.all(files.map(async (n) => (JSON.parse(await readFile(join(dir, n), 'utf8')) as { sequence: number }).sequence));
      return sequences.reduce((a, b) => a + b, 0);
    };
    const writes = async (): Promise<number> => {
      if (h.target.cluster === 'file') return (await Promise.all(LOCKS.map(newest))).reduce((a, b) => a + b, 0) + (await heartbeats());
      if (h.backend) return h.backend.requests();
      const resource = h.configMapMode ? 'configmaps' : 'leases';
      return h.server!.requests({ token: 'm1', resource }).filter((r) => r.verb === 'update' || r.verb === 'create' || r.verb === 'patch').length;
    };
    const heartbeatMode = h.target.renewals === 'heartbeat';
    if (h.target.cluster === 'file' && !heartbeatMode) {
      // Old versions are deleted once 8 are kept: past that point, not before, deletions happen.
      await waitFor(async () => (await newest('lock1')) >= 10, { timeout: 12 * h.RETRY * h.JITTER + h.MARGIN + 5000, message: 'ten renewals of lock1' });
    }
    const before = await writes();
    await windowOf(PERIODS * h.RETRY);
    const during = (await writes()) - before;

    if (heartbeatMode) {
      // One heartbeat write per round (every renewDeadline / 3) for all its locks, plus one at each edge of the window.
      const rounds = Math.ceil((PERIODS * h.RETRY) / Math.floor(h.RENEW / 3));
      expect(during, `${id} wrote ${during} times in ${rounds} heartbeat rounds`).to.be.at.most(rounds + 2);
      expect(during, 'the leader kept its heartbeat').to.be.at.least(1);
      return;
    }
    // Each lock renews at most once per retryPeriod, plus one renewal at each edge of the window.
    expect(during, `${id} wrote ${during} times in ${PERIODS} renew periods`).to.be.at.most(LOCKS.length * (PERIODS + 2));
    expect(during, 'the leader kept renewing').to.be.at.least(LOCKS.length);
  });
});

describe('the default lock domain: one per user, not per routes path (file backend)', function () {
  this.timeout(60_000);
  const h = new MembersHarness(TARGETS.find((t) => t.cluster === 'file')!);
  h.install();

  it('members started with the routes path typed differently, and from a copy of the app, never both run lock1', async () => {
    // The per-user default folder lands in this test's own temp folder, away from other tests on this machine.
    const tmp = join(h.dir, 'tmp');
    await mkdir(tmp, { mode: 0o700 });
    const copy = join(h.dir, 'release-v2');
    await cp(GUARDED_ROUTES, join(copy, 'routes'), { recursive: true });
    await writeFile(join(copy, 'package.json'), '{"type":"module"}\n');
    const env = { DROMEDARY_CLUSTER_ROOT: undefined, TMPDIR: tmp };
    const ids = [
      h.start('m1', { env, routes: GUARDED_ROUTES }),
      h.start('m2', { env, routes: join(GUARDED_ROUTES, 'guarded.ts') }),
      h.start('m3', { env, routes: `${join(copy, 'routes')}/` }),
    ];
    const folder = join(tmp, `dromedary-${process.getuid!()}`, 'cluster');
    for (const id of ids) await h.members.get(id)!.waitForLine(new RegExp(`File cluster folder ${folder}: `));
    const leader = await h.currentRunner('lock1');
    const from = h.now();
    await waitFor(async () => (await h.entries()).filter((e) => e.what === 'lock1' && e.at > from).length >= 25, { message: '25 runs of lock1' });
    const recent = (await h.entries()).filter((e) => e.at > from);
    expect(new Set(recent.filter((e) => e.what === 'lock1').map((e) => e.member))).to.deep.equal(new Set([leader]));
    // They are one cluster: when the leader dies, another takes over after the lease, never both at once.
    const killedAt = h.now();
    h.kill(leader);
    const next = await h.currentRunner('lock1', killedAt);
    expect(next).not.to.equal(leader);
    const all = await h.entries();
    h.assertNeverTwoAtOnce(all, 'lock1');
    h.assertNeverTwoAtOnce(all, 'lock2');
  });
});

describe('/leadership lists the members seen alive (file backend)', function () {
  this.timeout(60_000);
  const h = new MembersHarness(TARGETS.find((t) => t.cluster === 'file')!);
  h.install();

  it('drops a member that died, and never lists a dead one whose clock ran fast', async () => {
    // A member that died with its clock an hour fast left a heartbeat "from the future".
    const members = join(h.dir, 'locks', 'lock1', 'members');
    await mkdir(members, { recursive: true, mode: 0o700 });
    await writeFile(join(members, 'fast-clock'), '', { mode: 0o600 });
    const future = new Date(Date.now() + 3_600_000);
    await utimes(join(members, 'fast-clock'), future, future);
    // With heartbeat renewals (this target's), the member list is the heartbeat files: one left behind, dated in the future.
    const heartbeats = join(h.dir, 'locks', '.heartbeats');
    await mkdir(heartbeats, { recursive: true, mode: 0o700 });
    const beat = { member: 'fast-clock', instance: 'fast-clock-1', renewTime: future.toISOString(), locks: [], sequence: 7 };
    await writeFile(join(heartbeats, 'fast-clock-1.json'), JSON.stringify(beat), { mode: 0o600 });
    await utimes(join(heartbeats, 'fast-clock-1.json'), future, future);
    const m1 = h.start('m1', { args: ['--health-port', '0'] });
    const line = await h.members.get(m1)!.waitForLine(/Health endpoints on http:\/\/127\.0\.0\.1:\d+/);
    const base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]!;
    const listed = async () => {
      const body = (await (await fetch(`${base}/leadership`)).json()) as { locks: Array<{ lock: string; members: string[] }> };
      return body.locks.find((l) => l.lock === 'lock1')?.members ?? [];
    };
    const m2 = h.start('m2');
    await waitFor(async () => (await listed()).includes(m2), { timeout: 15_000, message: `m1 to list ${m2}` });
    expect(await listed()).to.have.members([m1, m2]);
    h.kill(m2);
    // m2's heartbeat stops changing: gone once a lease passed on m1's clock, seen at m1's next attempt.
    const bound = h.LEASE + h.RETRY * h.JITTER + h.MARGIN;
    await waitFor(async () => !(await listed()).includes(m2), { timeout: bound, message: `m1 to drop ${m2} within ${bound}ms of its death` });
    expect(await listed()).to.deep.equal([m1]);
  });
});
