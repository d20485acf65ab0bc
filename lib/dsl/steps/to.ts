import { compileExpression } from '../../simple/index.ts';
import { maskUri } from '../../uri/mask.ts';
import type { Producer } from '../../spi/component.ts';
import type { StepDefinition } from '../step.ts';
import { checkUriSyntax } from '../../uri/parse.ts';
import { hasPlaceholders, placeholdersIn } from '../../uri/placeholders.ts';
import { ResolveEndpointError } from '../../errors.ts';

/** Sends the exchange to a static endpoint; its producer lives as long as the route. */
export function toStep(uri: string): StepDefinition {
  checkUriSyntax(uri);
  return {
    kind: 'to',
    label: `to(${maskUri(uri)})`,
    async compile(compiler) {
      const producer = await compiler.producer(uri);
      return (exchange) => producer.process(exchange);
    },
  };
}

const DEFAULT_CACHE_SIZE = 1000;

/**
 * Sends to an endpoint computed per exchange from a Simple template (Camel's toD). Producers are
 * cached by URI, least recently used first out, so a template with unbounded values cannot leak.
 */
export function toDStep(template: string, options: { cacheSize?: number } = {}): StepDefinition {
  const evaluate = compileExpression(template);
  const allowed = placeholdersIn(template);
  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  return {
    kind: 'toD',
    label: `toD(${maskUri(template)})`,
    compile({ context, onStop }) {
      const cache = new Map<string, Promise<Producer>>();
      onStop(async () => {
        const all = [...cache.values()];
        cache.clear();
        for (const p of all) await (await p.catch(() => undefined))?.stop();
      });
      const producerFor = (uri: string): Promise<Producer> => {
        let pending = cache.get(uri);
        if (pending) {
          cache.delete(uri);
          cache.set(uri, pending);
          return pending;
        }
        pending = context.createProducer(uri);
        cache.set(uri, pending);
        pending.catch(() => cache.delete(uri));
        if (cache.size > cacheSize) {
          const [oldestUri, oldest] = cache.entries().next().value!;
          cache.delete(oldestUri);
          void oldest.then((p) => p.stop()).catch(() => undefined);
        }
        return pending;
      };
      return async (exchange) => {
        const uri = String(evaluate(exchange));
        refuseInjectedPlaceholders(uri, allowed, template);
        const producer = await producerFor(uri);
        await producer.process(exchange);
      };
    },
  };
}

/**
 * The context resolves placeholders in the computed URI, so a header holding `{{env:SECRET}}` would
 * otherwise put a secret into a request sent wherever the rest of the URI points. Only placeholders
 * written in the template itself are resolved.
 */
function refuseInjectedPlaceholders(uri: string, allowed: readonly string[], template: string): void {
  if (!hasPlaceholders(uri)) return;
  const left = [...allowed];
  for (const p of placeholdersIn(uri)) {
    const at = left.indexOf(p);
    if (at === -1) {
      throw new ResolveEndpointError(
        maskUri(template),
        `the URI computed by toD contains the placeholder ${p}, which is not written in the template: values from the exchange are never resolved as property placeholders. Write it in the toD template itself`,
      );
    }
    left.splice(at, 1);
  }
  if (uri.split('{{').length - 1 > allowed.length) {
    throw new ResolveEndpointError(maskUri(template), 'the URI computed by toD contains "{{" that is not in the template: values from the exchange are never resolved as property placeholders');
  }
}
