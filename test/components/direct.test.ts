import { expect } from 'chai';
import { DirectConsumerNotAvailableError } from '../../lib/components/direct/direct-component.ts';
import { startContextStoppedAfterEach } from '../support/context.ts';

describe('direct component', () => {
  const start = startContextStoppedAfterEach();

  it('calls the consuming route synchronously with the same exchange and returns its result', async () => {
    const started = await start((r) => {
      r.from('direct:a').setHeader('a', true).to('direct:b').setHeader('after-b', '${body}');
      r.from('direct:b').setBody('from b');
    });
    const ex = await started.template.send('direct:a', 'x');
    expect(ex.body).to.equal('from b');
    expect(ex.headers.get('a')).to.equal(true);
    expect(ex.headers.get('after-b')).to.equal('from b');
  });

  it('hands the callee\'s failure back to the caller and logs it once, in the route that received it', async () => {
    const started = await start((r) => {
      r.from('direct:a').routeId('caller').to('direct:b').setBody('not reached');
      r.from('direct:b').routeId('callee').process(() => {
        throw new Error('callee failed');
      });
    });
    const ex = await started.template.send('direct:a', 'x');
    expect(ex.exception?.message).to.equal('callee failed');
    expect(ex.body).to.equal('x');
    const errors = started.lines.filter((l) => l.level === 'error');
    expect(errors.length).to.equal(1);
    expect(errors[0]!.meta.route).to.equal('caller');
  });

  it('fails with a clear error when no consumer is attached and block=false', async () => {
    const started = await start((r) => r.from('direct:in').to('direct:nobody?block=false'));
    const ex = await started.template.send('direct:in', 1);
    expect(ex.exception).to.be.instanceOf(DirectConsumerNotAvailableError);
    expect(ex.exception!.message).to.contain('No consumers available on endpoint: direct:nobody').and.to.contain("from('direct:nobody");
  });

  it('waits up to timeout for a consumer when blocking, then fails', async () => {
    const started = await start((r) => r.from('direct:in').to('direct:later?timeout=50'));
    const ex = await started.template.send('direct:in', 1);
    expect(ex.exception?.message).to.contain('waited 50ms');
  });

  it('delivers to a consumer that starts while the producer is waiting', async () => {
    const started = await start((r) => r.from('direct:in').to('direct:later?timeout=5000'));
    const pending = started.template.requestBody('direct:in', 1);
    await started.context.addRoutes((r) => r.from('direct:later').setBody('late consumer'));
    expect(await pending).to.equal('late consumer');
  });

  it('refuses two consumers on one name', async () => {
    const err = await start((r) => {
      r.from('direct:same');
      r.from('direct:same');
    }).then(
      (s) => s.context.stop(),
      (e: Error) => e,
    );
    expect((err as Error).message).to.contain('Multiple consumers for the same endpoint is not allowed: direct:same');
  });
});
