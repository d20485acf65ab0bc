import { expect } from 'chai';
import { maskUri, maskSecrets, maskConfig, isSensitiveKey, looksLikeCredential, maskUrlValue } from '../../lib/uri/mask.ts';

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

describe('masking secrets: passwords with unencoded special characters (issue 12.5)', () => {
  for (const password of ['pa#ss', 'pa/ss', 'pa?ss', 'pa ss', 'p@ss', 'a@b/c?d#e']) {
    it(`masks the whole AMQP password ${JSON.stringify(password)}, leaving no tail of it`, () => {
      const line = `Startup failed: The RabbitMQ URL amqp://guest:${password}@rabbit.local:5672/vhost cannot be parsed`;
      const masked = maskSecrets(line);
      expect(masked).to.equal('Startup failed: The RabbitMQ URL amqp://guest:xxxxxx@rabbit.local:5672/vhost cannot be parsed');
      expect(maskUri(`amqp://guest:${password}@rabbit.local`)).to.equal('amqp://guest:xxxxxx@rabbit.local');
    });
  }

  it('masks a URL given as a value up to its last @, whatever the password holds', () => {
    expect(maskUrlValue('amqp://guest:a@b/c?d#e f@rabbit.local:5672/vhost')).to.equal('amqp://guest:xxxxxx@rabbit.local:5672/vhost');
    expect(maskUrlValue('amqp://rabbit:5672/vhost')).to.equal('amqp://rabbit:5672/vhost');
  });

  it('masks each URI of a line on its own, and leaves a later e-mail address alone', () => {
    expect(maskSecrets('amqp://u:p@h1 failed, then http://a:b@h2/x; mail bob@example.com')).to.equal(
      'amqp://u:xxxxxx@h1 failed, then http://a:xxxxxx@h2/x; mail bob@example.com',
    );
  });

  it('leaves host:port URIs without user-info and the product\'s example URL alone', () => {
    expect(maskUri('amqp://rabbit:5672/vhost')).to.equal('amqp://rabbit:5672/vhost');
    expect(maskSecrets('expected amqp://user:password@host:5672/vhost')).to.equal('expected amqp://user:password@host:5672/vhost');
  });
});

describe('masking secrets: RAW(...) values (issue 12.5)', () => {
  for (const secret of ['a&b', 'a#b', 'a b', 'x&y#z w', 'p+q=r']) {
    it(`masks RAW(${secret}) whole and keeps the next option`, () => {
      expect(maskUri(`http-poll:http://api/x?password=RAW(${secret})&delay=5s`)).to.equal('http-poll:http://api/x?password=xxxxxx&delay=5s');
      expect(maskSecrets(`Poll of http://api/x?token=RAW(${secret}) failed; next in 2s`)).to.equal('Poll of http://api/x?token=xxxxxx failed; next in 2s');
    });
  }

  it('masks a plain value holding # (the option parser keeps it in the value)', () => {
    expect(maskUri('http://api/x?password=ab#cd&delay=1')).to.equal('http://api/x?password=xxxxxx&delay=1');
  });
});

describe('masking secrets: names the major APIs use (issue 17.4)', () => {
  const secretNames = [
    'auth', 'jwt', 'pwd', 'passwd', 'sessionid', 'sessionId', 'JSESSIONID', 'PHPSESSID', 'code', 'sig', 'X-Amz-Signature',
    'X-Amz-Credential', 'X-Amz-Security-Token', 'X-Goog-Signature', 'X-Goog-Credential', 'access_token', 'refresh_token',
    'id_token', 'client_secret', 'oauth_token', 'X-Auth-Token', 'X-Api-Key', 'Ocp-Apim-Subscription-Key', 'x-functions-key',
    'Proxy-Authorization', 'Cookie', 'private_key', 'AccountKey', 'ticket',
  ];
  for (const name of secretNames) {
    it(`masks the query value of ${name}`, () => {
      expect(isSensitiveKey(name)).to.equal(true);
      expect(maskUri(`https://api.example/x?${name}=v4lue&page=2`)).to.equal(`https://api.example/x?${name}=xxxxxx&page=2`);
    });
  }

  it('leaves ordinary names alone', () => {
    for (const name of ['author', 'keyspace', 'se', 'sv', 'page', 'period', 'tokenizer', 'max_tokens', 'passenger', 'bypass', 'offset', 'routingKey', 'partition_key', 'statusCode', 'errorCode', 'exit-code']) {
      expect(isSensitiveKey(name), name).to.equal(false);
    }
  });

  it('masks the token of a Telegram bot path, keeping the bot id', () => {
    expect(maskUri('https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/getUpdates?offset=3')).to.equal(
      'https://api.telegram.org/bot123456789:xxxxxx/getUpdates?offset=3',
    );
  });

  it('masks values that look like credentials whatever their name: JWTs, known token formats, long random strings', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    expect(maskUri(`https://api/x?q=${jwt}&page=1`)).to.equal('https://api/x?q=xxxxxx&page=1');
    expect(maskSecrets(`rejected ${jwt} at login`)).to.equal('rejected xxxxxx at login');
    expect(maskSecrets('got ghp_abcdefghijklmnopqrstuvwxyz0123456789 and xoxb-1234-5678-abcdefghij')).to.equal('got xxxxxx and xxxxxx');
    expect(maskSecrets('https://hooks.example/services/sk9Fh3KqP2xLm7Vt8RwZ4cYb1NjD6gHs/send')).to.equal('https://hooks.example/services/xxxxxx/send');
    expect(looksLikeCredential('AKIAIOSFODNN7EXAMPLE')).to.equal(true);
  });

  it('leaves ids, digests, identifiers and paths alone', () => {
    for (const text of [
      'exchange 6f1c0b2e-4b5d-4e6f-9a8b-0123456789ab-42',
      'commit 3f2a9c1e4b5d4e6f9a8b0123456789abcdef0123',
      'KubernetesClusterServiceLeaseDuration2024',
      'at file:///work/lib/components/http/target-endpoint.ts:44:12',
      'route polling-to-queue-route-2 on member r12345-member-3',
    ]) {
      expect(maskSecrets(text)).to.equal(text);
    }
  });

  it('masks YAML and header lines naming a secret, whole', () => {
    expect(maskSecrets('users:\n- name: u\n  user:\n    token: abc\n    password: "p w"\n')).to.equal(
      'users:\n- name: u\n  user:\n    token: xxxxxx\n    password: xxxxxx\n',
    );
    expect(maskSecrets('Authorization: Digest username="x", response="abc"')).to.equal('Authorization: xxxxxx');
    expect(maskSecrets('Cookie: session=a; theme=b')).to.equal('Cookie: xxxxxx');
  });
});

describe('masking never touches the product\'s own text (issue 17)', () => {
  for (const text of [
    '--properties: line 3 of app.properties is not key=value (comments start with #)',
    '--properties: cannot read "x" (ENOENT); give a file of key=value lines',
    'DROMEDARY_CLUSTER_LABELS: "app" is not key=value',
    'the environment variable TG_TOKEN of the placeholder {{env:TG_TOKEN}} is not set. Set TG_TOKEN, or give a default: {{env:TG_TOKEN:value}}',
    'process exited with exit code=1',
    'Token refresh failed; Basic setup done',
  ]) {
    it(`keeps ${JSON.stringify(text.slice(0, 50))}`, () => expect(maskSecrets(text)).to.equal(text));
  }
});
