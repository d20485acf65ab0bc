import { expect } from 'chai';
import { Exchange, Headers } from '../../lib/exchange/index.ts';

describe('Exchange and Headers', () => {
  it('looks headers up without regard to case, keeping the first spelling', () => {
    const h = new Headers({ 'Content-Type': 'text/plain' });
    expect(h.get('content-type')).to.equal('text/plain');
    h.set('CONTENT-TYPE', 'application/json');
    expect(h.toObject()).to.deep.equal({ 'Content-Type': 'application/json' });
    expect(h.delete('content-TYPE')).to.equal(true);
    expect(h.size).to.equal(0);
  });

  it('has an id, a created time, a message, properties and no exception when new', () => {
    const a = new Exchange({ body: 'x', headers: { a: 1 } });
    const b = new Exchange();
    expect(a.id).to.be.a('string').and.not.equal(b.id);
    expect(a.created).to.be.instanceOf(Date);
    expect(a.body).to.equal('x');
    expect(a.headers.get('A')).to.equal(1);
    expect(a.failed).to.equal(false);
  });

  it('copies with a new id and independent headers and properties', () => {
    const a = new Exchange({ body: { n: 1 }, headers: { h: 1 }, routeId: 'r' });
    a.setProperty('p', 1);
    const c = a.copy();
    c.headers.set('h', 2);
    c.setProperty('p', 2);
    expect(c.id).not.to.equal(a.id);
    expect(a.headers.get('h')).to.equal(1);
    expect(a.getProperty('p')).to.equal(1);
    expect(c.routeId).to.equal('r');
  });
});
