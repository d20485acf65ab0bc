/**
 * Label and field selectors with the apiserver's grammar (apimachinery pkg/labels/selector.go and
 * pkg/fields/selector.go): `k=v`, `k==v`, `k!=v` (also true when k is absent), `k in (a,b)`,
 * `k notin (a,b)` (also true when k is absent), `k`, `!k`, `k>N`, `k<N`, joined by commas (AND).
 */

export type Operator = 'in' | 'notin' | 'exists' | '!' | '>' | '<';

export interface Requirement {
  key: string;
  operator: Operator;
  values: string[];
}

/** A parse failure; the server answers it with 400 BadRequest and this message. */
export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

type Token =
  | { kind: 'ident'; text: string }
  | { kind: 'sym'; text: '!' | '!=' | '(' | ')' | ',' | '=' | '==' | '>' | '<' }
  | { kind: 'end'; text: '' };

const SYMBOLS = ['!=', '==', '!', '(', ')', ',', '=', '>', '<'] as const;

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const sym = SYMBOLS.find((s) => input.startsWith(s, i));
    if (sym) {
      tokens.push({ kind: 'sym', text: sym });
      i += sym.length;
      continue;
    }
    let j = i;
    while (j < input.length && !/\s/.test(input[j]!) && !SYMBOLS.some((s) => input.startsWith(s, j))) j++;
    tokens.push({ kind: 'ident', text: input.slice(i, j) });
    i = j;
  }
  tokens.push({ kind: 'end', text: '' });
  return tokens;
}

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function validateKey(key: string): void {
  const slash = key.indexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) {
    throw new SelectorError(
      `unable to parse requirement: key: Invalid value: "${key}": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    );
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    throw new SelectorError(
      `unable to parse requirement: key: Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with at most 63 characters`,
    );
  }
}

function validateValue(key: string, value: string, index: number): void {
  if (value.length > 63 || (value !== '' && !NAME.test(value))) {
    throw new SelectorError(
      `unable to parse requirement: values[${index}][${key}]: Invalid value: "${value}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with at most 63 characters`,
    );
  }
}

/** Parses a labelSelector. An empty string selects everything. */
export function parseLabelSelector(input: string): Requirement[] {
  const tokens = lex(input);
  let pos = 0;
  const peek = (): Token => tokens[pos]!;
  const next = (): Token => tokens[pos++]!;
  const found = (t: Token): string => (t.kind === 'end' ? 'EOS' : t.text);
  const requirements: Requirement[] = [];
  if (peek().kind === 'end') return requirements;

  for (;;) {
    let t = next();
    let negated = false;
    if (t.kind === 'sym' && t.text === '!') {
      negated = true;
      t = next();
    }
    if (t.kind !== 'ident') {
      throw new SelectorError(`found '${found(t)}', expected: ${negated ? "identifier after '!'" : "!, identifier, or 'end of string'"}`);
    }
    const key = t.text;
    validateKey(key);
    const op = peek();
    if (negated) {
      if (!(op.kind === 'end' || (op.kind === 'sym' && op.text === ','))) {
        throw new SelectorError(`found '${found(op)}', expected: ',' or 'end of string'`);
      }
      requirements.push({ key, operator: '!', values: [] });
    } else if (op.kind === 'end' || (op.kind === 'sym' && op.text === ',')) {
      requirements.push({ key, operator: 'exists', values: [] });
    } else if (op.kind === 'ident' && (op.text === 'in' || op.text === 'notin')) {
      next();
      const open = next();
      if (!(open.kind === 'sym' && open.text === '(')) throw new SelectorError(`found '${found(open)}', expected: '('`);
      const values: string[] = [];
      let expectValue = true;
      for (;;) {
        const v = next();
        if (v.kind === 'sym' && v.text === ')') {
          if (expectValue && values.length > 0) values.push('');
          break;
        }
        if (v.kind === 'sym' && v.text === ',') {
          if (expectValue) values.push('');
          expectValue = true;
          continue;
        }
        if (v.kind === 'ident' && expectValue) {
          values.push(v.text);
          expectValue = false;
          continue;
        }
        throw new SelectorError(`found '${found(v)}', expected: ',', ')' or identifier`);
      }
      if (values.length === 0) {
        throw new SelectorError(`unable to parse requirement: values: Required value: for 'in', 'notin' operators, values set can't be empty`);
      }
      values.forEach((v, i) => validateValue(key, v, i));
      requirements.push({ key, operator: op.text, values });
    } else if (op.kind === 'sym' && ['=', '==', '!=', '>', '<'].includes(op.text)) {
      next();
      const v = peek();
      let value = '';
      if (v.kind === 'ident') {
        value = v.text;
        next();
      } else if (!(v.kind === 'end' || (v.kind === 'sym' && v.text === ','))) {
        throw new SelectorError(`found '${found(v)}', expected: identifier`);
      }
      if (op.text === '>' || op.text === '<') {
        if (!/^[-+]?\d+$/.test(value)) {
          throw new SelectorError(
            `unable to parse requirement: values[0]: Invalid value: "${value}": for 'Gt', 'Lt' operators, the value must be an integer`,
          );
        }
        requirements.push({ key, operator: op.text, values: [value] });
      } else {
        validateValue(key, value, 0);
        requirements.push({ key, operator: op.text === '!=' ? 'notin' : 'in', values: [value] });
      }
    } else {
      throw new SelectorError(`found '${found(op)}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    const sep = next();
    if (sep.kind === 'end') return requirements;
    if (!(sep.kind === 'sym' && sep.text === ',')) throw new SelectorError(`found '${found(sep)}', expected: ',' or 'end of string'`);
  }
}

export function matchesLabels(requirements: readonly Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const value = has ? l[r.key]! : undefined;
    switch (r.operator) {
      case 'in':
        return has && r.values.includes(value!);
      case 'notin':
        return !has || !r.values.includes(value!);
      case 'exists':
        return has;
      case '!':
        return !has;
      case '>':
      case '<': {
        if (!has || !/^[-+]?\d+$/.test(value!)) return false;
        const actual = BigInt(value!);
        const bound = BigInt(r.values[0]!);
        return r.operator === '>' ? actual > bound : actual < bound;
      }
    }
  });
}

export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

/** Parses a fieldSelector: `f=v`, `f==v`, `f!=v` joined by commas; `\` escapes `,`, `=`, `!` and `\`. */
export function parseFieldSelector(input: string): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  if (input.trim() === '') return out;
  for (const term of splitUnescaped(input, ',')) {
    const m = findOperator(term);
    if (!m) throw new SelectorError(`invalid selector: '${input}'; can't understand '${term}'`);
    const field = term.slice(0, m.index).trim();
    const value = unescapeField(term.slice(m.index + m.op.length));
    out.push({ field, operator: m.op === '!=' ? '!=' : '=', value });
  }
  return out;
}

function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + s[i + 1];
      i++;
    } else if (ch === sep) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

function findOperator(term: string): { index: number; op: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    if (term[i] === '\\') {
      i++;
      continue;
    }
    for (const op of ['!=', '==', '=']) if (term.startsWith(op, i)) return { index: i, op };
  }
  return undefined;
}

function unescapeField(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

export function matchesFields(requirements: readonly FieldRequirement[], fields: Record<string, string>): boolean {
  return requirements.every((r) => ((fields[r.field] ?? '') === r.value) === (r.operator === '='));
}
