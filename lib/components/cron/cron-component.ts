import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { resolveOptions, type OptionValues } from '../../uri/options.ts';
import { ResolveEndpointError } from '../../errors.ts';
import type { Context } from '../../engine/context.ts';
import { ConsumerSupport, EndpointSupport } from '../../spi/endpoint-support.ts';
import type { Processor } from '../../spi/processor.ts';
import { Exchange } from '../../exchange/exchange.ts';
import { quartzToNodeCron } from './quartz.ts';

export const cronOptions = {
  schedule: { type: 'string', description: 'Quartz or cron expression, seconds first: 0/5 * * * * ? fires every 5 s' },
  timezone: { type: 'string', description: 'IANA time zone the schedule is read in (default: the process time zone)' },
} as const;

export type CronOptions = OptionValues<typeof cronOptions>;

type CronModule = typeof import('node-cron');

export class CronEndpoint extends EndpointSupport {
  readonly cronName: string;
  readonly expression: string;
  readonly options: CronOptions;
  readonly cron: CronModule;

  constructor(parsed: ParsedUri, context: Context, init: { name: string; expression: string; options: CronOptions; cron: CronModule }) {
    super(parsed, context);
    this.cronName = init.name;
    this.expression = init.expression;
    this.options = init.options;
    this.cron = init.cron;
  }

  override createConsumer(processor: Processor): CronConsumer {
    return new CronConsumer(this, processor);
  }
}

/** Fires one exchange per scheduled time; a fire due while the previous exchange still runs is skipped, as with Camel's cron. */
class CronConsumer extends ConsumerSupport<CronEndpoint> {
  #task: ReturnType<CronModule['createTask']> | undefined;
  #counter = 0;
  #running = false;

  protected doStart(): void {
    const { cron, expression, cronName, options } = this.endpoint;
    const logger = this.endpoint.context.logger;
    // The overlap check is ours rather than node-cron's noOverlap, which reports skips with
    // console output of its own; library code logs only through the injected logger.
    this.#task = cron.createTask(
      expression,
      async (ctx) => {
        if (this.#running) {
          logger.debug(`cron:${cronName} skipped the fire due at ${ctx.date.toISOString()}: the previous exchange is still running`);
          return;
        }
        this.#running = true;
        try {
          this.#counter += 1;
          const exchange = new Exchange({ fromEndpoint: this.endpoint.maskedUri });
          exchange.headers.set('CamelCronFiredTime', ctx.date);
          exchange.headers.set('CamelCronName', cronName);
          exchange.properties.set('CamelTimerCounter', this.#counter);
          await this.processor(exchange);
        } finally {
          this.#running = false;
        }
      },
      { name: `dromedary:${cronName}`, timezone: options.timezone, suppressMissedWarning: true },
    );
    void this.#task.start();
  }

  protected async doStop(): Promise<void> {
    await this.#task?.destroy();
    this.#task = undefined;
  }
}

/** `cron:name?schedule=0/5 * * * * ?` (node-cron, loaded on first use). */
export class CronComponent implements Component {
  async createEndpoint(uri: ParsedUri, context: Context): Promise<Endpoint> {
    if (uri.path === '') throw new ResolveEndpointError(uri.masked, 'cron needs a name: cron:<name>?schedule=0/5 * * * * ?');
    const options = resolveOptions(uri.masked, 'cron', cronOptions, uri.params);
    if (options.schedule === undefined || options.schedule.trim() === '') {
      throw new ResolveEndpointError(uri.masked, 'the schedule option is required, e.g. cron:tick?schedule=0/5+*+*+*+*+? (every 5 seconds)');
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
    return new CronEndpoint(uri, context, { name: uri.path, expression: (translated as { expression: string }).expression, options, cron });
  }
}
