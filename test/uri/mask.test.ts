import { expect } from 'chai';
import { maskUri, maskSecrets, maskConfig, isSensitiveKey } from '../../lib/uri/mask.ts';

describe('masking secrets', () => {
  it('masks the password of user-info, keeping the user', () => {
    expect(maskUri('amqp://guest:s3cret@localhost:5672/vhost')).to.equal('amqp://guest:xxxxxx@localhost:5672/vhost');
  });

  it('masks values of password, token, secret and key-like query options, and only those', () => {
    const masked = maskUri('http-poll:http://api/x?password=a&accessToken=b&clientSecret=c&apiKey=d&api_key=e&key=f&period=5&keyspace=g');
    expect(masked).to.equal(
      'http-poll:http://api/x?password=xxxxxx&accessToken=xxxxxx&clientSecret=xxxxxx&apiKey=xxxxxx&api_key=xxxxxx&key=xxxxxx&period=5&keyspace=g',
    );
  });

  it('masks free text: URIs, JSON fields, NAME=value pairs and Authorization values', () => {
    const text = 'connect amqp://u:p@h failed; {"password":"x1","user":"bob"} API_TOKEN=zzz Authorization: Bearer abc.def';
    const masked = maskSecrets(text);
    for (const secret of ['u:p@', '"x1"', 'zzz', 'abc.def']) expect(masked).not.to.contain(secret);
    expect(masked).to.contain('"user":"bob"');
  });

  it('masks sensitive keys in config objects, recursively', () => {
    expect(maskConfig({ url: 'amqp://a:b@h', nested: { token: 't', name: 'n' } })).to.deep.equal({
      url: 'amqp://a:xxxxxx@h',
      nested: { token: 'xxxxxx', name: 'n' },
    });
  });

  it('recognises sensitive names case-insensitively', () => {
    expect(isSensitiveKey('PASSWORD')).to.equal(true);
    expect(isSensitiveKey('x-api-key')).to.equal(true);
    expect(isSensitiveKey('period')).to.equal(false);
  });
});
