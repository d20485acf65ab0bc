import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockNameProblem } from '../../lib/cluster/lock-name.ts';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { FileLockStore } from '../../lib/cluster/file/file-lock-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { microTime } from '../../lib/cluster/election/lock-store.ts';
import { CLUSTER_SERVICE } from '../../lib/components/master/master-component.ts';
import { Context } from '../../lib/engine/context.ts';
import { ConfigurationError, ResolveEndpointError } from '../../lib/errors.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { spawnCli } from '../support/cli-process.ts';

const timings = validateTimings({ leaseDuration: 400, renewDeadline: 250, retryPeriod: 50 });
const NOT_NAMES = ['..', '.', '.hidden', 'a/b', '../x', 'a\\b', '', 'lock 1', 'ü', 'x'.repeat(129), '-lead', 'a:b'];
const NAMES = ['lock1', 'orders.poller', 'Orders_A', 'orders-a', '9', 'a..b', 'x'.repeat(128)];

describe('lock names are names, not paths', () => {
  it('accepts plain names and refuses anything else, saying what is allowed', () => {
    for (const name of NAMES) expect(lockNameProblem(name), name).to.equal(undefined);
    for (const name of NOT_NAMES) {
      expect(lockNameProblem(name), name).to.match(/letters, digits, '\.', '_' and '-', starting with a letter or a digit, at most 128 characters/);
    }
  });

  it('is refused by every elector-backed cluster service before anything is written', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dromedary-lockname-'));
    try {
      const { logger } = captureLogger();
      for (const store of [new MemoryLockStore(), new FileLockStore(join(root, 'cluster'))]) {
        const service = new ElectorClusterService({ kind: 'test', memberId: 'm1', store, timings, logger });
        await service.start();
        for (const name of ['..', '.', '%2e%2e', '../escape']) expect(() => service.view(name), name).to.throw(ConfigurationError, /is not a plain name/);
        await service.stop();
      }
      expect(await readdir(root)).to.deep.equal([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('is refused by the file store itself, so no record lands outside its folder', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'dromedary-lockname-'));
    try {
      const store = new FileLockStore(join(parent, 'cluster'));
      await mkdir(join(parent, 'cluster'), { mode: 0o700 });
      const record = { holderIdentity: 'x', leaseDurationMs: 1000, acquireTime: microTime(), renewTime: microTime(), leaseTransitions: 0 };
      for (const name of ['..', '.']) {
        await store.create(name, record, new AbortController().signal).then(
          () => expect.fail(`created a record for ${name}`),
          (err: unknown) => expect(err).to.be.instanceOf(ConfigurationError),
        );
      }
      expect(await readdir(parent)).to.deep.equal(['cluster']);
      expect(await readdir(join(parent, 'cluster'))).to.deep.equal([]);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('fails a master: URI whose lock is not a plain name, naming the URI, also when percent-encoded', async () => {
    const { logger } = captureLogger();
    const context = new Context({ logger });
    context.addService(CLUSTER_SERVICE, new ElectorClusterService({ kind: 'test', memberId: 'm1', store: new MemoryLockStore(), timings, logger }));
    for (const uri of ['master:..:timer:x', 'master:%2e%2e:timer:x', 'master:.:timer:x', 'master:a%2Fb:timer:x']) {
      await context.endpoint(uri).then(
        () => expect.fail(`${uri} resolved`),
        (err: unknown) => {
          expect(err, uri).to.be.instanceOf(ResolveEndpointError);
          expect((err as Error).message).to.contain(uri).and.to.match(/is not a plain name: a lock name is letters, digits/);
        },
      );
    }
  });

  it('makes dromedary run fail at startup, naming the route URI, with nothing written next to the cluster folder', async function () {
    this.timeout(30_000);
    const dir = await mkdtemp(join(tmpdir(), 'dromedary-lockname-'));
    try {
      await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
      await mkdir(join(dir, 'routes'));
      await writeFile(join(dir, 'routes', 'r.ts'), "import { from } from 'dromedary';\nfrom('master:%2e%2e:timer:t?period=50').log('tick');\n");
      const p = spawnCli(['run', 'routes'], { cwd: dir, env: { DROMEDARY_CLUSTER_ROOT: join(dir, 'locks', 'cluster') } });
      try {
        const { code } = await p.exited;
        expect(code).to.equal(1);
        expect(p.output).to.contain('master:%2e%2e:timer:t?period=50').and.to.match(/"\.\." is not a plain name/);
        expect(await readdir(join(dir, 'locks'))).to.deep.equal(['cluster']);
        expect(await readdir(join(dir, 'locks', 'cluster'))).to.deep.equal([]);
      } finally {
        await p.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
