import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { describeMembers, MS, reportRealClusterSkip, type MembersHarness } from '../support/cluster-members.ts';
import { assignLocks } from '../../lib/cluster/rebalance.ts';
import { waitFor } from '../support/wait.ts';
import { LOCK_ANNOTATION } from '../../lib/cluster/kubernetes/lease-store.ts';
import { ROLE_LABEL } from '../../lib/cluster/kubernetes/lease-heartbeats.ts';

reportRealClusterSkip('members-rebalance.test');

/** Guarded routes on rb0, rb1, … (fixtures/rebalance/locks.ts); RB_LOCKS says how many. */
const LOCK_ROUTES = fileURLToPath(new URL('./fixtures/rebalance', import.meta.url));
let LOCKS: string[] = [];

/** Who leads each lock by the records: the member of its last three records, the last of them recent. */
async function leaders(h: MembersHarness): Promise<Map<string, string>> {
  const all = await h.entries();
  const now = h.now();
  const result = new Map<string, string>();
  for (const lock of LOCKS) {
    const last = all.filter((e) => e.what === lock).slice(-3);
    // Recent: within a few ticks, with room for a loaded machine delaying the timers of a member.
    if (last.length === 3 && last.every((e) => e.member === last[0]!.member) && now - last[2]!.at < 600n * MS) result.set(lock, last[0]!.member);
  }
  return result;
}

function counts(map: Map<string, string>): Map<string, number> {
  const c = new Map<string, number>();
  for (const member of map.values()) c.set(member, (c.get(member) ?? 0) + 1);
  return c;
}

function show(map: Map<string, string>): string {
  return JSON.stringify(Object.fromEntries(counts(map)));
}

describeMembers(
  'rebalancing (issue 15)',
  (h) => {
    /** The interval at which members renew, list members and reconsider: what the rebalancer waits in. */
    const interval = () => (h.target.cluster === 'kubernetes' || h.target.renewals === 'heartbeat' ? Math.max(h.RETRY, Math.floor(h.RENEW / 3)) : h.RETRY);
    /**
     * A new member is seen once its heartbeat has changed twice, two intervals; the
     * membership must then hold still for two more; the hand-over is a drain of one tick and a release
     * the assignee takes on its notification, then (ConfigMap mode) waits acquireDelay. Two leases and
     * the margin cover the requests and polls of a busy machine.
     */
    const joinBound = () => 2 * h.LEASE + 6 * interval() * h.JITTER + h.ACQUIRE_DELAY + 2 * h.MARGIN;
    /**
     * After a kill: the dead member's leases run out (a lease after its last renewal) as its heartbeat
     * does; should a member still count it alive then, the locks wait one more lease (the grace) before
     * any member takes them; then moves between the survivors, as after a join.
     */
    const killBound = () => 2 * h.LEASE + joinBound() + h.ACQUIRE_DELAY;

    async function balanced(ids: string[], bound: number, since: string): Promise<Map<string, string>> {
      const target = assignLocks(LOCKS, ids);
      let seen = new Map<string, string>();
      await waitFor(
        async () => {
          seen = await leaders(h);
          return LOCKS.every((lock) => seen.get(lock) === target.get(lock));
        },
        { timeout: bound, interval: 50, message: () => `the ${LOCKS.length} locks to be spread over ${ids.join(', ')} within ${bound}ms of ${since}; leaders now ${show(seen)}` },
      );
      const each = counts(seen);
      const low = Math.floor(LOCKS.length / ids.length);
      const high = Math.ceil(LOCKS.length / ids.length);
      for (const id of ids) expect(each.get(id) ?? 0, `locks led by ${id}`).to.be.within(low, high);
      return seen;
    }

    /** No lock changes hands over three leases once balanced: every record of each lock since is its leader's. */
    async function stays(expected: Map<string, string>): Promise<void> {
      const from = h.now();
      const span = BigInt(3 * h.LEASE) * MS;
      await waitFor(async () => (await h.entries()).some((e) => e.at > from + span), { timeout: 3 * h.LEASE + 10_000, message: 'three leases of records after balance' });
      const all = (await h.entries()).filter((e) => e.at > from && e.at <= from + span);
      for (const lock of LOCKS) {
        const movers = new Set(all.filter((e) => e.what === lock).map((e) => e.member));
        expect([...movers], `who ran ${lock} in the three leases after balance`).to.deep.equal([expected.get(lock)]);
      }
    }

    afterEach(function () {
      if (this.currentTest?.state !== 'failed') return;
      // What each member said about leadership and hand-overs, to tell why the spread did not come.
      for (const [id, p] of h.members) console.log(`--- ${id}\n${p.lines.filter((l) => /Rebalancing|leader of|released|could not release|begins a term/.test(l)).join('\n')}`);
    });

    /** Ten locks, in ConfigMap mode too, where they share one ConfigMap (each with its own version). */
    beforeEach(() => {
      LOCKS = Array.from({ length: 10 }, (_, i) => `rb${i}`);
    });
    /**
     * Starts a member and resolves once its cluster service runs. In ConfigMap mode the members are
     * the Ready pods, and the harness makes a pod Ready before its process has even loaded: here it
     * turns Ready once the process runs, as a readiness probe would have it.
     */
    async function start(name: string, args: string[] = []): Promise<string> {
      const id = h.start(name, { routes: LOCK_ROUTES, args, env: { RB_LOCKS: String(LOCKS.length) } });
      if (h.configMapMode) h.server!.setPodStatus(id, { ready: false }, h.NAMESPACE);
      await h.members.get(id)!.waitForLine(/Cluster service \S+ started as member/);
      if (h.configMapMode) h.server!.setPodStatus(id, { ready: true }, h.NAMESPACE);
      return id;
    }

    it('10 locks, 3 members started one after another, then one killed: all on one, then spread evenly at each step, never two leaders, no ping-pong', async function () {
      this.timeout(240_000);
      const args = ['--rebalance'];
      const m1 = await start('m1', args);
      await balanced([m1], 15_000 + h.ACQUIRE_DELAY, 'the first member starting');

      const m2 = await start('m2', args);
      await balanced([m1, m2], joinBound(), `${m2} starting`);

      const m3 = await start('m3', args);
      const three = await balanced([m1, m2, m3], joinBound(), `${m3} starting`);
      await stays(three);
      expect(h.members.get(m1)!.output).to.match(/Rebalancing: member \S+ hands rb\d over to/);
      if (h.target.lock === 'lease') {
        // The live members come from the heartbeat Leases (one per member process), in either renewal mode: no other Leases.
        const leases = (await h.janitor!.coordination.listNamespacedLease({ namespace: h.janitor!.namespace, labelSelector: `dromedary-chaos=${h.run}` })).items;
        const heartbeats = leases.filter((l) => l.metadata?.labels?.[ROLE_LABEL] === 'heartbeat');
        const locks = leases.filter((l) => l.metadata?.annotations?.[LOCK_ANNOTATION] !== undefined && l.metadata?.labels?.[ROLE_LABEL] === undefined);
        expect(locks.map((l) => l.metadata!.annotations![LOCK_ANNOTATION]).sort(), 'lock Leases').to.deep.equal([...LOCKS].sort());
        expect(heartbeats.map((l) => l.spec?.holderIdentity).sort(), 'heartbeat Leases').to.deep.equal([m1, m2, m3].sort());
        expect(leases.length, 'Leases of the run').to.equal(LOCKS.length + 3);
      }

      h.kill(m3);
      const two = await balanced([m1, m2], killBound(), `${m3} killed`);
      await stays(two);

      const all = await h.entries();
      for (const lock of LOCKS) h.assertNeverTwoAtOnce(all, lock);
    });

    it('without --rebalance the first member keeps every lock', async function () {
      this.timeout(120_000);
      const m1 = await start('m1');
      await balanced([m1], 15_000 + h.ACQUIRE_DELAY, 'the first member starting');
      await start('m2');
      await stays(new Map(LOCKS.map((lock) => [lock, m1])));
    });
  },
  { clusters: ['file', 'kubernetes', 'etcd'] },
);
