import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { describeMembers, reportRealClusterSkip, type Entry, type MembersHarness } from '../support/cluster-members.ts';
import { json, startHttpServer, type TestServer } from '../support/http-server.ts';
import { waitFor } from '../support/wait.ts';

reportRealClusterSkip('members-resume.test');

const POLL_ROUTES = fileURLToPath(new URL('fixtures/resume-poll', import.meta.url));
const CRON_ROUTES = fileURLToPath(new URL('fixtures/resume-cron', import.meta.url));
const TIMER_ROUTES = fileURLToPath(new URL('fixtures/resume-timer', import.meta.url));

/** The since-API's history, the poller's batch (limit) and its delay between polls (fixtures/resume-poll). */
const EVENTS = 300;
const LIMIT = 10;
const POLL_DELAY = 100;
/** The cron fixture fires on every even second. */
const CRON_PERIOD = 2000;

/** A member's records of one kind (`event`, `fire`, `count`), parsed: the fields after the kind. */
function recordsOf(entries: Entry[], kind: string): Array<{ member: string; at: bigint; fields: number[] }> {
  return entries.filter((e) => e.what.startsWith(`${kind}:`)).map((e) => ({ member: e.member, at: e.at, fields: e.what.split(':').slice(1).map(Number) }));
}

/** The longest a lock stays without a leader after its leader is SIGKILLed: a lease, the followers' poll, ConfigMap mode's acquire delay, and the margin. */
const takeoverBound = (h: MembersHarness) => h.LEASE + h.RETRIES + h.ACQUIRE_DELAY + h.MARGIN;

/**
 * Issue 14: state that moves with leadership. Consumers under master: keep their progress in the
 * lock's leader state, so a new leader, after a crash or a handover, continues where the last one
 * stopped: http-poll's cursor, cron's last fire, the timer's counter.
 */
describeMembers(
  'leader state: consumers under master: continue where the last leader stopped',
  (h) => {
    let api: TestServer | undefined;
    afterEach(async () => {
      await api?.close();
      api = undefined;
    });

    it(`http-poll over a stateless since-API: a leader SIGKILLed mid-stream costs at most one batch (${LIMIT}) of duplicates, and loses nothing`, async () => {
      const ids = Array.from({ length: EVENTS }, (_, i) => i);
      api = await startHttpServer((req, res) => {
        const q = new URL(req.url!, 'http://x').searchParams;
        const since = Number(q.get('since') ?? 0);
        json(res, 200, ids.filter((id) => id >= since).slice(0, Number(q.get('limit') ?? 100)).map((id) => ({ id, text: `event ${id}` })));
      });
      for (const name of ['m1', 'm2', 'm3']) h.start(name, { routes: POLL_ROUTES, env: { EVENTS_URL: api.url } });
      const events = async () => recordsOf(await h.entries(), 'event');
      // Mid-stream: the leader has completed a fifth of the history.
      const victim = await waitFor(async () => (await events()).length >= EVENTS / 5 && (await events())[0]!.member, {
        timeout: 15_000 + 2 * h.ACQUIRE_DELAY,
        message: 'a leader polling the events',
      });
      const killedAt = h.now();
      const killedPerf = performance.now();
      h.kill(victim);
      const beforeKill = (await events()).filter((e) => e.at < killedAt).length;
      expect(beforeKill, 'killed mid-stream').to.be.below(EVENTS);

      // The rest of the history: the takeover, then a poll per batch.
      await waitFor(async () => new Set((await events()).map((e) => e.fields[0])).size === EVENTS, {
        timeout: takeoverBound(h) + (EVENTS / LIMIT) * (POLL_DELAY + h.MARGIN),
        message: () => `every event completed after the SIGKILL of ${victim}`,
      });
      const all = await events();
      const next = all.find((e) => e.at > killedAt)!.member;
      expect(next).not.to.equal(victim);
      const seen = new Map<number, number>();
      for (const e of all) seen.set(e.fields[0]!, (seen.get(e.fields[0]!) ?? 0) + 1);
      expect(ids.filter((id) => !seen.has(id)), 'events never completed').to.deep.equal([]);
      const duplicates = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
      expect(duplicates.length, `events completed twice: ${duplicates.join(', ')}`).to.be.at.most(LIMIT);
      expect([...seen.values()].every((n) => n <= 2), 'no event completed more than twice').to.equal(true);
      // The new leader asked from the saved cursor, not from the URL's since=0.
      const firstAfterKill = api.requests.find((r) => r.at > killedPerf)!;
      expect(Number(new URL(firstAfterKill.url, 'http://x').searchParams.get('since')), 'the new leader’s first since').to.be.at.least(beforeKill - LIMIT);
      expect(h.members.get(next)!.output).to.match(/Resuming http-poll:\{\{env:EVENTS_URL\}\}\/events\?since=0&limit=10.* from the leader state: cursor \d+/);
    });

    it(`cron every 2 s whose leader is SIGKILLed just before a fire: the new leader fires the missed point once at once; no point missed, none fired twice`, async () => {
      for (const name of ['m1', 'm2', 'm3']) h.start(name, { routes: CRON_ROUTES });
      const fires = async () => recordsOf(await h.entries(), 'fire').map((r) => ({ member: r.member, due: r.fields[0]!, wall: r.fields[1]!, at: r.at }));
      const second = await waitFor(async () => (await fires())[1], { timeout: 15_000 + 2 * h.ACQUIRE_DELAY + 2 * CRON_PERIOD, message: 'two fires of the cron' });
      const victim = second.member;
      // Killed 300 ms before a point: that point falls due while no member leads (a takeover takes at least a lease minus a renewal period).
      const killAt = (await fires()).at(-1)!.due + CRON_PERIOD - 300;
      await waitFor(() => Date.now() >= killAt, { timeout: 2 * CRON_PERIOD + h.MARGIN, message: 'the moment before the next point' });
      const killedWall = Date.now();
      h.kill(victim);
      await waitFor(async () => (await fires()).filter((f) => f.member !== victim).length >= 3, {
        timeout: takeoverBound(h) + 4 * CRON_PERIOD + h.MARGIN,
        message: 'three fires by the next leader',
      });
      const all = await fires();
      const perPoint = new Map<number, number>();
      for (const f of all) perPoint.set(f.due, (perPoint.get(f.due) ?? 0) + 1);
      expect([...perPoint].filter(([, n]) => n > 1).map(([due]) => new Date(due).toISOString()), 'points fired twice').to.deep.equal([]);
      expect(new Set(all.map((f) => f.member)).size, 'the victim and one next leader fired').to.equal(2);
      const victimLast = Math.max(...all.filter((f) => f.member === victim).map((f) => f.due));
      const nextFires = all.filter((f) => f.member !== victim);
      const nextFirst = nextFires[0]!;
      // Every point from the first fire to the last, except those collapsed into the catch-up fire.
      const first = all[0]!.due;
      const last = all.at(-1)!.due;
      const missing: number[] = [];
      for (let p = first; p <= last; p += CRON_PERIOD) if (!perPoint.has(p)) missing.push(p);
      expect(missing.every((p) => p > victimLast && p < nextFirst.due), 'missing points lie in the failover gap, before the catch-up fire').to.equal(true);
      // Points due while no member led: from the kill to the takeover bound; all but the latest collapse into one fire.
      let inGap = 0;
      for (let p = victimLast + CRON_PERIOD; p <= killedWall + takeoverBound(h); p += CRON_PERIOD) inGap += 1;
      expect(missing.length, 'points neither fired nor collapsed into the catch-up fire').to.be.at.most(Math.max(0, inGap - 1));
      // The point 300 ms after the kill fell due before any takeover (a lease minus a renewal interval): the
      // next leader's first fire is the catch-up for it (and for any later point due before it took over).
      expect(victimLast + CRON_PERIOD, 'the victim was killed before its next point').to.be.greaterThan(killedWall);
      expect(nextFirst.due, 'the catch-up fire is for the latest point missed').to.equal(victimLast + CRON_PERIOD * (missing.length + 1));
      expect(h.members.get(nextFirst.member)!.output).to.contain(
        `cron:tick fires once now for ${missing.length + 1} fire(s) due while no member led, from ${new Date(victimLast + CRON_PERIOD).toISOString()} to ${new Date(nextFirst.due).toISOString()}`,
      );
    });

    it('timer: CamelTimerCounter continues across a graceful handover (SIGTERM), with no number repeated or skipped', async () => {
      for (const name of ['m1', 'm2']) h.start(name, { routes: TIMER_ROUTES });
      const counts = async () => recordsOf(await h.entries(), 'count');
      const victim = await waitFor(async () => ((await counts()).length >= 5 ? (await counts())[0]!.member : undefined), {
        timeout: 15_000 + 2 * h.ACQUIRE_DELAY,
        message: 'a leader counting',
      });
      expect(await h.terminate(victim), 'the SIGTERMed leader exits cleanly').to.equal(0);
      const stoppedAt = h.now();
      await waitFor(async () => (await counts()).filter((c) => c.at > stoppedAt).length >= 5, {
        timeout: 15_000 + 2 * h.ACQUIRE_DELAY,
        message: 'the next leader counting',
      });
      const all = await counts();
      expect(new Set(all.map((c) => c.member)).size, 'two leaders counted').to.equal(2);
      expect(all.map((c) => c.fields[0])).to.deep.equal(all.map((_, i) => i + 1));
    });
  },
);
