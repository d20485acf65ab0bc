import { expect } from 'chai';
import { startContextStoppedAfterEach } from '../support/context.ts';

describe('log component', () => {
  const start = startContextStoppedAfterEach();

  it('logs Camel\'s exchange summary under its log name, at its level', async () => {
    const started = await start((r) => r.from('direct:in').to('log:orders?level=warn&showHeaders=true'));
    await started.template.sendBody('direct:in', 'hello', { kind: 'order' });
    const line = started.lines.find((l) => l.meta.logger === 'orders');
    expect(line?.level).to.equal('warn');
    expect(line?.message).to.equal('Exchange[ExchangePattern: InOnly, Headers: {"kind":"order"}, BodyType: String, Body: hello]');
  });

  it('shows everything with showAll, clips long bodies, and masks secrets', async () => {
    const started = await start((r) => r.from('direct:in').to('log:all?showAll=true&maxChars=20'));
    await started.template.sendBody('direct:in', 'amqp://user:hunter2@host/very/long/path/here');
    const message = started.lines.find((l) => l.meta.logger === 'all')!.message;
    expect(message).to.contain('Id: ').and.to.contain('Properties: {}').and.to.contain('Body clipped after 20 chars');
    expect(message).not.to.contain('hunter2');
  });

  it('logs nothing at level off, and refuses unknown levels', async () => {
    const started = await start((r) => r.from('direct:in').to('log:quiet?level=off'));
    await started.template.sendBody('direct:in', 'x');
    expect(started.lines.some((l) => l.meta.logger === 'quiet')).to.equal(false);
    const bad = await start((r) => r.from('direct:x').to('log:x?level=loud')).then(
      (s) => s.context.stop(),
      (e: Error) => e,
    );
    expect((bad as Error).message).to.contain('one of error, warn, info, debug, trace, off');
  });
});
