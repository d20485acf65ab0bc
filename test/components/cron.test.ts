import { expect } from 'chai';
import { Context } from '../../lib/engine/context.ts';
import type { Exchange } from '../../lib/exchange/index.ts';
import { quartzToNodeCron } from '../../lib/components/cron/quartz.ts';
import { startContextStoppedAfterEach } from '../support/context.ts';
import { waitFor } from '../support/wait.ts';

describe('cron component', function () {
  this.timeout(20_000);
  const start = startContextStoppedAfterEach();

  it('translates Quartz syntax to node-cron', () => {
    expect(quartzToNodeCron('0/5 * * * * ?')).to.deep.equal({ expression: '0-59/5 * * * * *' });
    expect(quartzToNodeCron('0 0/15 8-17 ? * MON-FRI')).to.deep.equal({ expression: '0 0-59/15 8-17 * * MON-FRI' });
    expect(quartzToNodeCron('0 0 12 * * ? *')).to.deep.equal({ expression: '0 0 12 * * *' });
    expect(quartzToNodeCron('*/10 * * * *')).to.deep.equal({ expression: '*/10 * * * *' });
    expect(quartzToNodeCron('0 0 12 * * ? 2030')).to.have.property('error').that.contains('year');
    expect(quartzToNodeCron('* *')).to.have.property('error').that.contains('expected 6 fields');
  });

  it('fires on schedule, one exchange at a time, with the fire time and name in headers', async () => {
    const seen: Exchange[] = [];
    const spans: Array<[number, number]> = [];
    const { lines } = await start((r) =>
      r.from('cron:tick?schedule=* * * * * ?').process(async (ex) => {
        const start = performance.now();
        seen.push(ex);
        // Longer than the 1 s between fires: the fire due meanwhile is skipped, not run alongside.
        await new Promise((resolve) => setTimeout(resolve, 1200));
        spans.push([start, performance.now()]);
      }),
    );
    await waitFor(() => spans.length >= 2, { timeout: 15_000 });
    expect(seen[0]!.headers.get('CamelCronName')).to.equal('tick');
    expect(seen[0]!.headers.get('CamelCronFiredTime')).to.be.instanceOf(Date);
    expect(seen.map((e) => e.getProperty('CamelTimerCounter')).slice(0, 2)).to.deep.equal([1, 2]);
    expect(spans[1]![0]).to.be.at.least(spans[0]![1]);
    // The skipped fire is reported through the context's logger (node-cron prints nothing itself).
    expect(lines.some((l) => l.level === 'debug' && /cron:tick skipped the fire due at .*the previous exchange is still running/.test(l.message))).to.equal(true);
  });

  for (const [uri, why] of [
    ['cron:bad?schedule=61 * * * * *', /invalid schedule "61 \* \* \* \* \*": second/],
    ['cron:bad?schedule=* *', /expected 6 fields/],
    ['cron:bad', /the schedule option is required/],
    ['cron:?schedule=* * * * * *', /cron needs a name/],
    ['cron:bad?schedule=* * * * * *&period=5', /Unknown parameters=\[\{period=5\}\]/],
  ] as const) {
    it(`fails at startup for ${uri}`, async () => {
      const c = new Context();
      await c.addRoutes((r) => r.from(uri).log('x'));
      const err = await c.start().then(() => undefined, (e: Error) => e);
      expect(err?.message).to.match(why);
    });
  }
});
