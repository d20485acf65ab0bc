import { expect } from 'chai';
import { compileExpression, SimpleSyntaxError } from '../../lib/simple/index.ts';
import { Exchange } from '../../lib/exchange/index.ts';

function ex(body?: unknown, headers?: Record<string, unknown>) {
  const e = new Exchange({ body, headers, routeId: 'r1' });
  e.setProperty('prop', { deep: [10, 20] });
  return e;
}

const evaluate = (template: string, exchange = ex()) => compileExpression(template)(exchange);

describe('Simple expressions', () => {
  it('returns plain text as is, and a lone ${...} as the raw value', () => {
    expect(evaluate('hello')).to.equal('hello');
    expect(evaluate('${body}', ex({ a: 1 }))).to.deep.equal({ a: 1 });
    expect(evaluate('${body}', ex(42))).to.equal(42);
    expect(evaluate('${body}', ex(undefined))).to.equal(undefined);
  });

  it('splices string forms into mixed text: objects as JSON, null and undefined as empty', () => {
    expect(evaluate('got ${body}!', ex({ a: [1] }))).to.equal('got {"a":[1]}!');
    expect(evaluate('[${header.missing}]')).to.equal('[]');
    expect(evaluate('${body} and ${body}', ex('x'))).to.equal('x and x');
  });

  it('navigates body paths safely', () => {
    const body = { order: { lines: [{ sku: 'A1' }, { sku: 'B2' }] } };
    expect(evaluate('${body.order.lines[1].sku}', ex(body))).to.equal('B2');
    expect(evaluate('${in.body.order.lines[0].sku}', ex(body))).to.equal('A1');
    expect(evaluate('${body.nope.deeper[3]}', ex(body))).to.equal(undefined);
    expect(evaluate('${body.order.lines[9].sku}', ex(body))).to.equal(undefined);
  });

  it('converts with bodyAs and headerAs', () => {
    expect(evaluate('${bodyAs(String)}', ex(12))).to.equal('12');
    expect(evaluate('${bodyAs(Number)}', ex('12.5'))).to.equal(12.5);
    expect(evaluate('${bodyAs(Boolean)}', ex('true'))).to.equal(true);
  });

  it('reads headers case-insensitively, including dashed names', () => {
    const e = ex(undefined, { 'Content-Type': 'text/plain', Kind: 'x' });
    expect(evaluate('${header.kind}', e)).to.equal('x');
    expect(evaluate('${headers.KIND}', e)).to.equal('x');
    expect(evaluate('${header[content-type]}', e)).to.equal('text/plain');
    expect(evaluate('${header.Content-Type}', e)).to.equal('text/plain');
  });

  it('reads exchange properties, ids and the route id', () => {
    const e = ex();
    expect(evaluate('${exchangeProperty.prop.deep[1]}', e)).to.equal(20);
    expect(evaluate('${exchangeId}', e)).to.equal(e.id);
    expect(evaluate('${id}', e)).to.equal(e.id);
    expect(evaluate('${routeId}', e)).to.equal('r1');
  });

  it('formats dates with Java SimpleDateFormat patterns', () => {
    const fixed = Date.UTC(2026, 10, 23, 7, 5, 9, 42);
    const at = (pattern: string) => compileExpression(`\${date-with-timezone:now:UTC:${pattern}}`, { now: () => fixed })(ex());
    expect(at("yyyy-MM-dd'T'HH:mm:ss.SSS")).to.equal('2026-11-23T07:05:09.042');
    expect(at('yy/M/d H:m:s')).to.equal('26/11/23 7:5:9');
    expect(at("hh 'o''clock' a")).to.equal("07 o'clock AM");
    expect(at('EEE')).to.equal('Mon');
    expect(compileExpression('${date:now:millis}', { now: () => fixed })(ex())).to.satisfy((v: unknown) => Number(v) === fixed || String(v) === String(fixed));
  });

  it('reads environment variables and the exception', () => {
    process.env.DROMEDARY_SIMPLE_TEST = 'from-env';
    expect(evaluate('${env:DROMEDARY_SIMPLE_TEST}')).to.equal('from-env');
    expect(evaluate('${env.DROMEDARY_SIMPLE_TEST}')).to.equal('from-env');
    const e = ex();
    e.exception = new TypeError('bad thing');
    expect(evaluate('${exception.message}', e)).to.equal('bad thing');
  });

  it('makes random numbers in range', () => {
    for (let i = 0; i < 50; i += 1) {
      const n = evaluate('${random(3,5)}') as number;
      expect(n).to.be.within(3, 4);
      expect(evaluate('${random(2)}') as number).to.be.within(0, 1);
    }
  });

  it('keeps \\${ as a literal', () => {
    expect(evaluate('cost: \\${body}', ex(1))).to.equal('cost: ${body}');
  });

  for (const [template, problem] of [
    ['${body', /unterminated \$\{/],
    ['${}', /empty/],
    ['${nosuchthing}', /body/],
    ['${bodyAs(Nope)}', /Nope/],
    ['${date:now:yyyy-QQ}', /Q/],
    ['${random(a,b)}', /random/],
  ] as const) {
    it(`rejects ${template} at compile time with the position`, () => {
      expect(() => compileExpression(template)).to.throw(SimpleSyntaxError, problem).and.to.match(/at position \d+/);
    });
  }
});
