import type { Evaluator, SimpleOptions } from './functions.ts';
import { compileFunction } from './functions.ts';
import { SimpleSyntaxError } from './syntax-error.ts';
import { toText } from './values.ts';

/** A parsed template: literal text and `${...}` functions, in order. */
export type Part = { text: string } | { fn: Evaluator };

/**
 * Splits `source.slice(start, end)` into literal text and compiled `${...}` functions. `\${` is a
 * literal `${`. Braces inside a function nest, so `${header[a{b}]}` ends at the matching `}`.
 */
export function parseTemplate(source: string, options: SimpleOptions, start = 0, end = source.length): Part[] {
  const parts: Part[] = [];
  let text = '';
  let i = start;
  while (i < end) {
    if (source.startsWith('\\${', i)) {
      text += '${';
      i += 3;
      continue;
    }
    if (source.startsWith('${', i)) {
      const close = matchingBrace(source, i + 2, end);
      if (close === -1) throw new SimpleSyntaxError(source, i, 'unterminated ${: expected a closing }');
      if (text !== '') parts.push({ text });
      text = '';
      parts.push({ fn: compileFunction(source, i + 2, close, options) });
      i = close + 1;
      continue;
    }
    text += source[i];
    i += 1;
  }
  if (text !== '') parts.push({ text });
  return parts;
}

function matchingBrace(source: string, from: number, end: number): number {
  let depth = 0;
  for (let i = from; i < end; i += 1) {
    const c = source[i];
    if (c === '{') depth += 1;
    else if (c === '}') {
      if (depth === 0) return i;
      depth -= 1;
    }
  }
  return -1;
}

/**
 * One evaluator for a template: a lone `${...}` yields its raw value, plain text yields itself,
 * anything else yields the text with each function's string form spliced in.
 */
export function templateEvaluator(parts: readonly Part[]): Evaluator {
  if (parts.length === 0) return () => '';
  if (parts.length === 1) {
    const only = parts[0]!;
    if ('fn' in only) return only.fn;
    const constant = only.text;
    return () => constant;
  }
  const pieces = parts.map((p) => ('fn' in p ? p.fn : p.text));
  return (exchange) => {
    let out = '';
    for (const piece of pieces) out += typeof piece === 'string' ? piece : toText(piece(exchange));
    return out;
  };
}
