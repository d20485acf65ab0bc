import { expect } from 'chai';
import { ResolveEndpointError } from '../../lib/errors.ts';
import { parseUri } from '../../lib/uri/parse.ts';
import { hidePlaceholderValues, indexOutsidePlaceholders, placeholdersIn, PropertyResolver } from '../../lib/uri/placeholders.ts';

describe('property placeholders', () => {
  const env = { TG_TOKEN: '123456:AAF-secret-token', 'EMPTY': '', APP_QUEUE_NAME: 'orders' };

  it('resolves {{key}}, {{key:default}}, {{env:NAME}} and {{env:NAME:default}}, recording each value', () => {
    const r = new PropertyResolver({ host: '127.0.0.1', port: 8081 }, env);
    const out = r.resolve('http-poll:http://{{host}}:{{port}}/bot{{env:TG_TOKEN}}/getUpdates?limit={{limit:100}}&x={{env:NOPE:d}}');
    expect(out.text).to.equal('http-poll:http://127.0.0.1:8081/bot123456:AAF-secret-token/getUpdates?limit=100&x=d');
    expect(out.placeholders.map((p) => p.text)).to.deep.equal(['{{host}}', '{{port}}', '{{env:TG_TOKEN}}', '{{limit:100}}', '{{env:NOPE:d}}']);
    expect(out.placeholders[2]!.value).to.equal('123456:AAF-secret-token');
  });

  it('treats an empty environment variable as unset, and tries the upper-case, underscore form of the name like Camel', () => {
    const r = new PropertyResolver({}, env);
    expect(r.resolve('x:{{env:EMPTY:fallback}}').text).to.equal('x:fallback');
    expect(r.resolve('x:{{env:app.queue-name}}').text).to.equal('x:orders');
  });

  it('resolves placeholders inside property values, and refuses a cycle naming it', () => {
    const r = new PropertyResolver({ base: 'http://{{host}}:{{port:80}}', host: 'h', a: '{{b}}', b: '{{a}}' }, env);
    const out = r.resolve('http:{{base}}/x');
    expect(out.text).to.equal('http:http://h:80/x');
    expect(out.placeholders.map((p) => p.text)).to.include.members(['{{base}}', '{{host}}', '{{port:80}}']);
    expect(() => r.resolve('log:{{a}}')).to.throw(ResolveEndpointError, 'circular property placeholder: {{a}} → {{b}} → {{a}}');
  });

  it('fails a missing key with the key, the URI as written (masked) and the fix', () => {
    const r = new PropertyResolver({ other: 'x' }, env);
    expect(() => r.resolve('http://u:pw@h/{{env:DROMEDARY_NOT_SET}}')).to.throw(ResolveEndpointError).that.satisfies((e: Error) => {
      expect(e.message).to.contain('Failed to resolve endpoint: http://u:xxxxxx@h/{{env:DROMEDARY_NOT_SET}}');
      expect(e.message).to.contain('the environment variable DROMEDARY_NOT_SET of the placeholder {{env:DROMEDARY_NOT_SET}} is not set');
      expect(e.message).to.contain('Set DROMEDARY_NOT_SET, or give a default: {{env:DROMEDARY_NOT_SET:value}}');
      expect(e.message).to.not.contain('pw');
      return true;
    });
    expect(() => r.resolve('timer:{{name}}')).to.throw(ResolveEndpointError).that.satisfies((e: Error) => {
      expect(e.message).to.contain('the property "name" of the placeholder {{name}} is not defined');
      expect(e.message).to.contain("new Context({ properties: { 'name': … } }) (defined: other)");
      expect(e.message).to.contain('give a default: {{name:value}}');
      return true;
    });
  });

  it('refuses {{sys:…}}, optional {{?key}}, an empty key and an unclosed placeholder, with what to write instead', () => {
    const r = new PropertyResolver({}, env);
    expect(() => r.resolve('log:{{sys:user.home}}')).to.throw(ResolveEndpointError, 'Node.js has no system properties');
    expect(() => r.resolve('log:{{?opt}}')).to.throw(ResolveEndpointError, 'optional placeholders');
    expect(() => r.resolve('log:{{}}')).to.throw(ResolveEndpointError, 'names no property');
    expect(() => r.resolve('log:{{env:}}')).to.throw(ResolveEndpointError, 'names no environment variable');
    expect(() => r.resolve('log:{{open')).to.throw(ResolveEndpointError, 'has no closing "}}"');
  });

  it('parses the resolved URI, masks the URI as written, and keeps resolved values out of parse errors', () => {
    const r = new PropertyResolver({ secret: 'p4ss%zz' }, env);
    const parsed = parseUri('timer:{{env:APP_QUEUE_NAME}}?period={{p:500}}', r);
    expect(parsed).to.include({ template: 'timer:{{env:APP_QUEUE_NAME}}?period={{p:500}}', raw: 'timer:orders?period=500', masked: 'timer:{{env:APP_QUEUE_NAME}}?period={{p:500}}', path: 'orders' });
    expect(parsed.params).to.deep.equal({ period: '500' });
    expect(() => parseUri('log:x?name={{secret}}', r)).to.throw(ResolveEndpointError).that.satisfies((e: Error) => {
      expect(e.message).to.contain('invalid percent-encoding').and.contain('{{secret}}').and.not.contain('p4ss');
      expect(e.stack).to.not.contain('p4ss');
      return true;
    });
  });

  it('finds placeholders and separators outside them, and hides values longest first', () => {
    expect(placeholdersIn('a{{x}}b{{env:Y:1}}c{{open')).to.deep.equal(['{{x}}', '{{env:Y:1}}']);
    expect(indexOutsidePlaceholders('{{env:LOCK:tg}}:timer:t', ':')).to.equal(15);
    expect(indexOutsidePlaceholders('{{a}}', ':')).to.equal(-1);
    expect(hidePlaceholderValues('get abcdef and abc', [{ text: '{{short}}', value: 'abc' }, { text: '{{long}}', value: 'abcdef' }])).to.equal('get {{long}} and {{short}}');
  });
});
