import { DromedaryError } from '../../errors.ts';
import type { StepDefinition } from '../step.ts';

export interface JsonOptions {
  /** Indent the output (marshal only). */
  pretty?: boolean;
}

/** marshal().json(): the body becomes its JSON text. */
export function marshalJsonStep(options: JsonOptions = {}): StepDefinition {
  const indent = options.pretty ? 2 : undefined;
  return {
    kind: 'marshal',
    label: 'marshal().json()',
    compile: () => (exchange) => {
      const json = JSON.stringify(exchange.message.body, undefined, indent);
      exchange.message.body = json;
      exchange.message.headers.set('Content-Type', 'application/json');
    },
  };
}

/** unmarshal().json(): a JSON text or Buffer body becomes the value it encodes. */
export function unmarshalJsonStep(): StepDefinition {
  return {
    kind: 'unmarshal',
    label: 'unmarshal().json()',
    compile: () => (exchange) => {
      const body = exchange.message.body;
      if (body === undefined || body === null) return;
      if (typeof body !== 'string' && !Buffer.isBuffer(body) && !(body instanceof Uint8Array)) return;
      const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
      try {
        exchange.message.body = JSON.parse(text);
      } catch (err) {
        const preview = text.length > 60 ? `${text.slice(0, 60)}…` : text;
        throw new DromedaryError('UNMARSHAL_JSON', `Cannot unmarshal the body as JSON: ${(err as Error).message} (body starts with ${JSON.stringify(preview)})`, {
          cause: err,
        });
      }
    },
  };
}
