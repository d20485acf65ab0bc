import os from 'node:os';
import path from 'node:path';
import type { Exchange } from '../exchange/exchange.ts';
import { ExchangeProperty } from '../exchange/exchange.ts';
import { parseDuration } from '../uri/duration.ts';
import { compileDateFormat } from './date-format.ts';
import { SimpleSyntaxError } from './syntax-error.ts';
import { CONVERSION_TYPES, converter, pathGetter, toEpoch, type ConversionType, type PathKey } from './values.ts';

export type Evaluator = (exchange: Exchange) => unknown;

export interface SimpleOptions {
  /** The clock behind `${date:now}` and `${date:millis}`, in epoch milliseconds; Date.now by default. */
  now?: () => number;
}

export const KNOWN_FUNCTIONS = [
  'body',
  'in.body',
  'body.path',
  'bodyAs(Type)',
  'header.name',
  'headers.name',
  'header[name]',
  'headers',
  'headerAs(name,Type)',
  'exchangeProperty.name',
  'exchangeProperties',
  'routeId',
  'exchangeId',
  'id',
  'date:command[:pattern]',
  'date-with-timezone:command:zone:pattern',
  'env:NAME',
  'sys:name',
  'exception',
  'exception.message',
  'exception.stacktrace',
  'random(max)',
  'random(min,max)',
  'null',
];

/** Node stand-ins for the Java system properties Camel's `${sys:...}` reads. */
const SYSTEM_PROPERTIES: Record<string, () => unknown> = {
  'os.name': () => os.type(),
  'os.arch': () => process.arch,
  'os.version': () => os.release(),
  'user.dir': () => process.cwd(),
  'user.home': () => os.homedir(),
  'user.name': () => {
    try {
      return os.userInfo().username;
    } catch {
      return undefined;
    }
  },
  'java.io.tmpdir': () => os.tmpdir(),
  'line.separator': () => os.EOL,
  'file.separator': () => path.sep,
  'path.separator': () => path.delimiter,
  'node.version': () => process.version,
  hostname: () => os.hostname(),
  pid: () => process.pid,
};

const DATE_COMMANDS = 'now, millis, exchangeCreated, body, header.name, exchangeProperty.name (each may carry an offset such as now-1h or now+30s)';

/**
 * Compiles the inside of one `${...}`, `source.slice(start, end)`, into an evaluator. Positions in
 * errors are positions in `source`, so they point into the expression the user wrote.
 */
export function compileFunction(source: string, start: number, end: number, options: SimpleOptions): Evaluator {
  return new FunctionParser(source, start, end, options).parse();
}

class FunctionParser {
  readonly source: string;
  pos: number;
  readonly end: number;
  readonly options: SimpleOptions;

  constructor(source: string, start: number, end: number, options: SimpleOptions) {
    this.source = source;
    let s = start;
    let e = end;
    while (s < e && /\s/.test(source[s]!)) s += 1;
    while (e > s && /\s/.test(source[e - 1]!)) e -= 1;
    this.pos = s;
    this.end = e;
    this.options = options;
  }

  fail(at: number, problem: string): never {
    throw new SimpleSyntaxError(this.source, at, problem);
  }

  get text(): string {
    return this.source.slice(this.pos, this.end);
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  peek(): string | undefined {
    return this.pos < this.end ? this.source[this.pos] : undefined;
  }

  parse(): Evaluator {
    const begin = this.pos;
    if (this.atEnd()) this.fail(begin, `empty \${}; expected a function, one of: ${KNOWN_FUNCTIONS.join(', ')}`);
    let head = this.word();
    if (head === 'in' && this.peek() === '.') {
      this.pos += 1;
      head = this.word();
      if (head !== 'body' && head !== 'header' && head !== 'headers') this.unknown(begin);
    }
    switch (head) {
      case 'body': {
        const get = pathGetter(this.path());
        return (ex) => get(ex.message.body);
      }
      case 'bodyAs': {
        const args = this.args(1, 1, 'bodyAs(Type)');
        const convert = converter(this.type(args[0]!));
        const get = pathGetter(this.path());
        return (ex) => get(convert(ex.message.body));
      }
      case 'header':
      case 'headers':
        if (head === 'headers' && this.atEnd()) return (ex) => ex.message.headers.toObject();
        return this.keyed('header', (ex, name) => ex.message.headers.get(name));
      case 'headerAs': {
        const args = this.args(2, 2, 'headerAs(name,Type)');
        const name = args[0]!.value;
        const convert = converter(this.type(args[1]!));
        this.expectEnd();
        return (ex) => convert(ex.message.headers.get(name));
      }
      case 'exchangeProperty':
        return this.keyed('exchangeProperty', (ex, name) => ex.properties.get(name));
      case 'exchangeProperties':
        this.expectEnd();
        return (ex) => Object.fromEntries(ex.properties);
      case 'routeId':
        this.expectEnd();
        return (ex) => ex.routeId;
      case 'exchangeId':
        this.expectEnd();
        return (ex) => ex.id;
      case 'id':
        this.expectEnd();
        return (ex) => ex.message.messageId ?? ex.id;
      case 'null':
        this.expectEnd();
        return () => null;
      case 'date':
        return this.date(false);
      case 'date-with-timezone':
        return this.date(true);
      case 'env':
        return this.env();
      case 'sys':
        return this.sys();
      case 'exception': {
        const keys = this.path();
        if (keys[0] === 'stacktrace') keys[0] = 'stack';
        const get = pathGetter(keys);
        return (ex) => get(ex.exception ?? ex.properties.get(ExchangeProperty.ExceptionCaught));
      }
      case 'random':
        return this.random();
      default:
        return this.unknown(begin);
    }
  }

  unknown(begin: number): never {
    return this.fail(begin, `unknown function '${this.source.slice(begin, this.end)}'; known functions are: ${KNOWN_FUNCTIONS.join(', ')}`);
  }

  word(): string {
    const m = /^[A-Za-z][A-Za-z0-9_-]*/.exec(this.text);
    if (!m) this.unknown(this.pos);
    this.pos += m[0].length;
    return m[0];
  }

  expectEnd(): void {
    if (!this.atEnd()) this.fail(this.pos, `unexpected '${this.text}'; expected the closing }`);
  }

  /** A name after '.', up to the next '.', '[', '?' or space. */
  name(): string {
    const start = this.pos;
    while (!this.atEnd() && !/[.[?\s]/.test(this.peek()!)) this.pos += 1;
    if (this.pos === start) this.fail(start, "expected a name after '.'");
    return this.source.slice(start, this.pos);
  }

  /** The inside of `[...]`: a quoted key, an integer index, or a bare key (which may contain dashes or dots). */
  bracket(): PathKey {
    const open = this.pos;
    const close = this.source.indexOf(']', open);
    if (close < 0 || close >= this.end) this.fail(open, "unclosed '['; expected ']'");
    const inner = this.source.slice(open + 1, close).trim();
    this.pos = close + 1;
    if (inner === '') this.fail(open + 1, "empty '[]'; expected an index or a key");
    const quoted = /^'(.*)'$|^"(.*)"$/.exec(inner);
    if (quoted) return quoted[1] ?? quoted[2]!;
    if (/^-?\d+$/.test(inner)) return Number(inner);
    return inner;
  }

  /** `.a.b[0]['c']?.d` up to the end of the function; navigation is always null-safe. */
  path(): PathKey[] {
    const keys: PathKey[] = [];
    while (!this.atEnd()) {
      const c = this.peek();
      if (c === '?' && this.source[this.pos + 1] === '.') {
        this.pos += 2;
        keys.push(this.name());
      } else if (c === '.') {
        this.pos += 1;
        keys.push(this.name());
      } else if (c === '[') {
        keys.push(this.bracket());
      } else {
        this.fail(this.pos, `unexpected '${c}'; expected '.name', '[index]' or the closing }`);
      }
    }
    return keys;
  }

  /** `header.name...`, `header[name]...`: a named entry, then an optional path into its value. */
  keyed(kind: string, lookup: (ex: Exchange, name: string) => unknown): Evaluator {
    const c = this.peek();
    let name: string;
    if (c === '.') {
      this.pos += 1;
      name = this.name();
    } else if (c === '[') {
      name = String(this.bracket());
    } else {
      return this.fail(this.pos, `expected a name: \${${kind}.name} or \${${kind}[name]}`);
    }
    const rest = this.path();
    if (rest.length === 0) return (ex) => lookup(ex, name);
    const get = pathGetter(rest);
    // Header names may themselves contain dots (`${header.file.name}`): if navigating finds nothing,
    // the whole dotted text is tried as one name.
    const dotted = rest.every((k) => typeof k === 'string' && !k.includes('.')) ? [name, ...rest].join('.') : undefined;
    if (dotted === undefined) return (ex) => get(lookup(ex, name));
    return (ex) => {
      const v = get(lookup(ex, name));
      return v === undefined ? lookup(ex, dotted) : v;
    };
  }

  /** `(a, b)` with literal arguments; quotes around an argument are dropped. */
  args(min: number, max: number, usage: string): Array<{ value: string; at: number }> {
    const open = this.pos;
    if (this.peek() !== '(') this.fail(open, `expected '(' as in \${${usage}}`);
    const close = this.source.indexOf(')', open);
    if (close < 0 || close >= this.end) this.fail(open, `unclosed '('; expected ')' as in \${${usage}}`);
    const args: Array<{ value: string; at: number }> = [];
    let at = open + 1;
    for (const raw of this.source.slice(open + 1, close).split(',')) {
      const lead = raw.length - raw.trimStart().length;
      const value = raw.trim().replace(/^'(.*)'$|^"(.*)"$/, (_m, a?: string, b?: string) => a ?? b ?? '');
      args.push({ value, at: at + lead });
      at += raw.length + 1;
    }
    if (args.length === 1 && args[0]!.value === '') args.length = 0;
    if (args.length < min || args.length > max) {
      this.fail(open, `expected ${min === max ? min : `${min} to ${max}`} argument(s) as in \${${usage}}, found ${args.length}`);
    }
    this.pos = close + 1;
    return args;
  }

  type(arg: { value: string; at: number }): ConversionType {
    const t = arg.value.replace(/^java\.lang\./, '');
    if ((CONVERSION_TYPES as readonly string[]).includes(t)) return t as ConversionType;
    return this.fail(arg.at, `unknown type '${arg.value}'; expected one of ${CONVERSION_TYPES.join(', ')}`);
  }

  random(): Evaluator {
    const args = this.args(1, 2, 'random(min,max)');
    this.expectEnd();
    const nums = args.map((a) => {
      if (!/^-?\d+$/.test(a.value)) this.fail(a.at, `expected an integer, found '${a.value}'`);
      return Number(a.value);
    });
    const [min, max] = nums.length === 1 ? [0, nums[0]!] : [nums[0]!, nums[1]!];
    if (max <= min) this.fail(args[0]!.at, `random needs min < max, found min ${min} and max ${max}`);
    const span = max - min;
    // As in Camel: min included, max excluded.
    return () => min + Math.floor(Math.random() * span);
  }

  env(): Evaluator {
    const sep = this.peek();
    if (sep !== ':' && sep !== '.') this.fail(this.pos, 'expected ${env:NAME} or ${env.NAME}');
    this.pos += 1;
    const at = this.pos;
    const spec = this.text;
    this.pos = this.end;
    const colon = spec.indexOf(':');
    const name = (colon < 0 ? spec : spec.slice(0, colon)).trim();
    const fallback = colon < 0 ? undefined : spec.slice(colon + 1);
    if (name === '') this.fail(at, 'expected an environment variable name as in ${env:NAME}');
    return () => process.env[name] ?? fallback;
  }

  sys(): Evaluator {
    const sep = this.peek();
    if (sep !== ':' && sep !== '.') this.fail(this.pos, 'expected ${sys:name}');
    this.pos += 1;
    const at = this.pos;
    const name = this.text.trim();
    this.pos = this.end;
    const read = SYSTEM_PROPERTIES[name];
    if (!read) {
      this.fail(at, `unknown system property '${name}'; supported are ${Object.keys(SYSTEM_PROPERTIES).join(', ')} (use \${env:NAME} for environment variables)`);
    }
    return () => read();
  }

  /** `date:command[:pattern]` or `date-with-timezone:command:zone:pattern`. */
  date(withZone: boolean): Evaluator {
    const usage = withZone ? '${date-with-timezone:now:Europe/Paris:yyyy-MM-dd}' : '${date:now:yyyy-MM-dd}';
    if (this.peek() !== ':') this.fail(this.pos, `expected ':' and a command as in ${usage}`);
    this.pos += 1;
    const commandAt = this.pos;
    const rest = this.text;
    this.pos = this.end;
    let colon = rest.indexOf(':');
    const command = colon < 0 ? rest : rest.slice(0, colon);
    let zone: string | undefined;
    let patternAt = commandAt + (colon < 0 ? rest.length : colon + 1);
    let pattern = colon < 0 ? undefined : rest.slice(colon + 1);
    if (withZone) {
      colon = pattern === undefined ? -1 : pattern.indexOf(':');
      if (pattern === undefined || colon < 0) this.fail(patternAt, `expected a time zone and a pattern as in ${usage}`);
      zone = pattern.slice(0, colon).trim();
      patternAt += colon + 1;
      pattern = pattern.slice(colon + 1);
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: zone });
      } catch {
        this.fail(patternAt - colon - 1, `unknown time zone '${zone}'; use an IANA name such as UTC or Europe/Paris`);
      }
    }
    const source = this.dateSource(command, commandAt);
    if (pattern === undefined) {
      if (command === 'millis') return source;
      return (ex) => {
        const t = source(ex);
        return t === undefined ? undefined : new Date(t).toISOString();
      };
    }
    if (pattern.trim() === 'millis') return source;
    if (pattern === '') this.fail(patternAt, `empty date pattern; expected one such as ${usage}`);
    const format = compileDateFormat(pattern, (i, problem) => this.fail(patternAt + i, problem), zone);
    return (ex) => {
      const t = source(ex);
      return t === undefined ? undefined : format(t);
    };
  }

  dateSource(text: string, at: number): (ex: Exchange) => number | undefined {
    const m = /^(.*?)((?:[+-]\d+(?:ms|s|m|h|d)(?:\d+(?:ms|s|m|h|d))*)*)$/.exec(text.trim());
    const base = m![1]!;
    let offset = 0;
    for (const part of m![2]!.matchAll(/([+-])([^+-]+)/g)) offset += (part[1] === '-' ? -1 : 1) * parseDuration(part[2]!)!;
    const now = this.options.now ?? Date.now;
    let read: (ex: Exchange) => number | undefined;
    if (base === 'now' || base === 'millis') read = () => now();
    else if (base === 'exchangeCreated') read = (ex) => ex.created.getTime();
    else if (base === 'body') read = (ex) => toEpoch(ex.message.body);
    else if (base.startsWith('header.') && base.length > 7) {
      const name = base.slice(7);
      read = (ex) => toEpoch(ex.message.headers.get(name));
    } else if (base.startsWith('exchangeProperty.') && base.length > 17) {
      const name = base.slice(17);
      read = (ex) => toEpoch(ex.properties.get(name));
    } else {
      return this.fail(at, `unknown date command '${base}'; expected one of ${DATE_COMMANDS}`);
    }
    if (offset === 0) return read;
    return (ex) => {
      const t = read(ex);
      return t === undefined ? undefined : t + offset;
    };
  }
}
