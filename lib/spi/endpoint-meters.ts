import type { Endpoint } from './component.ts';

/**
 * One count an endpoint keeps of its own work (messages it published, polls it made). The endpoint
 * only adds to a plain number on its hot path; the health port's /metrics reads every meter when
 * Prometheus scrapes, so components never import prom-client or the health module.
 */
export interface Meter {
  /** The Prometheus name: `dromedary_<component>_…`, in base units; a counter's ends in `_total`. */
  readonly name: string;
  readonly help: string;
  /** A word or two for the console (`published`, `backoff (s)`). */
  readonly label: string;
  /** A counter never goes down for as long as its endpoint lives; a gauge is the value now. */
  readonly type: 'counter' | 'gauge';
  read(): number;
}

/**
 * An endpoint whose component counts its work. Its meters are labelled with the endpoint's masked
 * URI (`endpoint="…"`), as the logs name it: never a password or token.
 */
export interface MeteredEndpoint extends Endpoint {
  readonly meters: readonly Meter[];
}

export function isMetered(endpoint: Endpoint): endpoint is MeteredEndpoint {
  return Array.isArray((endpoint as Partial<MeteredEndpoint>).meters);
}
