import { expect } from 'chai';
import { resolveOptions } from '../../lib/uri/options.ts';
import { parseDuration, formatDuration } from '../../lib/uri/duration.ts';
import { ResolveEndpointError } from '../../lib/errors.ts';

const schema = {
  period: { type: 'duration', default: 1000 },
  count: { type: 'integer', default: 0, min: 0 },
  ratio: { type: 'number' },
  fixedRate: { type: 'boolean', default: false },
  level: { type: 'enum', values: ['info', 'debug'], default: 'info' },
  name: { type: 'string' },
} as const;

describe('resolveOptions', () => {
  it('applies defaults and coerces each type', () => {
    const v = resolveOptions('x:y', 'x', schema, { period: '5s', count: '3', ratio: '0.5', fixedRate: 'true', level: 'DEBUG', name: 'n' });
    expect(v).to.deep.equal({ period: 5000, count: 3, ratio: 0.5, fixedRate: true, level: 'debug', name: 'n' });
    expect(resolveOptions('x:y', 'x', schema, {})).to.deep.equal({ period: 1000, count: 0, ratio: undefined, fixedRate: false, level: 'info', name: undefined });
  });

  it('fails on unknown options in the manner of Camel, listing the valid ones and a likely fix', () => {
    expect(() => resolveOptions('timer://tick?periodd=1000', 'timer', schema, { periodd: '1000' }))
      .to.throw(ResolveEndpointError)
      .with.property('message')
      .that.satisfies((m: string) => {
        expect(m).to.contain('Failed to resolve endpoint: timer://tick?periodd=1000 due to: There are 1 parameters that couldn\'t be set on the endpoint');
        expect(m).to.contain('Unknown parameters=[{periodd=1000}]');
        expect(m).to.contain('Did you mean "period"');
        expect(m).to.contain('Valid options for timer: count, fixedRate, level, name, period, ratio');
        return true;
      });
  });

  it('masks the value of an unknown secret-looking option', () => {
    expect(() => resolveOptions('x:y', 'x', schema, { password: 'hunter2' })).to.throw(/password=xxxxxx/);
  });

  for (const [name, value, expected] of [
    ['count', '1.5', /whole number/],
    ['count', '-1', />= 0/],
    ['ratio', 'abc', /a number/],
    ['fixedRate', 'yes', /true or false/],
    ['level', 'loud', /one of info, debug/],
    ['period', 'soon', /duration/],
  ] as const) {
    it(`rejects ${name}=${value} naming the option and what it expects`, () => {
      expect(() => resolveOptions('x:y', 'x', schema, { [name]: value })).to.throw(ResolveEndpointError, expected).and.to.match(new RegExp(name));
    });
  }
});

describe('durations', () => {
  it('parses plain milliseconds and units', () => {
    expect(parseDuration('500')).to.equal(500);
    expect(parseDuration('500ms')).to.equal(500);
    expect(parseDuration('5s')).to.equal(5000);
    expect(parseDuration('1m30s')).to.equal(90_000);
    expect(parseDuration('1.5h')).to.equal(5_400_000);
    expect(parseDuration('-1')).to.equal(-1);
    expect(parseDuration('5 apples')).to.equal(undefined);
    expect(parseDuration('')).to.equal(undefined);
  });

  it('formats for messages', () => {
    expect(formatDuration(250)).to.equal('250ms');
    expect(formatDuration(1500)).to.equal('1.5s');
  });
});
