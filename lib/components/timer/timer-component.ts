import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { resolveOptions, type OptionValues } from '../../uri/options.ts';
import { ResolveEndpointError } from '../../errors.ts';
import type { Context } from '../../engine/context.ts';
import { EndpointSupport } from '../../spi/endpoint-support.ts';
import type { Processor } from '../../spi/processor.ts';
import { TimerConsumer } from './timer-consumer.ts';

/** Camel's timer options and defaults (timer.json). */
export const timerOptions = {
  period: { type: 'duration', default: 1000, min: 0, description: 'time between fires' },
  delay: { type: 'duration', default: 1000, description: 'time before the first fire; negative fires at once' },
  repeatCount: { type: 'integer', default: 0, min: 0, description: 'stop after this many fires; 0 is forever' },
  fixedRate: { type: 'boolean', default: false, description: 'keep to the schedule, catching up after a slow exchange' },
  includeMetadata: { type: 'boolean', default: false, description: 'set the CamelTimer* properties and the firedTime header' },
} as const;

export type TimerOptions = OptionValues<typeof timerOptions>;

export class TimerEndpoint extends EndpointSupport {
  readonly timerName: string;
  readonly options: TimerOptions;

  constructor(parsed: ParsedUri, context: Context, timerName: string, options: TimerOptions) {
    super(parsed, context);
    this.timerName = timerName;
    this.options = options;
  }

  override createConsumer(processor: Processor): TimerConsumer {
    return new TimerConsumer(this, processor);
  }
}

/** `timer:name?period=1000`: fires an exchange with an empty body on a schedule. */
export class TimerComponent implements Component {
  createEndpoint(uri: ParsedUri, context: Context): Endpoint {
    if (uri.path === '') throw new ResolveEndpointError(uri.masked, 'the timer needs a name: timer:<name>?period=1000');
    return new TimerEndpoint(uri, context, uri.path, resolveOptions(uri.masked, 'timer', timerOptions, uri.params));
  }
}
