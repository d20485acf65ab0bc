import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

const ROUTES = fileURLToPath(new URL('../../examples/custom-singleton/routes', import.meta.url));

describe('example: custom singleton service', function () {
  this.timeout(60_000);
  let dir: string;
  const members: ProcessHandle[] = [];
  afterEach(async () => {
    for (const m of members.splice(0)) await m.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the scheduler on one member of two, and moves it, with its report numbering, when that member stops', async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-example-singleton-'));
    const env = {
      DROMEDARY_CLUSTER_ROOT: dir,
      DROMEDARY_LEASE_DURATION: '1200ms',
      DROMEDARY_RENEW_DEADLINE: '800ms',
      DROMEDARY_RETRY_PERIOD: '150ms',
      REPORT_EVERY_MS: '100',
    };
    const a = spawnCli(['run', ROUTES], { env: { ...env, DROMEDARY_MEMBER_ID: 'a' } });
    members.push(a);
    await a.waitForLine(/report #2 produced/);
    const b = spawnCli(['run', ROUTES], { env: { ...env, DROMEDARY_MEMBER_ID: 'b' } });
    members.push(b);
    await b.waitForLine(/member a is now leader of reports/);
    expect(b.count(/report scheduler started/)).to.equal(0);
    a.signal('SIGTERM');
    await a.exited;
    expect(a.output).to.contain('report scheduler stopped on this member');
    // The numbering moves with leadership (the lock's leader state): b continues after a's last report.
    const last = Math.max(...a.lines.map((l) => /report #(\d+) produced/.exec(l)).filter((m) => m !== null).map((m) => Number(m[1])));
    await b.waitForLine(new RegExp(`report #${last + 1} produced`));
    expect(b.lines.find((l) => /report #\d+ produced/.test(l)), 'b’s first report').to.match(new RegExp(`report #${last + 1} produced`));
    await waitFor(() => b.count(/report scheduler started on this member/) === 1);
  });
});
