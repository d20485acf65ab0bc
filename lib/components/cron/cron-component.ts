import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { maskSecrets } from '../../uri/mask.ts';
import { resolveOptions, type OptionValues } from '../../uri/options.ts';
import { LeadershipLostError, ResolveEndpointError } from '../../errors.ts';
import type { Context } from '../../engine/context.ts';
import { ConsumerSupport, EndpointSupport } from '../../spi/endpoint-support.ts';
import type { Processor } from '../../spi/processor.ts';
import { Exchange } from '../../exchange/exchange.ts';
import type { LeaderStateSlot } from '../../spi/leader-state.ts';
import { quartzToNodeCron } from './quartz.ts';
import { CronSchedule } from './schedule.ts';
import { checkTimeZone, processTimeZone } from './time-zone.ts';

export const cronOptions = {
  schedule: { type: 'string', description: 'Quartz or cron expression, seconds first: 0/5 * * * * ? fires every 5 s' },
  timezone: { type: 'string', description: 'IANA time zone the schedule is read in (default: the process time zone)' },
  misfirePolicy: {
    type: 'enum',
    values: ['fireOnceNow', 'skip'],
    default: 'fireOnceNow',
    description: 'under master:, what a new leader does with the fires due while no member led: fire once at once (Quartz\'s default), or skip them',
  },
} as const;

export type CronOptions = OptionValues<typeof cronOptions>;

type CronModule = typeof import('node-cron');

/** Where the consumer reads the time and sets its timers; tests drive it with a virtual clock. */
export interface CronClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: CronClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** setTimeout holds at most 2^31-1 ms; a longer wait is taken in steps. */
const MAX_TIMER = 2 ** 31 - 1;

export class CronEndpoint extends EndpointSupport {
  readonly cronName: string;
  /** The node-cron expression the Quartz schedule became. */
  readonly expression: string;
  readonly timeZone: string;
  readonly misfirePolicy: CronOptions['misfirePolicy'];
  readonly clock: CronClock;
  readonly #cron: CronModule;

  constructor(
    parsed: ParsedUri,
    context: Context,
    init: { name: string; expression: string; timeZone: string; misfirePolicy: CronOptions['misfirePolicy']; clock: CronClock; cron: CronModule },
  ) {
    super(parsed, context);
    this.cronName = init.name;
    this.expression = init.expression;
    this.timeZone = init.timeZone;
    this.misfirePolicy = init.misfirePolicy;
    this.clock = init.clock;
    this.#cron = init.cron;
  }

  override createConsumer(processor: Processor): CronConsumer {
    return new CronConsumer(this, processor);
  }

  /**
   * The fire times. node-cron parses the expression and matches days (L, W, #); the times are
   * computed here because node-cron 4.6 loses the repeated hour when clocks go back. Call
   * `release` when done: the day matcher is a node-cron task in its registry.
   */
  createSchedule(): { schedule: CronSchedule; release: () => void } {
    const parsed = this.#cron.parse(this.expression);
    const [h0, m0, s0] = [Math.min(...parsed.hour), Math.min(...parsed.minute), Math.min(...parsed.second)];
    const days = this.#cron.createTask(this.expression, () => undefined, { timezone: 'UTC', name: `dromedary:${this.cronName}:days` });
    const months = new Set(parsed.month);
    const dayMatches = (year: number, month: number, day: number) => months.has(month) && days.match(new Date(Date.UTC(year, month - 1, day, h0, m0, s0)));
    const schedule = new CronSchedule({ seconds: parsed.second, minutes: parsed.minute, hours: parsed.hour, dayMatches }, this.timeZone);
    return { schedule, release: () => void days.destroy() };
  }
}

/** What a cron consumer keeps in its lock's leader state under master:. */
interface CronState {
  /** The schedule point (ms since the epoch) of the last fire a leader started. */
  lastFire: number;
  /** CamelTimerCounter of that fire. */
  counter: number;
}

/** A failover gap longer than this many schedule points is not counted to its end (a one-second schedule down for a day). */
const MAX_COUNTED_MISSES = 10_000;

/**
 * Fires one exchange per scheduled time; a fire due while the previous exchange still runs is skipped, as with Camel's cron.
 *
 * Under master: it resumes from the leader state: the last fire, so a new leader knows which points
 * fell in the failover gap and fires once for them at once (misfirePolicy=fireOnceNow) or skips them,
 * and never fires a point an earlier leader fired.
 */
class CronConsumer extends ConsumerSupport<CronEndpoint> {
  #schedule: CronSchedule | undefined;
  #release: (() => void) | undefined;
  #timer: unknown;
  #due = 0;
  #counter = 0;
  #running = false;
  #slot: LeaderStateSlot | undefined;
  #lastFire: number | undefined;

  resumeFrom(slot: LeaderStateSlot): void {
    this.#slot = slot;
    const saved = slot.saved as Partial<CronState> | null | undefined;
    if (saved === undefined) return;
    if (saved === null || typeof saved !== 'object' || typeof saved.lastFire !== 'number' || typeof saved.counter !== 'number') {
      this.endpoint.context.logger.warn(`cron:${this.endpoint.cronName} ignores the leader state saved for it (${JSON.stringify(saved)}): expected {"lastFire":<ms>,"counter":<n>}`);
      return;
    }
    this.#lastFire = saved.lastFire;
    this.#counter = saved.counter;
  }

  protected doStart(): void {
    const { schedule, release } = this.endpoint.createSchedule();
    this.#schedule = schedule;
    this.#release = release;
    const now = this.endpoint.clock.now();
    const last = this.#lastFire;
    if (last !== undefined) this.#misfired(schedule, last, now);
    // Never a point at or before the last fire, even when this member's clock is behind the last leader's.
    this.#arm(schedule.nextAfter(Math.max(now, last ?? now)));
  }

  /** The points after an earlier leader's last fire that are already due: fired once now, or skipped. */
  #misfired(schedule: CronSchedule, last: number, now: number): void {
    let latest: number | undefined;
    let missed = 0;
    for (let point = schedule.nextAfter(last); point !== undefined && point <= now && missed < MAX_COUNTED_MISSES; point = schedule.nextAfter(point)) {
      latest = point;
      missed += 1;
    }
    if (latest === undefined) return;
    const { cronName, misfirePolicy } = this.endpoint;
    const logger = this.endpoint.context.logger;
    const span = `${missed >= MAX_COUNTED_MISSES ? `at least ${missed}` : missed} fire(s) due while no member led, from ${new Date(schedule.nextAfter(last)!).toISOString()} to ${new Date(latest).toISOString()}`;
    if (misfirePolicy === 'skip') {
      logger.info(`cron:${cronName} skips ${span} (misfirePolicy=skip)`);
      return;
    }
    logger.info(`cron:${cronName} fires once now for ${span} (misfirePolicy=fireOnceNow)`);
    this.#fire(latest).catch((err: unknown) => this.#fireFailed(latest, err));
  }

  protected doStop(): void {
    if (this.#timer !== undefined) this.endpoint.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#schedule = undefined;
    this.#release?.();
    this.#release = undefined;
  }

  #arm(due: number | undefined): void {
    if (due === undefined) {
      this.endpoint.context.logger.warn(`cron:${this.endpoint.cronName} (${this.endpoint.expression}) has no fire time left; it will not fire again`);
      return;
    }
    this.#due = due;
    const clock = this.endpoint.clock;
    this.#timer = clock.setTimeout(() => this.#wake(), Math.min(Math.max(0, due - clock.now()), MAX_TIMER));
  }

  #wake(): void {
    this.#timer = undefined;
    const schedule = this.#schedule;
    if (!schedule) return;
    const now = this.endpoint.clock.now();
    // A long wait is taken in steps, and a timer may wake a millisecond early: wait on.
    if (now < this.#due) return this.#arm(this.#due);
    const due = this.#due;
    // After a long stall (a suspended machine) the missed fires collapse into this one, like Quartz's default misfire policy.
    this.#arm(schedule.nextAfter(Math.max(due, now)));
    this.#fire(due).catch((err: unknown) => this.#fireFailed(due, err));
  }

  #fireFailed(due: number, err: unknown): void {
    this.endpoint.context.logger.error(maskSecrets(`cron:${this.endpoint.cronName} failed to run the fire due at ${new Date(due).toISOString()}: ${String(err)}`));
  }

  async #fire(due: number): Promise<void> {
    const { cronName } = this.endpoint;
    const logger = this.endpoint.context.logger;
    if (this.#running) {
      logger.debug(`cron:${cronName} skipped the fire due at ${new Date(due).toISOString()}: the previous exchange is still running`);
      return;
    }
    this.#running = true;
    try {
      const counter = this.#counter + 1;
      if (this.#slot && !(await this.#record(due, counter))) return;
      this.#counter = counter;
      const exchange = new Exchange({ fromEndpoint: this.endpoint.maskedUri });
      exchange.headers.set('CamelCronFiredTime', new Date(due));
      exchange.headers.set('CamelCronName', cronName);
      exchange.properties.set('CamelTimerCounter', counter);
      await this.processor(exchange);
    } finally {
      this.#running = false;
    }
  }

  /**
   * Records the fire in the leader state before its exchange runs, and fires only once that write
   * succeeded. The write is conditioned on this leader's term, so once it succeeded no later leader
   * can read a last fire before this point: a point is never fired twice, by two leaders or by a
   * leader resuming after a pause. Recording after the exchange would instead fire the point again
   * whenever a leader dies while its exchange runs (a double fire), which is what a schedule must
   * not do; the price is that a leader dying in between loses that one fire.
   */
  async #record(due: number, counter: number): Promise<boolean> {
    const { cronName } = this.endpoint;
    const logger = this.endpoint.context.logger;
    try {
      await this.#slot!.save({ lastFire: due, counter });
      this.#lastFire = due;
      return true;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const message = `cron:${cronName} did not fire the point due at ${new Date(due).toISOString()}: recording it in the leader state failed (${reason})`;
      // A lost term is refused by design: the next leader fires the point, as a misfire, if it is due.
      if (err instanceof LeadershipLostError) logger.debug(message);
      else logger.warn(maskSecrets(`${message}; a point fires only once recorded, so that no leader fires it twice`));
      return false;
    }
  }
}

/** `cron:name?schedule=0/5 * * * * ?&timezone=Europe/Paris` (node-cron, loaded on first use). */
export class CronComponent implements Component {
  readonly #clock: CronClock;

  constructor(options: { clock?: CronClock } = {}) {
    this.#clock = options.clock ?? realClock;
  }

  async createEndpoint(uri: ParsedUri, context: Context): Promise<Endpoint> {
    if (uri.path === '') throw new ResolveEndpointError(uri.masked, 'cron needs a name: cron:<name>?schedule=0/5 * * * * ?');
    const options = resolveOptions(uri.masked, 'cron', cronOptions, uri.params);
    if (options.schedule === undefined || options.schedule.trim() === '') {
      throw new ResolveEndpointError(uri.masked, 'the schedule option is required, e.g. cron:tick?schedule=0/5+*+*+*+*+? (every 5 seconds)');
    }
    if (options.timezone !== undefined) {
      const problem = checkTimeZone(options.timezone);
      if (problem) throw new ResolveEndpointError(uri.masked, `option "timezone" has the invalid value "${options.timezone}": ${problem}`);
    }
    const translated = quartzToNodeCron(options.schedule);
    const cron = await import('node-cron');
    const problem =
      'error' in translated
        ? translated.error
        : cron
            .validateDetailed(translated.expression)
            .errors.map((e) => `${e.field}: ${e.message}`)
            .join('; ');
    if (problem) {
      throw new ResolveEndpointError(
        uri.masked,
        `invalid schedule "${options.schedule}": ${problem}. Expected seconds minutes hours day-of-month month day-of-week, e.g. 0/5 * * * * ? or 0 0 12 * * MON-FRI`,
      );
    }
    return new CronEndpoint(uri, context, {
      name: uri.path,
      expression: (translated as { expression: string }).expression,
      timeZone: options.timezone ?? processTimeZone(),
      misfirePolicy: options.misfirePolicy,
      clock: this.#clock,
      cron,
    });
  }
}
