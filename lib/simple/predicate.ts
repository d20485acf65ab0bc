import type { Exchange } from '../exchange/exchange.ts';
import type { Evaluator, SimpleOptions } from './functions.ts';
import { SimpleSyntaxError } from './syntax-error.ts';
import { parseTemplate, templateEvaluator } from './template.ts';
import { toNumber, toText, truthy } from './values.ts';

export type PredicateEvaluator = (exchange: Exchange) => boolean;

type Compare = (left: unknown, right: unknown, rightSource: Operand) => boolean;

/** A right-hand side: its evaluator, and the compiled regex when it is a literal pattern. */
interface Operand {
  evaluate: Evaluator;
  literal?: string;
  regex?: RegExp;
}

const OPERATORS: Record<string, Compare> = {
  '==': (a, b) => equal(a, b),
  '=~': (a, b) => toText(a).toLowerCase() === toText(b).toLowerCase(),
  '!=': (a, b) => !equal(a, b),
  '>': (a, b) => order(a, b, (x) => x > 0),
  '>=': (a, b) => order(a, b, (x) => x >= 0),
  '<': (a, b) => order(a, b, (x) => x < 0),
  '<=': (a, b) => order(a, b, (x) => x <= 0),
  contains: (a, b) => contains(a, b),
  '!contains': (a, b) => !contains(a, b),
  '~~': (a, b) => toText(a).toLowerCase().includes(toText(b).toLowerCase()),
  regex: (a, b, rhs) => matches(a, b, rhs),
  '!regex': (a, b, rhs) => !matches(a, b, rhs),
  in: (a, b) => inList(a, b),
  '!in': (a, b) => !inList(a, b),
  startsWith: (a, b) => a !== null && a !== undefined && toText(a).startsWith(toText(b)),
  '!startsWith': (a, b) => !(a !== null && a !== undefined && toText(a).startsWith(toText(b))),
  endsWith: (a, b) => a !== null && a !== undefined && toText(a).endsWith(toText(b)),
  '!endsWith': (a, b) => !(a !== null && a !== undefined && toText(a).endsWith(toText(b))),
};

/** Camel also spells the negations `not contains`, `not regex`, `not in`, and `and`/`or` for `&&`/`||`. */
const WORD_OPERATORS = ['contains', 'regex', 'in', 'startsWith', 'endsWith'];
const SYMBOL_OPERATORS = ['==', '=~', '!=', '>=', '<=', '>', '<', '~~'];

export function compilePredicateSource(source: string, options: SimpleOptions): PredicateEvaluator {
  const parser = new PredicateParser(source, options);
  const result = parser.parseOr();
  parser.skipSpace();
  if (!parser.atEnd()) parser.fail(parser.pos, `unexpected ${JSON.stringify(source.slice(parser.pos, parser.pos + 12))}: expected && or || or the end`);
  return result;
}

class PredicateParser {
  readonly source: string;
  readonly options: SimpleOptions;
  pos = 0;

  constructor(source: string, options: SimpleOptions) {
    this.source = source;
    this.options = options;
  }

  fail(at: number, problem: string): never {
    throw new SimpleSyntaxError(this.source, at, problem);
  }

  atEnd(): boolean {
    return this.pos >= this.source.length;
  }

  skipSpace(): void {
    while (!this.atEnd() && /\s/.test(this.source[this.pos]!)) this.pos += 1;
  }

  /** Matches a keyword or symbol at the current position, word keywords only as whole words. */
  take(token: string): boolean {
    this.skipSpace();
    if (!this.source.startsWith(token, this.pos)) return false;
    const after = this.source[this.pos + token.length];
    if (/^[A-Za-z]/.test(token) && after !== undefined && /[A-Za-z0-9_]/.test(after)) return false;
    this.pos += token.length;
    return true;
  }

  parseOr(): PredicateEvaluator {
    const terms = [this.parseAnd()];
    while (this.take('||') || this.take('or')) terms.push(this.expectTerm(() => this.parseAnd(), '||'));
    if (terms.length === 1) return terms[0]!;
    return (ex) => terms.some((t) => t(ex));
  }

  parseAnd(): PredicateEvaluator {
    const terms = [this.parseUnary()];
    while (this.take('&&') || this.take('and')) terms.push(this.expectTerm(() => this.parseUnary(), '&&'));
    if (terms.length === 1) return terms[0]!;
    return (ex) => terms.every((t) => t(ex));
  }

  expectTerm(parse: () => PredicateEvaluator, after: string): PredicateEvaluator {
    this.skipSpace();
    if (this.atEnd()) this.fail(this.pos, `expected a condition after ${after}`);
    return parse();
  }

  parseUnary(): PredicateEvaluator {
    this.skipSpace();
    if (this.source[this.pos] === '(') {
      const open = this.pos;
      this.pos += 1;
      const inner = this.parseOr();
      this.skipSpace();
      if (this.source[this.pos] !== ')') this.fail(open, 'unbalanced (: expected a closing )');
      this.pos += 1;
      return inner;
    }
    if (this.source[this.pos] === '!' && this.source[this.pos + 1] === '(') {
      this.pos += 1;
      const inner = this.parseUnary();
      return (ex) => !inner(ex);
    }
    return this.parseComparison();
  }

  parseComparison(): PredicateEvaluator {
    const leftStart = this.pos;
    const left = this.operand();
    const opStart = this.pos;
    const op = this.operator();
    if (op === undefined) {
      const evaluate = left.evaluate;
      if (left.literal !== undefined && !/^(true|false)$/i.test(left.literal)) {
        this.fail(leftStart, `${JSON.stringify(left.literal)} is not a condition: expected \${...}, true, false, or a comparison such as \${header.x} == 'y'`);
      }
      return (ex) => truthy(evaluate(ex));
    }
    this.skipSpace();
    if (this.atEnd() || this.source.startsWith('&&', this.pos) || this.source.startsWith('||', this.pos) || this.source[this.pos] === ')') {
      this.fail(this.pos, `expected a value after ${op} (at position ${opStart})`);
    }
    const right = this.operand();
    if ((op === 'regex' || op === '!regex') && right.literal !== undefined) {
      try {
        right.regex = new RegExp(`^(?:${right.literal})$`);
      } catch (err) {
        this.fail(opStart, `invalid regular expression ${JSON.stringify(right.literal)}: ${(err as Error).message}`);
      }
    }
    const compare = OPERATORS[op]!;
    const l = left.evaluate;
    const r = right.evaluate;
    return (ex) => compare(l(ex), r(ex), right);
  }

  operator(): string | undefined {
    this.skipSpace();
    for (const symbol of SYMBOL_OPERATORS) if (this.take(symbol)) return symbol;
    const save = this.pos;
    let negate = false;
    if (this.source[this.pos] === '!' && /[a-z]/.test(this.source[this.pos + 1] ?? '')) {
      this.pos += 1;
      negate = true;
    } else if (this.take('not')) negate = true;
    for (const word of WORD_OPERATORS) if (this.take(word)) return negate ? `!${word}` : word;
    this.pos = save;
    return undefined;
  }

  operand(): Operand {
    this.skipSpace();
    const start = this.pos;
    const c = this.source[this.pos];
    if (c === undefined) this.fail(start, 'expected a value');
    if (c === "'" || c === '"') {
      let i = this.pos + 1;
      while (i < this.source.length && this.source[i] !== c) i += this.source[i] === '\\' ? 2 : 1;
      if (i >= this.source.length) this.fail(start, `unbalanced quote ${c}: expected a closing ${c}`);
      const raw = this.source.slice(this.pos + 1, i);
      this.pos = i + 1;
      const literal = raw.replace(/\\(['"\\])/g, '$1');
      if (!raw.includes('${')) return { evaluate: () => literal, literal };
      return { evaluate: templateEvaluator(parseTemplate(this.source, this.options, start + 1, i)) };
    }
    if (this.source.startsWith('${', this.pos)) {
      let depth = 0;
      let i = this.pos + 2;
      for (; i < this.source.length; i += 1) {
        if (this.source[i] === '{') depth += 1;
        else if (this.source[i] === '}') {
          if (depth === 0) break;
          depth -= 1;
        }
      }
      if (i >= this.source.length) this.fail(start, 'unterminated ${: expected a closing }');
      this.pos = i + 1;
      return { evaluate: templateEvaluator(parseTemplate(this.source, this.options, start, this.pos)) };
    }
    const word = /^[^\s()&|=!<>~]+/.exec(this.source.slice(this.pos));
    if (!word) this.fail(start, `expected a value, found ${JSON.stringify(this.source.slice(start, start + 8))}`);
    this.pos += word[0].length;
    const text = word[0];
    if (text === 'null') return { evaluate: () => null, literal: text };
    if (text === 'true' || text === 'false') {
      const value = text === 'true';
      return { evaluate: () => value, literal: text };
    }
    const n = toNumber(text);
    if (n !== undefined) return { evaluate: () => n, literal: text };
    return { evaluate: () => text, literal: text };
  }
}

function isNullish(v: unknown): boolean {
  return v === null || v === undefined;
}

function equal(a: unknown, b: unknown): boolean {
  if (isNullish(a) || isNullish(b)) return isNullish(a) && isNullish(b);
  const x = toNumber(a);
  const y = toNumber(b);
  if (x !== undefined && y !== undefined) return x === y;
  if (typeof a === 'boolean' || typeof b === 'boolean') return toText(a).toLowerCase() === toText(b).toLowerCase();
  return toText(a) === toText(b);
}

function order(a: unknown, b: unknown, accept: (sign: number) => boolean): boolean {
  if (isNullish(a) || isNullish(b)) return false;
  const x = toNumber(a);
  const y = toNumber(b);
  if (x !== undefined && y !== undefined) return accept(x === y ? 0 : x < y ? -1 : 1);
  const s = toText(a);
  const t = toText(b);
  return accept(s === t ? 0 : s < t ? -1 : 1);
}

function contains(a: unknown, b: unknown): boolean {
  if (isNullish(a)) return false;
  if (Array.isArray(a)) return a.some((item) => equal(item, b));
  return toText(a).includes(toText(b));
}

function inList(a: unknown, b: unknown): boolean {
  const list = Array.isArray(b) ? b : toText(b).split(',');
  return list.some((item) => equal(a, typeof item === 'string' ? item.trim() : item));
}

const dynamicRegexCache = new Map<string, RegExp | null>();

function matches(value: unknown, pattern: unknown, rhs: Operand): boolean {
  if (isNullish(value)) return false;
  let regex = rhs.regex;
  if (!regex) {
    const source = toText(pattern);
    let cached = dynamicRegexCache.get(source);
    if (cached === undefined) {
      try {
        cached = new RegExp(`^(?:${source})$`);
      } catch {
        cached = null;
      }
      if (dynamicRegexCache.size > 1000) dynamicRegexCache.clear();
      dynamicRegexCache.set(source, cached);
    }
    if (!cached) return false;
    regex = cached;
  }
  return regex.test(toText(value));
}
