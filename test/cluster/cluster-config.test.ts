import { expect } from 'chai';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveClusterConfig } from '../../lib/cluster/config.ts';
import { MAX_TIMER_MS, validateTimings } from '../../lib/cluster/election/timings.ts';
import { ConfigurationError } from '../../lib/errors.ts';
import { spawnCli } from '../support/cli-process.ts';

const ROUTES = fileURLToPath(new URL('./fixtures/routes', import.meta.url));
const config = (env: Record<string, string>) => resolveClusterConfig({ flags: { cluster: 'file' }, env });

describe('cluster configuration', () => {
  it('refuses a timing without a unit, suggesting one', () => {
    expect(() => config({ DROMEDARY_LEASE_DURATION: '15' })).to.throw(ConfigurationError, 'DROMEDARY_LEASE_DURATION="15" has no unit: write 15s for seconds (or 15ms, 1m)');
    expect(() => config({ DROMEDARY_RETRY_PERIOD: '2.5' })).to.throw(ConfigurationError, /DROMEDARY_RETRY_PERIOD="2.5" has no unit: write 2.5s/);
    expect(config({ DROMEDARY_LEASE_DURATION: '20s', DROMEDARY_RENEW_DEADLINE: '12s', DROMEDARY_RETRY_PERIOD: '2500ms' }).timings).to.include({
      leaseDuration: 20_000,
      renewDeadline: 12_000,
      retryPeriod: 2500,
    });
  });

  it('refuses timings so short that renewals cannot keep up, stating the minimum and why', () => {
    const env = { DROMEDARY_LEASE_DURATION: '15ms', DROMEDARY_RENEW_DEADLINE: '10ms', DROMEDARY_RETRY_PERIOD: '2ms' };
    expect(() => config(env)).to.throw(ConfigurationError, /too short for renewals to keep up: use at least 200ms and 20ms.*store write.*leadership flaps/);
    expect(() => validateTimings({ leaseDuration: 190, renewDeadline: 150, retryPeriod: 50 })).to.throw(ConfigurationError, /at least 200ms/);
    expect(() => validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 19 })).to.throw(ConfigurationError, /and 20ms/);
    expect(validateTimings({ leaseDuration: 200, renewDeadline: 150, retryPeriod: 20 }).leaseDuration).to.equal(200);
  });

  it('refuses durations a Node.js timer cannot hold, naming the limit', () => {
    const env = { DROMEDARY_LEASE_DURATION: '30d', DROMEDARY_RENEW_DEADLINE: '29d', DROMEDARY_RETRY_PERIOD: '1d' };
    expect(() => config(env)).to.throw(ConfigurationError, /leaseDuration \(DROMEDARY_LEASE_DURATION\) of 30 days is longer than a Node\.js timer can wait: at most 2147483647ms \(about 24\.8 days\)/);
    expect(() => validateTimings({ leaseDuration: 20 * 86_400_000, renewDeadline: 10 * 86_400_000, retryPeriod: 24 * 86_400_000 })).to.throw(
      ConfigurationError,
      /retryPeriod \(DROMEDARY_RETRY_PERIOD\) of 24 days is longer than a Node\.js timer can wait.*divided by the jitter 1\.2/,
    );
    expect(MAX_TIMER_MS).to.equal(2 ** 31 - 1);
    expect(validateTimings({ leaseDuration: 24 * 86_400_000, renewDeadline: 20 * 86_400_000, retryPeriod: 86_400_000 }).leaseDuration).to.equal(24 * 86_400_000);
  });

  it('defaults the file backend folder to one per user, whatever the routes path', () => {
    expect(config({}).root).to.equal(join(tmpdir(), `dromedary-${process.getuid!()}`, 'cluster'));
    expect(config({ DROMEDARY_CLUSTER_ROOT: '/srv/locks' }).root).to.equal('/srv/locks');
    expect(resolveClusterConfig({ flags: { cluster: 'file', root: '/srv/x' }, env: { DROMEDARY_CLUSTER_ROOT: '/srv/locks' } }).root).to.equal('/srv/x');
  });

  it('makes dromedary run exit at once on a 30d lease, without a timer warning loop', async function () {
    this.timeout(30_000);
    const p = spawnCli(['run', ROUTES, '--cluster', 'file'], {
      env: { DROMEDARY_LEASE_DURATION: '30d', DROMEDARY_RENEW_DEADLINE: '29d', DROMEDARY_RETRY_PERIOD: '1d', DROMEDARY_CLUSTER_ROOT: join(tmpdir(), 'dromedary-never-made') },
    });
    try {
      expect((await p.exited).code).to.equal(1);
      expect(p.output).to.match(/longer than a Node\.js timer can wait/);
      expect(p.output).not.to.match(/TimeoutOverflowWarning/);
    } finally {
      await p.stop();
    }
  });
});
