import type { Registry } from 'prom-client';
import type { Endpoint } from '../spi/component.ts';
import { isMetered, type Meter, type MeteredEndpoint } from '../spi/endpoint-meters.ts';
import type { Logger } from '../logging/logger.ts';

type PromClient = typeof import('prom-client');

/**
 * The counts components keep per endpoint (spi/endpoint-meters.ts), as Prometheus metrics labelled
 * `endpoint`. A component's metrics appear with its first endpoint: before each scrape, `refresh()`
 * lists the context's endpoints and registers a metric for each meter name not seen yet; the metrics
 * read the meters as they are collected.
 */
export function endpointMetrics(options: { prom: PromClient; registry: Registry; endpoints: () => Promise<readonly Endpoint[]>; logger: Logger }): () => Promise<void> {
  const { prom, registry, logger } = options;
  let metered: readonly MeteredEndpoint[] = [];
  const types = new Map<string, Meter['type']>();
  // An endpoint made again (the context restarted) counts from 0: counters add what each meter counted since the last scrape.
  const seen = new WeakMap<Meter, number>();
  const each = function* (name: string, type: Meter['type']): Generator<[string, Meter]> {
    for (const endpoint of metered) for (const meter of endpoint.meters) if (meter.name === name && meter.type === type) yield [endpoint.maskedUri, meter];
  };

  const register = (meter: Meter): void => {
    const { name, help, type } = meter;
    types.set(name, type);
    try {
      if (type === 'counter') {
        new prom.Counter({
          name,
          help,
          labelNames: ['endpoint'],
          registers: [registry],
          collect() {
            for (const [endpoint, m] of each(name, type)) {
              const value = m.read();
              const last = seen.get(m) ?? 0;
              this.inc({ endpoint }, Math.max(0, value - last));
              seen.set(m, Math.max(value, last));
            }
          },
        });
      } else {
        new prom.Gauge({
          name,
          help,
          labelNames: ['endpoint'],
          registers: [registry],
          collect() {
            this.reset();
            for (const [endpoint, m] of each(name, type)) this.set({ endpoint }, m.read());
          },
        });
      }
    } catch (err) {
      // A custom component's meter named like another metric, or not a Prometheus name: the scrape goes on without it.
      logger.warn(`The endpoint meter ${name} is left out of /metrics: ${(err as Error).message}. Give it a unique dromedary_<component>_… name`);
    }
  };

  return async () => {
    metered = (await options.endpoints()).filter(isMetered);
    for (const endpoint of metered) for (const meter of endpoint.meters) if (!types.has(meter.name)) register(meter);
  };
}
