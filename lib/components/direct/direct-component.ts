import type { Component, Endpoint } from '../../spi/component.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { resolveOptions, type OptionValues } from '../../uri/options.ts';
import { DromedaryError, ResolveEndpointError } from '../../errors.ts';
import type { Context } from '../../engine/context.ts';
import type { Exchange } from '../../exchange/exchange.ts';
import { ConsumerSupport, EndpointSupport, ProducerSupport } from '../../spi/endpoint-support.ts';
import type { Processor } from '../../spi/processor.ts';

export const directOptions = {
  block: { type: 'boolean', default: true, description: 'when no consumer is attached, wait up to timeout for one' },
  timeout: { type: 'duration', default: 30_000, min: 0, description: 'how long block waits' },
} as const;

export type DirectOptions = OptionValues<typeof directOptions>;

/** Raised when a direct: endpoint is called with no route consuming from it. */
export class DirectConsumerNotAvailableError extends DromedaryError {
  constructor(maskedUri: string, waitedMs: number, stopping = false) {
    super(
      'DIRECT_NO_CONSUMER',
      `No consumers available on endpoint: ${maskedUri}${waitedMs > 0 ? ` (waited ${waitedMs}ms)` : ''}. ` +
        (stopping
          ? 'The context is stopping: no route consumes from it any more, and none will start (work still running past the shutdown timeout?).'
          : `Start a route with from('${maskedUri}'), or check the endpoint name.`),
    );
  }
}

/** The per-context table of direct consumers, with waiters for names that have none yet. */
class DirectRegistry {
  readonly #consumers = new Map<string, Processor>();
  readonly #waiters = new Map<string, Set<() => void>>();

  register(name: string, maskedUri: string, processor: Processor): void {
    if (this.#consumers.has(name)) {
      throw new DromedaryError('DIRECT_DUPLICATE_CONSUMER', `Multiple consumers for the same endpoint is not allowed: ${maskedUri}`);
    }
    this.#consumers.set(name, processor);
    const waiters = this.#waiters.get(name);
    this.#waiters.delete(name);
    for (const wake of waiters ?? []) wake();
  }

  unregister(name: string, processor: Processor): void {
    if (this.#consumers.get(name) === processor) this.#consumers.delete(name);
  }

  get(name: string): Processor | undefined {
    return this.#consumers.get(name);
  }

  /** Resolves with the consumer once one registers, or undefined after the timeout. */
  wait(name: string, timeoutMs: number): Promise<Processor | undefined> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(name) ?? new Set();
      this.#waiters.set(name, waiters);
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(this.#consumers.get(name));
      };
      const timer = setTimeout(wake, timeoutMs);
      waiters.add(wake);
    });
  }
}

export class DirectEndpoint extends EndpointSupport {
  readonly name: string;
  readonly options: DirectOptions;
  readonly registry: DirectRegistry;

  constructor(parsed: ParsedUri, context: Context, name: string, options: DirectOptions, registry: DirectRegistry) {
    super(parsed, context);
    this.name = name;
    this.options = options;
    this.registry = registry;
  }

  override createConsumer(processor: Processor): DirectConsumer {
    return new DirectConsumer(this, processor);
  }

  override createProducer(): DirectProducer {
    return new DirectProducer(this);
  }
}

class DirectConsumer extends ConsumerSupport<DirectEndpoint> {
  /** Other routes call it: a graceful stop keeps it serving until their work, forced completions included, is done. */
  readonly defersShutdown = true;

  protected doStart(): void {
    this.endpoint.registry.register(this.endpoint.name, this.endpoint.maskedUri, this.processor);
  }

  protected doStop(): void {
    this.endpoint.registry.unregister(this.endpoint.name, this.processor);
  }
}

/**
 * Calls the consuming route on the caller's turn, with the same exchange, so the caller sees its
 * result and its failure (Camel's direct: synchronous, in-process).
 */
class DirectProducer extends ProducerSupport<DirectEndpoint> {
  process(exchange: Exchange): void | Promise<void> {
    const { registry, name, options, maskedUri } = this.endpoint;
    const consumer = registry.get(name);
    if (consumer) return consumer(exchange);
    // A stopping context never starts the route again: waiting for it would only hold up the stop.
    const stopping = this.endpoint.context.state === 'stopping' || this.endpoint.context.state === 'stopped';
    if (!options.block || options.timeout === 0 || stopping) throw new DirectConsumerNotAvailableError(maskedUri, 0, stopping);
    return registry.wait(name, options.timeout).then((late) => {
      if (!late) throw new DirectConsumerNotAvailableError(maskedUri, options.timeout);
      return late(exchange);
    });
  }
}

/** `direct:name`: a synchronous call from one route to another in the same context. */
export class DirectComponent implements Component {
  readonly #registry = new DirectRegistry();

  createEndpoint(uri: ParsedUri, context: Context): Endpoint {
    if (uri.path === '') throw new ResolveEndpointError(uri.masked, 'direct needs a name: direct:<name>');
    return new DirectEndpoint(uri, context, uri.path, resolveOptions(uri.masked, 'direct', directOptions, uri.params), this.#registry);
  }
}
