import { expect } from 'chai';
import cron from 'node-cron';
import { Context } from '../../lib/engine/context.ts';
import type { Exchange } from '../../lib/exchange/index.ts';
import { CronComponent, type CronClock } from '../../lib/components/cron/cron-component.ts';
import { quartzToNodeCron } from '../../lib/components/cron/quartz.ts';
import { startContextStoppedAfterEach } from '../support/context.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { MemorySlot } from '../support/memory-slot.ts';
import { LeadershipLostError } from '../../lib/errors.ts';
import type { Consumer } from '../../lib/spi/component.ts';
import { waitFor } from '../support/wait.ts';

/** A virtual clock for the cron component: timers fire only when the test says so, the clock jumping to each due time. */
class TestClock implements CronClock {
  #now: number;
  #sequence = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(startIso: string) {
    this.#now = Date.parse(startIso);
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.#sequence += 1;
    this.#timers.set(this.#sequence, { at: this.#now + ms, fn });
    return this.#sequence;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get pending(): number {
    return this.#timers.size;
  }

  /** Moves the clock to the earliest timer (or leaves it, if a stall took it further) and fires that timer. */
  fireNext(): void {
    let first: [number, { at: number; fn: () => void }] | undefined;
    for (const entry of this.#timers) if (!first || entry[1].at < first[1].at) first = entry;
    if (!first) throw new Error('TestClock.fireNext(): no timer is pending');
    this.#timers.delete(first[0]);
    this.#now = Math.max(this.#now, first[1].at);
    first[1].fn();
  }

  /** Time passes with no timer firing: the process was suspended. */
  stall(ms: number): void {
    this.#now += ms;
  }
}

describe('cron component', function () {
  this.timeout(20_000);
  const start = startContextStoppedAfterEach();

  /**
   * Starts `from(uri)` on a virtual clock set to `startIso` and returns the fire times (ISO, from
   * CamelCronFiredTime) of its first `count` exchanges, each run to its end before the next timer fires.
   */
  async function fires(uri: string, startIso: string, count: number, stalls: Record<number, number> = {}): Promise<string[]> {
    const clock = new TestClock(startIso);
    const fired: string[] = [];
    const { context, lines } = await start(
      (r) => r.from(uri).process((ex) => void fired.push((ex.headers.get('CamelCronFiredTime') as Date).toISOString())),
      { components: { cron: new CronComponent({ clock }) } },
    );
    while (fired.length < count) {
      await waitFor(() => clock.pending === 1, { message: `the timer for fire #${fired.length + 1}` });
      clock.stall(stalls[fired.length] ?? 0);
      // A wait longer than setTimeout allows (about 24.8 days) takes more than one timer.
      clock.fireNext();
      // The exchange runs and ends in the microtasks that follow: no fire may find it still running.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await context.stop();
    expect(lines.filter((l) => /skipped the fire/.test(l.message))).to.deep.equal([]);
    return fired;
  }

  /** `count` fire times `stepMs` apart from `firstIso`. */
  function every(stepMs: number, firstIso: string, count: number): string[] {
    return Array.from({ length: count }, (_, i) => new Date(Date.parse(firstIso) + i * stepMs).toISOString());
  }

  it('translates Quartz syntax to node-cron', () => {
    expect(quartzToNodeCron('0/5 * * * * ?')).to.deep.equal({ expression: '0-59/5 * * * * *' });
    expect(quartzToNodeCron('0 0/15 8-17 ? * MON-FRI')).to.deep.equal({ expression: '0 0-59/15 8-17 * * 1-5' });
    expect(quartzToNodeCron('0 0 12 * * ? *')).to.deep.equal({ expression: '0 0 12 * * *' });
    expect(quartzToNodeCron('*/10 * * * *')).to.deep.equal({ expression: '*/10 * * * *' });
    expect(quartzToNodeCron('0 0 12 ? * 2016')).to.have.property('error');
    expect(quartzToNodeCron('0 0 12 * * ? 2030')).to.have.property('error').that.contains('year');
    expect(quartzToNodeCron('* *')).to.have.property('error').that.contains('expected 6 fields');
  });

  it('shifts Quartz weekdays (1 = Sunday … 7 = Saturday) to node-cron (0 = Sunday) in every form; classic 5-field cron keeps its own', () => {
    const weekdays = (field: string) => quartzToNodeCron(`0 0 12 ? * ${field}`);
    expect(weekdays('2')).to.deep.equal({ expression: '0 0 12 * * 1' });
    expect(weekdays('2-6')).to.deep.equal({ expression: '0 0 12 * * 1-5' });
    expect(weekdays('6-2')).to.deep.equal({ expression: '0 0 12 * * 5-1' });
    expect(weekdays('1,7')).to.deep.equal({ expression: '0 0 12 * * 0,6' });
    expect(weekdays('2/2')).to.deep.equal({ expression: '0 0 12 * * 1-6/2' });
    expect(weekdays('*/3')).to.deep.equal({ expression: '0 0 12 * * 0-6/3' });
    expect(weekdays('2-6/2')).to.deep.equal({ expression: '0 0 12 * * 1-5/2' });
    expect(weekdays('2#1')).to.deep.equal({ expression: '0 0 12 * * 1#1' });
    expect(weekdays('fri#3')).to.deep.equal({ expression: '0 0 12 * * 5#3' });
    expect(weekdays('6L')).to.deep.equal({ expression: '0 0 12 * * 5L' });
    expect(weekdays('L')).to.deep.equal({ expression: '0 0 12 * * 6' });
    expect(quartzToNodeCron('0 12 * * 1')).to.deep.equal({ expression: '0 12 * * 1' });
    for (const bad of ['0', '8', '2#6', '0#1', '9L', 'MOON']) {
      expect(weekdays(bad), bad).to.have.property('error').that.matches(/Quartz counts 1 = Sunday|1 to 5|not a Quartz day-of-week/);
    }
  });

  describe('Quartz weekdays fire on the right day', () => {
    // 2026-01-01 is a Thursday.
    const from = '2026-01-01T00:00:00Z';
    const cases: Array<[string, string, string[]]> = [
      ['2', 'Monday', ['2026-01-05', '2026-01-12', '2026-01-19']],
      ['1', 'Sunday', ['2026-01-04', '2026-01-11']],
      ['7', 'Saturday', ['2026-01-03', '2026-01-10']],
      ['2-6', 'Monday to Friday', ['2026-01-01', '2026-01-02', '2026-01-05', '2026-01-06', '2026-01-07', '2026-01-08', '2026-01-09', '2026-01-12']],
      ['6-2', 'Friday to Monday, wrapping', ['2026-01-02', '2026-01-03', '2026-01-04', '2026-01-05', '2026-01-09']],
      ['1,7', 'Sunday and Saturday', ['2026-01-03', '2026-01-04', '2026-01-10', '2026-01-11']],
      ['2/2', 'from Monday every second day: Monday, Wednesday, Friday', ['2026-01-02', '2026-01-05', '2026-01-07', '2026-01-09']],
      ['*/3', 'from Sunday every third day: Sunday, Wednesday, Saturday', ['2026-01-03', '2026-01-04', '2026-01-07', '2026-01-10']],
      ['2#1', 'the first Monday of the month', ['2026-01-05', '2026-02-02', '2026-03-02']],
      ['6#3', 'the third Friday of the month', ['2026-01-16', '2026-02-20', '2026-03-20']],
      ['6L', 'the last Friday of the month', ['2026-01-30', '2026-02-27', '2026-03-27']],
      ['L', 'Saturday (L alone)', ['2026-01-03', '2026-01-10']],
    ];
    for (const [field, meaning, days] of cases) {
      it(`0 0 12 ? * ${field}: ${meaning}`, async () => {
        const got = await fires(`cron:day?schedule=0 0 12 ? * ${field}&timezone=UTC`, from, days.length);
        expect(got).to.deep.equal(days.map((d) => `${d}T12:00:00.000Z`));
      });
    }
  });

  describe('Quartz days of the month', () => {
    // January 2026 ends on a Saturday, February 15 and March 15 are Sundays.
    const cases: Array<[string, string, string[]]> = [
      ['L', 'the last day', ['2026-01-31', '2026-02-28', '2026-03-31']],
      ['L-3', 'three days before the last', ['2026-01-28', '2026-02-25', '2026-03-28']],
      ['15W', 'the weekday nearest the 15th', ['2026-01-15', '2026-02-16', '2026-03-16']],
      ['LW', 'the last weekday', ['2026-01-30', '2026-02-27', '2026-03-31']],
    ];
    for (const [field, meaning, days] of cases) {
      it(`0 0 12 ${field} * ?: ${meaning}`, async () => {
        const got = await fires(`cron:day?schedule=0 0 12 ${field} * ?&timezone=UTC`, '2026-01-01T00:00:00Z', days.length);
        expect(got).to.deep.equal(days.map((d) => `${d}T12:00:00.000Z`));
      });
    }
  });

  it('after a stall, the missed fires collapse into one and the schedule goes on from the present', async () => {
    // After the 00:01 fire the process is suspended until 00:11:30: the fire due at 00:02 runs once, then 00:12.
    const got = await fires('cron:m?schedule=0 * * * * ?&timezone=UTC', '2026-01-01T00:00:30Z', 3, { 1: 10 * 60_000 + 30_000 });
    expect(got).to.deep.equal(['2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z', '2026-01-01T00:12:00.000Z']);
  });

  describe('daylight saving time (America/New_York, on a virtual clock)', () => {
    const ny = '&timezone=America/New_York';

    it('clocks back (2026-11-01 02:00 EDT → 01:00 EST): every second goes on through the repeated hour', async () => {
      // 01:59:55 EDT; the switch is at 06:00:00Z, when the wall clock reads 01:00:00 EST again.
      const got = await fires(`cron:s?schedule=* * * * * ?${ny}`, '2026-11-01T05:59:55Z', 10);
      expect(got).to.deep.equal(every(1000, '2026-11-01T05:59:56Z', 10));
    });

    it('clocks back: every minute fires in both passes of 01:00–01:59, one fire per real minute', async () => {
      // 00:58 EDT to 02:02 EST: 2 + 60 (EDT) + 60 (EST) + 3 minutes.
      const got = await fires(`cron:m?schedule=0 * * * * ?${ny}`, '2026-11-01T04:57:30Z', 125);
      expect(got).to.deep.equal(every(60_000, '2026-11-01T04:58:00Z', 125));
      expect(got.at(-1)).to.equal('2026-11-01T07:02:00.000Z');
    });

    it('clocks back: an hourly schedule fires at 01:30 EDT and at 01:30 EST; a fixed 01:30 fires once, in the first pass', async () => {
      expect(await fires(`cron:h?schedule=0 30 * * * ?${ny}`, '2026-11-01T04:00:00Z', 4)).to.deep.equal([
        '2026-11-01T04:30:00.000Z', // 00:30 EDT
        '2026-11-01T05:30:00.000Z', // 01:30 EDT
        '2026-11-01T06:30:00.000Z', // 01:30 EST
        '2026-11-01T07:30:00.000Z', // 02:30 EST
      ]);
      expect(await fires(`cron:d?schedule=0 30 1 * * ?${ny}`, '2026-10-31T00:00:00Z', 3)).to.deep.equal([
        '2026-10-31T05:30:00.000Z',
        '2026-11-01T05:30:00.000Z', // 01:30 EDT, not again at 01:30 EST
        '2026-11-02T06:30:00.000Z',
      ]);
    });

    it('clocks forward (2026-03-08 02:00 EST → 03:00 EDT): every second and every minute go on in real time', async () => {
      // 01:59:57 EST; at 07:00:00Z the wall clock jumps to 03:00:00 EDT.
      expect(await fires(`cron:s?schedule=* * * * * ?${ny}`, '2026-03-08T06:59:57Z', 6)).to.deep.equal(every(1000, '2026-03-08T06:59:58Z', 6));
      expect(await fires(`cron:m?schedule=0 * * * * ?${ny}`, '2026-03-08T06:57:30Z', 6)).to.deep.equal(every(60_000, '2026-03-08T06:58:00Z', 6));
    });

    it('a half-hour switch (Australia/Lord_Howe, 2026-04-05 02:00 +11 → 01:30 +10:30): every minute goes on', async () => {
      const got = await fires('cron:m?schedule=0 * * * * ?&timezone=Australia/Lord_Howe', '2026-04-04T14:57:30Z', 36);
      expect(got).to.deep.equal(every(60_000, '2026-04-04T14:58:00Z', 36));
    });

    it('clocks forward: a time in the skipped hour (02:30) does not fire that night', async () => {
      expect(await fires(`cron:d?schedule=0 30 2 * * ?${ny}`, '2026-03-07T00:00:00Z', 3)).to.deep.equal([
        '2026-03-07T07:30:00.000Z', // 02:30 EST
        '2026-03-09T06:30:00.000Z', // 02:30 EDT; 2026-03-08 02:30 does not exist
        '2026-03-10T06:30:00.000Z',
      ]);
    });
  });

  it('fires on schedule, one exchange at a time, with the fire time and name in headers', async () => {
    const seen: Exchange[] = [];
    const spans: Array<[number, number]> = [];
    const { lines } = await start((r) =>
      r.from('cron:tick?schedule=* * * * * ?').process(async (ex) => {
        const start = performance.now();
        seen.push(ex);
        // Longer than the 1 s between fires: the fire due meanwhile is skipped, not run alongside.
        await new Promise((resolve) => setTimeout(resolve, 1200));
        spans.push([start, performance.now()]);
      }),
    );
    await waitFor(() => spans.length >= 2, { timeout: 15_000 });
    expect(seen[0]!.headers.get('CamelCronName')).to.equal('tick');
    expect(seen[0]!.headers.get('CamelCronFiredTime')).to.be.instanceOf(Date);
    expect((seen[0]!.headers.get('CamelCronFiredTime') as Date).getMilliseconds()).to.equal(0);
    expect(seen.map((e) => e.getProperty('CamelTimerCounter')).slice(0, 2)).to.deep.equal([1, 2]);
    expect(spans[1]![0]).to.be.at.least(spans[0]![1]);
    // The skipped fire is reported through the context's logger (node-cron prints nothing itself).
    expect(lines.some((l) => l.level === 'debug' && /cron:tick skipped the fire due at .*the previous exchange is still running/.test(l.message))).to.equal(true);
  });

  it('leaves nothing in node-cron when the route stops', async () => {
    const { context } = await start((r) => r.from('cron:tidy?schedule=0 0 12 ? * 2').log('x'));
    expect([...cron.getTasks().values()].map((t) => t.name)).to.include('dromedary:tidy:days');
    await context.stop();
    expect([...cron.getTasks().values()].map((t) => t.name)).not.to.include('dromedary:tidy:days');
  });

  for (const [uri, why] of [
    ['cron:bad?schedule=61 * * * * *', /invalid schedule "61 \* \* \* \* \*": second/],
    ['cron:bad?schedule=* *', /expected 6 fields/],
    ['cron:bad?schedule=0 0 12 ? * 0', /invalid schedule "0 0 12 \? \* 0": day-of-week "0".*Quartz counts 1 = Sunday/],
    ['cron:bad', /the schedule option is required/],
    ['cron:?schedule=* * * * * *', /cron needs a name/],
    ['cron:bad?schedule=* * * * * *&period=5', /Unknown parameters=\[\{period=5\}\]/],
    ['cron:bad?schedule=* * * * * *&misfirePolicy=fireNow', /option "misfirePolicy" has the invalid value "fireNow": expected one of fireOnceNow, skip/],
  ] as const) {
    it(`fails at startup for ${uri}`, async () => {
      const c = new Context();
      await c.addRoutes((r) => r.from(uri).log('x'));
      const err = await c.start().then(() => undefined, (e: Error) => e);
      expect(err?.message).to.match(why);
    });
  }

  it('an invalid timezone fails at startup naming the route, the endpoint, the option and the fix', async () => {
    const c = new Context();
    await c.addRoutes((r) => r.from('cron:nightly?schedule=0 0 2 * * ?&timezone=new_york').routeId('backup').log('x'));
    const err = await c.start().then(() => undefined, (e: Error) => e);
    expect(err?.name).to.equal('RouteBuildError');
    expect(err?.message).to.contain('Route backup');
    expect(err?.message).to.contain('from(cron:nightly?schedule=0 0 2 * * ?&timezone=new_york)');
    expect(err?.message).to.contain('option "timezone" has the invalid value "new_york": expected an IANA time zone name');
    expect(err?.message).to.contain('Did you mean "America/New_York"?');
    const other = new Context();
    await other.addRoutes((r) => r.from('cron:x?schedule=* * * * * ?&timezone=Mars/Olympus').log('x'));
    const err2 = await other.start().then(() => undefined, (e: Error) => e);
    expect(err2?.message).to.match(/option "timezone" has the invalid value "Mars\/Olympus": expected an IANA time zone name such as America\/New_York.*Leave the option out/);
    expect(err2?.message).not.to.match(/^RangeError/);
  });

  /**
   * Under master: (issue 14). The slot is a plain object here; the master: wiring and the cluster
   * store are tested with real member processes (test/cluster/members-resume.test.ts).
   */
  describe('resuming from leader state', () => {
    const consumers: Consumer[] = [];
    afterEach(async () => {
      for (const c of consumers.splice(0)) await c.stop();
    });

    /** A cron consumer on a virtual clock at `nowIso`, resumed from `slot`; records each fire's time, counter and what was saved before it ran. */
    async function resumed(uri: string, nowIso: string, slot: MemorySlot) {
      const clock = new TestClock(nowIso);
      const capture = captureLogger();
      const context = new Context({ logger: capture.logger, components: { cron: new CronComponent({ clock }) } });
      const fired: Array<{ at: string; counter: number; savedBefore: unknown }> = [];
      const consumer = (await context.endpoint(uri)).createConsumer((ex) => {
        fired.push({ at: (ex.headers.get('CamelCronFiredTime') as Date).toISOString(), counter: ex.properties.get('CamelTimerCounter') as number, savedBefore: slot.latest });
      }) as Consumer;
      consumer.resumeFrom!(slot);
      await consumer.start();
      consumers.push(consumer);
      const next = async () => {
        await waitFor(() => clock.pending === 1, { message: 'the next timer' });
        clock.fireNext();
        await new Promise((resolve) => setImmediate(resolve));
      };
      return { clock, fired, next, ...capture };
    }

    const at = (iso: string) => Date.parse(iso);

    it('a new leader fires once at once for the points missed in the gap (misfirePolicy=fireOnceNow, the default), then keeps to the schedule', async () => {
      // Every 2 s; the last leader fired 10:00:02 and died; this one starts at 10:00:07.5: 04 and 06 were missed.
      const slot = new MemorySlot({ lastFire: at('2026-05-04T10:00:02Z'), counter: 7 });
      const { fired, next, lines } = await resumed('cron:tick?schedule=0/2 * * * * ?', '2026-05-04T10:00:07.500Z', slot);
      await waitFor(() => fired.length === 1, { message: 'the catch-up fire' });
      await next();
      await next();
      expect(fired.map((f) => [f.at, f.counter])).to.deep.equal([
        ['2026-05-04T10:00:06.000Z', 8],
        ['2026-05-04T10:00:08.000Z', 9],
        ['2026-05-04T10:00:10.000Z', 10],
      ]);
      expect(lines.some((l) => l.message === 'cron:tick fires once now for 2 fire(s) due while no member led, from 2026-05-04T10:00:04.000Z to 2026-05-04T10:00:06.000Z (misfirePolicy=fireOnceNow)')).to.equal(true);
    });

    it('records each fire before its exchange runs, so a point it fired is never fired again by a later leader', async () => {
      const slot = new MemorySlot({ lastFire: at('2026-05-04T10:00:02Z'), counter: 1 });
      const { fired, next } = await resumed('cron:tick?schedule=0/2 * * * * ?', '2026-05-04T10:00:03Z', slot);
      await next();
      expect(fired).to.deep.equal([{ at: '2026-05-04T10:00:04.000Z', counter: 2, savedBefore: { lastFire: at('2026-05-04T10:00:04Z'), counter: 2 } }]);
      // The next leader starts in the same second as the fire: nothing is missed, and 04 does not come again.
      const after = await resumed('cron:tick?schedule=0/2 * * * * ?', '2026-05-04T10:00:04.300Z', new MemorySlot(slot.latest));
      await after.next();
      expect(after.fired.map((f) => [f.at, f.counter])).to.deep.equal([['2026-05-04T10:00:06.000Z', 3]]);
    });

    it('misfirePolicy=skip: a new leader skips the missed points, says so, and fires at the next one', async () => {
      const slot = new MemorySlot({ lastFire: at('2026-05-04T10:00:02Z'), counter: 7 });
      const { fired, next, lines } = await resumed('cron:tick?schedule=0/2 * * * * ?&misfirePolicy=skip', '2026-05-04T10:00:05Z', slot);
      await next();
      expect(fired.map((f) => [f.at, f.counter])).to.deep.equal([['2026-05-04T10:00:06.000Z', 8]]);
      expect(lines.some((l) => l.message.startsWith('cron:tick skips 1 fire(s) due while no member led, from 2026-05-04T10:00:04.000Z'))).to.equal(true);
    });

    it('never fires a point at or before the last fire, even on a member whose clock is behind the last leader’s', async () => {
      const slot = new MemorySlot({ lastFire: at('2026-05-04T10:00:06Z'), counter: 3 });
      const { fired, next } = await resumed('cron:tick?schedule=0/2 * * * * ?', '2026-05-04T10:00:03Z', slot);
      await next();
      expect(fired.map((f) => [f.at, f.counter])).to.deep.equal([['2026-05-04T10:00:08.000Z', 4]]);
    });

    it('the first leader (nothing saved) fires on schedule with no catch-up', async () => {
      const slot = new MemorySlot();
      const { fired, next } = await resumed('cron:tick?schedule=0/2 * * * * ?', '2026-05-04T10:00:03Z', slot);
      await next();
      expect(fired.map((f) => [f.at, f.counter])).to.deep.equal([['2026-05-04T10:00:04.000Z', 1]]);
      expect(slot.saves).to.deep.equal([{ lastFire: at('2026-05-04T10:00:04Z'), counter: 1 }]);
    });

    it('does not fire a point it could not record: quietly when its term ended, with a warning on a store error', async () => {
      const slot = new MemorySlot();
      slot.failWith = new LeadershipLostError('lock1', 'm1', 'gone');
      const { fired, next, lines } = await resumed('cron:tick?schedule=0/2 * * * * ?', '2026-05-04T10:00:03Z', slot);
      await next();
      expect(lines.filter((l) => l.level === 'warn')).to.deep.equal([]);
      slot.failWith = new Error('store unavailable');
      await next();
      expect(fired).to.deep.equal([]);
      expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).to.deep.equal([
        'cron:tick did not fire the point due at 2026-05-04T10:00:06.000Z: recording it in the leader state failed (store unavailable); a point fires only once recorded, so that no leader fires it twice',
      ]);
      slot.failWith = undefined;
      await next();
      expect(fired.map((f) => [f.at, f.counter])).to.deep.equal([['2026-05-04T10:00:08.000Z', 1]]);
    });

    it('ignores a saved value it cannot read, and says so', async () => {
      const { fired, next, lines } = await resumed('cron:tick?schedule=0/2 * * * * ?', '2026-05-04T10:00:03Z', new MemorySlot({ last: 'yesterday' }));
      await next();
      expect(fired.map((f) => f.counter)).to.deep.equal([1]);
      expect(lines.some((l) => l.level === 'warn' && l.message.includes('ignores the leader state saved for it ({"last":"yesterday"})'))).to.equal(true);
    });
  });
});
