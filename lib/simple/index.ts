/**
 * The Simple language, after Camel's: templates such as `Hello ${body.name}` and predicates such as
 * `${header.type} == 'order' && ${body.total} > 100`. Everything is parsed once, when a route is
 * defined, into closures; evaluating never parses, and a malformed expression fails at build time.
 */
import type { Evaluator, SimpleOptions } from './functions.ts';
import { parseTemplate, templateEvaluator } from './template.ts';
import { compilePredicateSource, type PredicateEvaluator } from './predicate.ts';

export type { Evaluator, SimpleOptions } from './functions.ts';
export type { PredicateEvaluator } from './predicate.ts';
export { SimpleSyntaxError } from './syntax-error.ts';
export { KNOWN_FUNCTIONS } from './functions.ts';

/**
 * A template that is exactly one `${...}` returns the raw value; plain text returns itself;
 * mixed text returns a string with each function's string form spliced in.
 */
export function compileExpression(template: string, options: SimpleOptions = {}): Evaluator {
  return templateEvaluator(parseTemplate(template, options));
}

export function compilePredicate(text: string, options: SimpleOptions = {}): PredicateEvaluator {
  return compilePredicateSource(text, options);
}

export function isSimpleTemplate(text: string): boolean {
  return text.includes('${');
}
