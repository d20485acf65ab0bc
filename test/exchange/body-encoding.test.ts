import { expect } from 'chai';
import { decodeBody, encodeBody } from '../../lib/exchange/body-encoding.ts';

describe('body encoding', () => {
  it('encodes bytes as bytes, strings as UTF-8 text and other values as JSON; null and undefined as no body', () => {
    const bytes = Buffer.from([1, 2, 3]);
    expect(encodeBody(bytes)).to.deep.equal({ data: bytes, contentType: 'application/octet-stream' });
    const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    expect(encodeBody(view)).to.deep.equal({ data: Buffer.from([1, 2, 3]), contentType: 'application/octet-stream' });
    expect(encodeBody('héllo')).to.deep.equal({ data: Buffer.from('héllo', 'utf8'), contentType: 'text/plain; charset=utf-8' });
    expect(encodeBody({ id: 1 })).to.deep.equal({ data: Buffer.from('{"id":1}'), contentType: 'application/json' });
    expect(encodeBody(null)).to.equal(undefined);
    expect(encodeBody(undefined)).to.equal(undefined);
  });

  it('decodes JSON to a value (malformed JSON stays text), text, XML and forms to strings, anything else to a Buffer', () => {
    expect(decodeBody(Buffer.from('{"id":1}'), 'application/json; charset=utf-8')).to.deep.equal({ id: 1 });
    expect(decodeBody(Buffer.from('[1]'), 'application/problem+json')).to.deep.equal([1]);
    expect(decodeBody(Buffer.from('{oops'), 'Application/JSON')).to.equal('{oops');
    expect(decodeBody(Buffer.from('hi'), 'text/plain')).to.equal('hi');
    expect(decodeBody(Buffer.from('<a/>'), 'application/xml')).to.equal('<a/>');
    expect(decodeBody(Buffer.from('<feed/>'), 'application/atom+xml')).to.equal('<feed/>');
    expect(decodeBody(Buffer.from('a=1&b=2'), 'application/x-www-form-urlencoded')).to.equal('a=1&b=2');
    const other = decodeBody(Buffer.from([0, 1]), 'application/octet-stream');
    expect(Buffer.isBuffer(other) && [...other]).to.deep.equal([0, 1]);
    expect(Buffer.isBuffer(decodeBody(Buffer.from('x'), undefined))).to.equal(true);
    expect(decodeBody(Buffer.alloc(0), 'text/plain')).to.equal('');
  });
});
