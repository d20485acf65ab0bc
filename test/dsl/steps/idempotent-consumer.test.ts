import { expect } from 'chai';
import { Context } from '../../../lib/engine/context.ts';
import { RouteBuildError } from '../../../lib/errors.ts';
import { Exchange, ExchangeProperty } from '../../../lib/exchange/index.ts';
import { MemoryIdempotentRepository, type IdempotentRepository } from '../../../lib/dsl/steps/idempotent-repository.ts';
import { NoMessageIdError } from '../../../lib/dsl/steps/idempotent-consumer.ts';
import { startContextStoppedAfterEach } from '../../support/context.ts';
import { waitFor } from '../../support/wait.ts';

/** A repository whose every answer is a promise, as a Redis or database one would be; it records the calls. */
class AsyncRepository implements IdempotentRepository {
  readonly keys = new Set<string>();
  readonly calls: string[] = [];
  async add(key: string) {
    this.calls.push(`add ${key}`);
    await new Promise((resolve) => setImmediate(resolve));
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    return true;
  }
  async contains(key: string) {
    this.calls.push(`contains ${key}`);
    return this.keys.has(key);
  }
  async remove(key: string) {
    this.calls.push(`remove ${key}`);
    return this.keys.delete(key);
  }
  async confirm(key: string) {
    this.calls.push(`confirm ${key}`);
    return true;
  }
}

describe('idempotentConsumer', () => {
  const start = startContextStoppedAfterEach();

  it('runs its block once per key; a duplicate is marked CamelDuplicateMessage, skips the block and continues after end()', async () => {
    const processed: unknown[] = [];
    const after: unknown[] = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .idempotentConsumer('${header.id}')
        .process((ex) => void processed.push(ex.body))
        .end()
        .process((ex) => void after.push(ex.body)),
    );
    const results = [];
    for (const [id, body] of [['a', 1], ['b', 2], ['a', 3]] as const) {
      results.push(await template.send('direct:in', new Exchange({ body, headers: { id } })));
    }
    expect(processed).to.deep.equal([1, 2]);
    expect(after).to.deep.equal([1, 2, 3]);
    expect(results.map((ex) => ex.getProperty(ExchangeProperty.DuplicateMessage))).to.deep.equal([undefined, undefined, true]);
    expect(results.every((ex) => ex.exception === undefined)).to.equal(true);
  });

  it('with skipDuplicate: false a duplicate runs the block, marked, so the block can route it', async () => {
    const seen: unknown[] = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .idempotentConsumer((ex) => ex.headers.get('id'), { skipDuplicate: false })
        .process((ex) => void seen.push([ex.body, ex.getProperty(ExchangeProperty.DuplicateMessage) ?? false]))
        .end(),
    );
    await template.send('direct:in', new Exchange({ body: 1, headers: { id: 7 } }));
    await template.send('direct:in', new Exchange({ body: 2, headers: { id: 7 } }));
    expect(seen).to.deep.equal([
      [1, false],
      [2, true],
    ]);
  });

  it('removes the key of a failed exchange, so its redelivery is processed and not taken for a duplicate', async () => {
    let attempts = 0;
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .idempotentConsumer('${header.id}')
        .process(() => {
          attempts += 1;
          if (attempts === 1) throw new Error('downstream unavailable');
        })
        .end(),
    );
    const first = await template.send('direct:in', new Exchange({ headers: { id: 'k' } }));
    expect(first.exception?.message).to.equal('downstream unavailable');
    const redelivery = await template.send('direct:in', new Exchange({ headers: { id: 'k' } }));
    expect(redelivery.exception).to.equal(undefined);
    expect(redelivery.getProperty(ExchangeProperty.DuplicateMessage)).to.equal(undefined);
    expect(attempts).to.equal(2);
    const third = await template.send('direct:in', new Exchange({ headers: { id: 'k' } }));
    expect(third.getProperty(ExchangeProperty.DuplicateMessage)).to.equal(true);
    expect(attempts).to.equal(2);
  });

  it('with removeOnFailure: false a failed key stays, and its redelivery is skipped as a duplicate', async () => {
    let attempts = 0;
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .idempotentConsumer('${header.id}', { removeOnFailure: false })
        .process(() => {
          attempts += 1;
          throw new Error('always fails');
        })
        .end(),
    );
    expect((await template.send('direct:in', new Exchange({ headers: { id: 'k' } }))).exception?.message).to.equal('always fails');
    const redelivery = await template.send('direct:in', new Exchange({ headers: { id: 'k' } }));
    expect(redelivery.getProperty(ExchangeProperty.DuplicateMessage)).to.equal(true);
    expect(attempts).to.equal(1);
  });

  it('lets only one of two concurrent exchanges with the same key through, while the first is still in its block', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const entered: unknown[] = [];
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .idempotentConsumer('${header.id}')
        .process(async (ex) => {
          entered.push(ex.body);
          await gate;
        })
        .end(),
    );
    const first = template.send('direct:in', new Exchange({ body: 'first', headers: { id: 'same' } }));
    await waitFor(() => entered.length === 1);
    const second = await template.send('direct:in', new Exchange({ body: 'second', headers: { id: 'same' } }));
    expect(second.getProperty(ExchangeProperty.DuplicateMessage)).to.equal(true);
    release();
    expect((await first).exception).to.equal(undefined);
    expect(entered).to.deep.equal(['first']);
  });

  it('works with an asynchronous repository shared by two routes: add before, confirm after success, remove after failure', async () => {
    const repository = new AsyncRepository();
    const { template } = await start((r) => {
      r.from('direct:a').idempotentConsumer('${header.id}', { repository }).setHeader('via', 'a').end();
      r.from('direct:b').idempotentConsumer('${header.id}', { repository }).setHeader('via', 'b').process((ex) => {
        if (ex.headers.get('fail')) throw new Error('b failed');
      }).end();
    });
    const a = await template.send('direct:a', new Exchange({ headers: { id: 'x' } }));
    const b = await template.send('direct:b', new Exchange({ headers: { id: 'x' } }));
    expect(a.headers.get('via')).to.equal('a');
    expect(b.headers.get('via')).to.equal(undefined);
    expect(b.getProperty(ExchangeProperty.DuplicateMessage)).to.equal(true);
    const failed = await template.send('direct:b', new Exchange({ headers: { id: 'y', fail: true } }));
    expect(failed.exception?.message).to.equal('b failed');
    expect(repository.calls).to.deep.equal(['add x', 'confirm x', 'add x', 'add y', 'remove y']);
    expect([...repository.keys]).to.deep.equal(['x']);
  });

  it('with eager: false checks first and adds the key only once the block succeeded', async () => {
    const repository = new AsyncRepository();
    const { template } = await start((r) =>
      r
        .from('direct:in')
        .idempotentConsumer('${header.id}', { repository, eager: false })
        .process((ex) => {
          if (ex.headers.get('fail')) throw new Error('failed');
        })
        .end(),
    );
    await template.send('direct:in', new Exchange({ headers: { id: 'f', fail: true } }));
    await template.send('direct:in', new Exchange({ headers: { id: 'ok' } }));
    const duplicate = await template.send('direct:in', new Exchange({ headers: { id: 'ok' } }));
    expect(duplicate.getProperty(ExchangeProperty.DuplicateMessage)).to.equal(true);
    expect(repository.calls).to.deep.equal(['contains f', 'contains ok', 'add ok', 'contains ok']);
  });

  it('fails an exchange without a key with NoMessageIdError, and a repository failure fails the exchange', async () => {
    const broken: IdempotentRepository = {
      add: () => Promise.reject(new Error('redis down')),
      contains: () => false,
      remove: () => true,
      confirm: () => true,
    };
    const { template } = await start((r) => {
      r.from('direct:in').idempotentConsumer('${header.id}').setBody('processed').end();
      r.from('direct:broken').idempotentConsumer('${header.id}', { repository: broken }).setBody('processed').end();
    });
    const noKey = await template.send('direct:in', new Exchange({ body: 'raw' }));
    expect(noKey.exception).to.be.instanceOf(NoMessageIdError);
    expect(noKey.exception?.message).to.contain('${header.id}');
    expect(noKey.body).to.equal('raw');
    const down = await template.send('direct:broken', new Exchange({ body: 'raw', headers: { id: 1 } }));
    expect(down.exception?.message).to.equal('redis down');
    expect(down.body).to.equal('raw');
  });

  it('rejects unknown options and a repository missing methods, naming the route and the fix', async () => {
    for (const [define, expected] of [
      [(r: any) => r.from('direct:x').idempotentConsumer('${header.id}', { skipDuplicates: true }), /unknown option\(s\) skipDuplicates; valid options: repository, eager/],
      [(r: any) => r.from('direct:x').idempotentConsumer('${header.id}', { repository: { add() {} } }), /lacks contains, remove, confirm\(\)/],
      [(r: any) => r.from('direct:x').idempotentConsumer('${header.'), /idempotentConsumer\(\)/],
      [(r: any) => r.from('direct:x').idempotentConsumer('${header.id}', { eager: 'false' }), /eager must be true or false, got "false"/],
    ] as const) {
      await new Context().addRoutes(define).then(
        () => expect.fail('should have thrown'),
        (err: Error) => {
          expect(err).to.be.instanceOf(RouteBuildError);
          expect(err.message).to.contain('Route from(direct:x)').and.to.contain('idempotentConsumer():');
          expect(err.message).to.match(expected);
        },
      );
    }
  });
});

describe('MemoryIdempotentRepository', () => {
  it('keeps at most maxSize keys, forgetting the least recently used first', () => {
    const repository = new MemoryIdempotentRepository(2);
    expect(repository.add('a')).to.equal(true);
    expect(repository.add('b')).to.equal(true);
    expect(repository.add('a')).to.equal(false);
    expect(repository.contains('a')).to.equal(true); // a is now the most recent
    expect(repository.add('c')).to.equal(true); // b goes
    expect(repository.size).to.equal(2);
    expect(repository.contains('b')).to.equal(false);
    expect(repository.contains('a')).to.equal(true);
    expect(repository.contains('c')).to.equal(true);
    expect(repository.remove('a')).to.equal(true);
    expect(repository.remove('a')).to.equal(false);
    expect(repository.add('a')).to.equal(true);
  });

  it('defaults to 1000 keys, like Camel, and holds no more', () => {
    const repository = new MemoryIdempotentRepository();
    for (let i = 0; i < 1500; i += 1) repository.add(`k${i}`);
    expect(repository.maxSize).to.equal(1000);
    expect(repository.size).to.equal(1000);
    expect(repository.contains('k499')).to.equal(false);
    expect(repository.contains('k500')).to.equal(true);
  });

  it('refuses a size that is not a positive whole number, naming it', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new MemoryIdempotentRepository(bad)).to.throw(TypeError, `got ${String(bad)}`);
    }
  });
});
