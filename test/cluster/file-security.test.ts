import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmod, chown, lchown, lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClusterService, defaultClusterRoot, resolveClusterConfig } from '../../lib/cluster/config.ts';
import { FileLockStore } from '../../lib/cluster/file/file-lock-store.ts';
import { preparePrivateFolder } from '../../lib/cluster/file/private-folder.ts';
import { microTime, type LockRecord } from '../../lib/cluster/election/lock-store.ts';
import { ConfigurationError } from '../../lib/errors.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { spawnCli } from '../support/cli-process.ts';

const OTHER_UID = 65534;
const signal = new AbortController().signal;
const record = (holder: string): LockRecord => ({ holderIdentity: holder, leaseDurationMs: 1000, acquireTime: microTime(), renewTime: microTime(), leaseTransitions: 0 });
const mode = async (path: string) => (await lstat(path)).mode & 0o7777;

async function refused(folder: string, pattern: RegExp): Promise<void> {
  await preparePrivateFolder(folder, 'DROMEDARY_CLUSTER_ROOT').then(
    () => expect.fail(`${folder} was accepted`),
    (err: unknown) => {
      expect(err).to.be.instanceOf(ConfigurationError);
      expect((err as Error).message).to.contain(`the cluster folder ${folder} cannot be used`).and.to.match(pattern);
    },
  );
}

describe('file store security: its files are its own', function () {
  this.timeout(30_000);
  let dir: string;
  let umask: number;
  before(() => {
    // These cases give files to another user, which only root can do; the CI runs the suite as root.
    expect(process.getuid?.(), 'the file store security tests chown files to another user: run them as root').to.equal(0);
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-filesec-'));
    umask = process.umask();
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(dir, { recursive: true, force: true });
  });

  it('creates folders 0700 and files 0600 even with umask 000', async () => {
    process.umask(0);
    const root = await preparePrivateFolder(join(dir, 'a', 'b', 'cluster'), 'DROMEDARY_CLUSTER_ROOT');
    for (const folder of [join(dir, 'a'), join(dir, 'a', 'b'), root]) expect(await mode(folder), folder).to.equal(0o700);
    const store = new FileLockStore(root);
    const created = await store.create('lock1', record('m1'), signal);
    await store.update('lock1', record('m1'), created.version, signal);
    await store.heartbeat('lock1', 'm1');
    expect(await mode(join(root, 'lock1'))).to.equal(0o700);
    expect(await mode(join(root, 'lock1', 'members'))).to.equal(0o700);
    expect(await mode(join(root, 'lock1', 'members', 'm1'))).to.equal(0o600);
    const versions = (await readdir(join(root, 'lock1'))).filter((n) => n.startsWith('v'));
    expect(versions).to.have.length(2);
    for (const v of versions) expect(await mode(join(root, 'lock1', v)), v).to.equal(0o600);
  });

  it('never writes through a symlink planted at a heartbeat file or a lock folder', async () => {
    const root = await preparePrivateFolder(join(dir, 'cluster'), 'DROMEDARY_CLUSTER_ROOT');
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await mkdir(join(root, 'lock1', 'members'), { recursive: true, mode: 0o700 });
    await symlink(join(elsewhere, 'planted'), join(root, 'lock1', 'members', 'm1'));
    const store = new FileLockStore(root);
    await store.heartbeat('lock1', 'm1');
    expect(await readdir(elsewhere)).to.deep.equal([]);
    expect((await lstat(join(root, 'lock1', 'members', 'm1'))).isSymbolicLink()).to.equal(true);
    expect(await store.members('lock1')).to.deep.equal([]);
    await symlink(elsewhere, join(root, 'lock2'));
    await store.create('lock2', record('m1'), signal).then(
      () => expect.fail('wrote into a symlinked lock folder'),
      (err: unknown) => expect((err as Error).message).to.match(/lock2 is not a folder of this user \(a symbolic link\)/),
    );
    expect(await readdir(elsewhere)).to.deep.equal([]);
  });

  it('makes a lock folder again (0700, checked) after someone removed it', async () => {
    const root = await preparePrivateFolder(join(dir, 'cluster'), 'DROMEDARY_CLUSTER_ROOT');
    const store = new FileLockStore(root);
    await store.create('lock1', record('m1'), signal);
    await store.heartbeat('lock1', 'm1');
    await rm(join(root, 'lock1'), { recursive: true });
    await store.heartbeat('lock1', 'm1');
    expect((await store.create('lock1', record('m1'), signal)).version).to.equal('1');
    expect(await mode(join(root, 'lock1'))).to.equal(0o700);
    expect(await readdir(join(root, 'lock1', 'members'))).to.deep.equal(['m1']);
  });

  it('gives member ids of dots their own file names, never . or ..', async () => {
    const root = await preparePrivateFolder(join(dir, 'cluster'), 'DROMEDARY_CLUSTER_ROOT');
    const store = new FileLockStore(root);
    for (const id of ['.', '..', '.hidden']) await store.heartbeat('lock1', id);
    expect((await readdir(join(root, 'lock1', 'members'))).sort()).to.deep.equal(['%2E', '%2E%2E', '%2Ehidden']);
    expect((await store.members('lock1')).sort()).to.deep.equal(['.', '..', '.hidden']);
  });

  it('refuses a cluster folder that is a symlink, belongs to another user or is writable by others, saying how to fix it', async () => {
    const real = join(dir, 'real');
    await mkdir(real, { mode: 0o700 });
    await symlink(real, join(dir, 'link'));
    await refused(join(dir, 'link'), /it is a symbolic link.*Set DROMEDARY_CLUSTER_ROOT to the real folder/);
    const theirs = join(dir, 'theirs');
    await mkdir(theirs, { mode: 0o700 });
    await chown(theirs, OTHER_UID, OTHER_UID);
    await refused(theirs, new RegExp(`belongs to user ${OTHER_UID}, not to this user \\(0\\).*Remove it`));
    const open = join(dir, 'open');
    await mkdir(open);
    await chmod(open, 0o777);
    await refused(open, /is writable by other users \(mode 777\).*chmod 700/);
    const groupWritable = join(dir, 'group');
    await mkdir(groupWritable);
    await chmod(groupWritable, 0o770);
    await refused(groupWritable, /is writable by other users \(mode 770\)/);
  });

  it('refuses a folder under a folder another user owns or can write to without the sticky bit', async () => {
    const theirs = join(dir, 'theirs');
    await mkdir(theirs, { mode: 0o755 });
    await chown(theirs, OTHER_UID, OTHER_UID);
    await refused(join(theirs, 'cluster'), new RegExp(`theirs above it belongs to user ${OTHER_UID}`));
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o777);
    await refused(join(shared, 'cluster'), /shared above it is writable by other users \(mode 777\) without the sticky bit/);
    await chmod(shared, 0o1777);
    expect(await preparePrivateFolder(join(shared, 'cluster'), 'DROMEDARY_CLUSTER_ROOT')).to.equal(join(shared, 'cluster'));
  });

  it('refuses a default folder another user planted, as a folder or as a symlink', async () => {
    const env = { TMPDIR: dir };
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    try {
      const { root } = resolveClusterConfig({ flags: { cluster: 'file' }, env: {} });
      expect(root).to.equal(join(dir, 'dromedary-0', 'cluster'));
      expect(defaultClusterRoot()).to.equal(root);
      const planted = join(dir, 'dromedary-0');
      await mkdir(planted, { mode: 0o700 });
      await chown(planted, OTHER_UID, OTHER_UID);
      const { logger } = captureLogger();
      await createClusterService(resolveClusterConfig({ flags: { cluster: 'file' }, env }), logger).then(
        () => expect.fail('accepted a folder of another user'),
        (err: unknown) => expect((err as Error).message).to.match(new RegExp(`dromedary-0 above it belongs to user ${OTHER_UID}.*Remove .*dromedary-0 \\(as its owner or root\\)`)),
      );
      await rm(planted, { recursive: true });
      const target = join(dir, 'target');
      await mkdir(join(target, 'cluster'), { recursive: true, mode: 0o700 });
      await symlink(target, planted);
      await lchown(planted, OTHER_UID, OTHER_UID);
      await createClusterService(resolveClusterConfig({ flags: { cluster: 'file' }, env }), logger).then(
        () => expect.fail('accepted a symlink of another user'),
        (err: unknown) => expect((err as Error).message).to.match(new RegExp(`dromedary-0 on the way is a symbolic link of user ${OTHER_UID}`)),
      );
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
  });

  it('another local user cannot block leadership by creating the default folder first (real processes)', async () => {
    // A shared temp folder, as /tmp: everyone may create entries, nobody may replace another's.
    await chmod(dir, 0o1777);
    const other = spawnSync(process.execPath, ['-e', `require('node:fs').mkdirSync(${JSON.stringify(join(dir, 'dromedary-0'))}, { mode: 0o700 })`], {
      uid: OTHER_UID,
      gid: OTHER_UID,
    });
    expect(other.status, String(other.stderr)).to.equal(0);
    expect((await stat(join(dir, 'dromedary-0'))).uid).to.equal(OTHER_UID);
    const app = join(dir, 'app');
    await mkdir(join(app, 'routes'), { recursive: true });
    await writeFile(join(app, 'package.json'), '{"type":"module"}\n');
    await writeFile(join(app, 'routes', 'r.ts'), "import { from } from 'dromedary';\nfrom('master:lock1:timer:t?period=50').log('tick');\n");
    const p = spawnCli(['run', 'routes', '--cluster', 'file'], { cwd: app, env: { TMPDIR: dir, DROMEDARY_CLUSTER_ROOT: undefined } });
    try {
      expect((await p.exited).code).to.equal(1);
      expect(p.output).to.contain(`the cluster folder ${join(dir, 'dromedary-0', 'cluster')} cannot be used`);
      expect(p.output).to.match(new RegExp(`dromedary-0 above it belongs to user ${OTHER_UID}, who could replace the folders inside it\\. Remove .*dromedary-0 \\(as its owner or root\\) if it should not be there, or set DROMEDARY_CLUSTER_ROOT`));
      expect(p.output).not.to.match(/tick/);
    } finally {
      await p.stop();
    }
  });

  it('fails at once with a clear error for a cluster folder that cannot exist or take files (/proc), not a hang', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/proc/dromedary', /the cluster folder \/proc\/dromedary cannot be used: \/proc\/dromedary cannot be created \(ENOENT\)\. Set DROMEDARY_CLUSTER_ROOT to a writable folder of your own/],
      ['/proc', /the cluster folder \/proc cannot be used: writing a file and a hard link to it there failed \(ENOENT\)\. Set DROMEDARY_CLUSTER_ROOT to a writable folder/],
    ];
    for (const [root, message] of cases) {
      const p = spawnCli(['run', 'routes', '--cluster', 'file'], { cwd: join(import.meta.dirname, 'fixtures'), env: { DROMEDARY_CLUSTER_ROOT: root } });
      try {
        const { code } = await p.exited;
        expect(code, root).to.equal(1);
        expect(p.output).to.match(message);
      } finally {
        await p.stop();
      }
    }
  });
});
