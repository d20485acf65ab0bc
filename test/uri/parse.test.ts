import { expect } from 'chai';
import { parseUri, formatQuery } from '../../lib/uri/parse.ts';
import { ResolveEndpointError } from '../../lib/errors.ts';

describe('parseUri', () => {
  it('keeps the delegate of a nested master URI in the path and the query apart', () => {
    const u = parseUri('master:lock1:timer:clock?period=500');
    expect(u.scheme).to.equal('master');
    expect(u.rawPath).to.equal('lock1:timer:clock');
    expect(u.rawQuery).to.equal('period=500');
    expect(u.params).to.deep.equal({ period: '500' });
  });

  it('accepts scheme://path as well as scheme:path', () => {
    expect(parseUri('timer://tick?period=5').path).to.equal('tick');
    expect(parseUri('timer:tick').path).to.equal('tick');
    expect(parseUri('TIMER:tick').scheme).to.equal('timer');
  });

  it('percent-decodes the path and the query, and reads + as a space', () => {
    const u = parseUri('log:my%20log?a=x%26y&b=one+two&c=%2B');
    expect(u.path).to.equal('my log');
    expect(u.rawPath).to.equal('my%20log');
    expect(u.params).to.deep.equal({ a: 'x&y', b: 'one two', c: '+' });
  });

  it('keeps RAW(...) values verbatim, even with & and + inside', () => {
    const u = parseUri('amqp:queue:q?password=RAW(se+cr&et)&prefetch=5');
    expect(u.params).to.deep.equal({ password: 'se+cr&et', prefetch: '5' });
  });

  it('treats a valueless option as an empty string', () => {
    expect(parseUri('log:x?showAll').params).to.deep.equal({ showAll: '' });
  });

  for (const [uri, why] of [
    ['', /empty/],
    ['timer', /no scheme/],
    [':tick', /no scheme/],
    ['1timer:tick', /not a valid scheme/],
    ['tim er:tick', /not a valid scheme/],
    ['timer:ti ck', /whitespace/],
    ['timer:tick?period=1&period=2', /more than once/],
    ['timer:tick?period=%zz', /invalid percent-encoding/],
    ['timer:tick?=5', /has no name/],
  ] as const) {
    it(`rejects the malformed URI ${JSON.stringify(uri)} with a clear error`, () => {
      expect(() => parseUri(uri)).to.throw(ResolveEndpointError, why);
    });
  }

  it('masks secrets in the URI it reports in errors', () => {
    expect(() => parseUri('http://bob:hunter2@host/x?token=abc&a=1&a=2')).to.throw(ResolveEndpointError).that.satisfies((e: Error) => {
      expect(e.message).not.to.contain('hunter2');
      expect(e.message).not.to.contain('abc');
      return true;
    });
  });

  it('formats a query back with percent-encoding', () => {
    expect(formatQuery({ a: 'x y', b: 1, c: undefined })).to.equal('a=x%20y&b=1');
  });
});
