import type { Component, Consumer, Endpoint, Producer } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { ConfigurationError, ResolveEndpointError } from '../../errors.ts';
import type { Context } from '../../engine/context.ts';
import { EndpointSupport } from '../../spi/endpoint-support.ts';
import type { Processor } from '../../spi/processor.ts';
import type { ClusterService } from '../../cluster/cluster-service.ts';
import { MasterConsumer } from './master-consumer.ts';
import { indexOutsidePlaceholders } from '../../uri/placeholders.ts';
import { lockNameProblem } from '../../cluster/lock-name.ts';

/** The name under which the context holds its cluster service (see Context.addService). */
export const CLUSTER_SERVICE = 'cluster';

export interface MasterComponentOptions {
  /** Wait between attempts to start the delegate consumer while leading (Camel's backOffDelay, 5 s). */
  backOffDelay?: number;
  /** Give up starting after this many attempts until leadership changes again; 0 retries forever (Camel: 10). */
  backOffMaxAttempts?: number;
}

export class MasterEndpoint extends EndpointSupport {
  readonly lock: string;
  readonly delegate: Endpoint;
  readonly cluster: ClusterService;
  readonly backOffDelay: number;
  readonly backOffMaxAttempts: number;

  constructor(parsed: ParsedUri, context: Context, init: { lock: string; delegate: Endpoint; cluster: ClusterService; backOffDelay: number; backOffMaxAttempts: number }) {
    super(parsed, context);
    this.lock = init.lock;
    this.delegate = init.delegate;
    this.cluster = init.cluster;
    this.backOffDelay = init.backOffDelay;
    this.backOffMaxAttempts = init.backOffMaxAttempts;
  }

  override createConsumer(processor: Processor): Consumer {
    return new MasterConsumer(this, processor);
  }

  override createProducer(): Producer {
    throw new ResolveEndpointError(this.maskedUri, 'Cannot produce from this endpoint: master: is consumer-only. Use it in from(...), and send to the delegate URI directly.');
  }
}

/**
 * `master:<lock>:<delegate-uri>`: the delegate's consumer runs only on the member that leads
 * `<lock>`. The query string belongs to the delegate, as in Camel (`master:lock1:timer:clock?period=500`).
 */
export class MasterComponent implements Component {
  readonly backOffDelay: number;
  readonly backOffMaxAttempts: number;

  constructor(options: MasterComponentOptions = {}) {
    this.backOffDelay = options.backOffDelay ?? 5000;
    this.backOffMaxAttempts = options.backOffMaxAttempts ?? 10;
  }

  async createEndpoint(uri: ParsedUri, context: Context): Promise<Endpoint> {
    const colon = uri.rawPath.indexOf(':');
    const lock = colon === -1 ? '' : decodeURIComponent(uri.rawPath.slice(0, colon));
    const delegatePath = colon === -1 ? '' : uri.rawPath.slice(colon + 1);
    if (lock === '' || delegatePath === '') {
      throw new ResolveEndpointError(uri.masked, `Wrong uri syntax : master:namespace:uri, got ${uri.masked}. Example: master:lock1:timer:clock?period=1000`);
    }
    const lockProblem = lockNameProblem(lock);
    if (lockProblem !== undefined) throw new ResolveEndpointError(uri.masked, lockProblem);
    const cluster = context.service<ClusterService>(CLUSTER_SERVICE);
    if (!cluster) {
      throw new ConfigurationError(
        `No cluster service found for ${uri.masked}: master: routes need one. Run with the dromedary CLI (--cluster file|kubernetes|auto|none), ` +
          `or in code call context.addService('cluster', await createClusterService(...)).`,
      );
    }
    // Resolved now, on every member, so a bad delegate URI fails startup everywhere, not only on the leader.
    // The delegate gets its URI as written, placeholders intact, so it prints them and not their values.
    const delegate = await context.endpoint(delegateTemplate(uri) ?? (uri.rawQuery === '' ? delegatePath : `${delegatePath}?${uri.rawQuery}`));
    return new MasterEndpoint(uri, context, { lock, delegate, cluster, backOffDelay: this.backOffDelay, backOffMaxAttempts: this.backOffMaxAttempts });
  }
}

/** `master:<lock>:<delegate>` as written, minus `master:<lock>:`; a placeholder may hold colons (`{{env:LOCK:tg}}`). */
function delegateTemplate(uri: ParsedUri): string | undefined {
  // The whole URI may be one placeholder ({{env:ROUTE_URI}}): then only the resolved text has the parts.
  if (!/^master:/i.test(uri.template)) return undefined;
  const afterScheme = uri.template.slice(uri.template.indexOf(':') + 1).replace(/^\/\//, '');
  return afterScheme.slice(indexOutsidePlaceholders(afterScheme, ':') + 1);
}
