import { expect } from 'chai';
import { compilePredicate, SimpleSyntaxError } from '../../lib/simple/index.ts';
import { Exchange } from '../../lib/exchange/index.ts';

const test = (predicate: string, body?: unknown, headers?: Record<string, unknown>) =>
  compilePredicate(predicate)(new Exchange({ body, headers }));

describe('Simple predicates', () => {
  it('compares with == and != using numbers when both sides are numeric', () => {
    expect(test("${header.type} == 'order'", null, { type: 'order' })).to.equal(true);
    expect(test("${header.type} != 'order'", null, { type: 'order' })).to.equal(false);
    expect(test('${header.n} == 5', null, { n: '5' })).to.equal(true);
    expect(test('${header.n} == 5.0', null, { n: 5 })).to.equal(true);
    expect(test('${header.flag} == true', null, { flag: true })).to.equal(true);
    expect(test('${header.none} == null')).to.equal(true);
    expect(test('${body} == ${header.same}', 'x', { same: 'x' })).to.equal(true);
  });

  it('orders numbers numerically and text lexically', () => {
    expect(test('${header.n} > 5', null, { n: '10' })).to.equal(true);
    expect(test('${header.n} < 5', null, { n: '10' })).to.equal(false);
    expect(test('${header.n} >= 10', null, { n: 10 })).to.equal(true);
    expect(test('${header.n} <= 9', null, { n: 10 })).to.equal(false);
    expect(test("${body} > 'apple'", 'banana')).to.equal(true);
    expect(test('${header.missing} > 1')).to.equal(false);
  });

  it('supports contains, regex, in, startsWith, endsWith and their negations', () => {
    expect(test("${body} contains 'lo W'", 'Hello World')).to.equal(true);
    expect(test("${body} !contains 'xyz'", 'Hello')).to.equal(true);
    expect(test("${body} not contains 'Hell'", 'Hello')).to.equal(false);
    expect(test("${body.tags} contains 'b'", { tags: ['a', 'b'] })).to.equal(true);
    expect(test("${body} regex '\\d{3}-\\d{4}'", '555-1234')).to.equal(true);
    expect(test("${body} regex '\\d{3}'", 'x555')).to.equal(false);
    expect(test("${body} !regex '[a-z]+'", '123')).to.equal(true);
    expect(test("${header.c} in 'red,green'", null, { c: 'green' })).to.equal(true);
    expect(test("${header.c} !in 'red,green'", null, { c: 'blue' })).to.equal(true);
    expect(test("${body} startsWith 'He'", 'Hello')).to.equal(true);
    expect(test("${body} endsWith 'lo'", 'Hello')).to.equal(true);
    expect(test("${body} !endsWith 'lo'", 'Hello')).to.equal(false);
  });

  it('combines with && (binding tighter) and ||, and parentheses', () => {
    expect(test("${header.a} == 1 || ${header.b} == 1 && ${header.c} == 1", null, { a: 1, b: 0, c: 0 })).to.equal(true);
    expect(test("(${header.a} == 1 || ${header.b} == 1) && ${header.c} == 1", null, { a: 1, b: 0, c: 0 })).to.equal(false);
    expect(test("${header.a} == 1 and ${header.b} == 2", null, { a: 1, b: 2 })).to.equal(true);
    expect(test("${header.a} == 2 or ${header.b} == 2", null, { a: 1, b: 2 })).to.equal(true);
  });

  it('treats a lone value as its truth', () => {
    expect(test('${header.flag}', null, { flag: 'true' })).to.equal(true);
    expect(test('${header.flag}', null, { flag: 'false' })).to.equal(false);
    expect(test('${header.flag}')).to.equal(false);
    expect(test('true')).to.equal(true);
    expect(test('false')).to.equal(false);
  });

  it('interpolates ${...} inside quoted right-hand sides', () => {
    expect(test("${body} == 'id-${header.n}'", 'id-7', { n: 7 })).to.equal(true);
  });

  for (const [predicate, problem] of [
    ['${header.a} ==', /expected a value after ==/],
    ["${header.a} == 'x", /unbalanced quote/],
    ['${header.a} == 1 &&', /expected a condition after &&/],
    ['(${header.a} == 1', /unbalanced \(/],
    ["${body} regex '[a-'", /invalid regular expression/],
    ['order', /not a condition/],
    ['${header.a} == 1 ${header.b}', /unexpected/],
  ] as const) {
    it(`rejects ${JSON.stringify(predicate)} at compile time`, () => {
      expect(() => compilePredicate(predicate)).to.throw(SimpleSyntaxError, problem);
    });
  }
});
