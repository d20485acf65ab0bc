import { chmod, lstat, mkdir, realpath } from 'node:fs/promises';
import { dirname, join, parse, resolve } from 'node:path';
import { ConfigurationError } from '../../errors.ts';

/** The current user, or undefined where the platform has no numeric user ids (Windows). */
export function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/**
 * Makes `folder` (creating missing parts with mode 0700, whatever the umask) and checks that only
 * this user can change what is in it: the folder is a real directory (not a symlink) owned by this
 * user and writable by nobody else, and each folder above it is owned by this user or root and
 * writable by nobody else unless sticky (as /tmp is), so nobody can swap a folder on the way.
 *
 * Why: whoever can write into the cluster folder can write lock records, so another local user could
 * take or block leadership, or plant symlinks that make this member write where they chose.
 * The folders are created one level at a time (not with a recursive mkdir, which spins without end
 * under /proc), so a folder that cannot exist fails at once with the reason.
 */
export async function preparePrivateFolder(folder: string, setting: string): Promise<string> {
  const absolute = resolve(folder);
  const uid = currentUid();
  const refuse = (problem: string, fix: string): never => {
    throw new ConfigurationError(`the cluster folder ${absolute} cannot be used: ${problem}. ${fix}`);
  };
  // The nearest existing ancestor, resolved: symlinks above it (macOS /tmp, /var) are the system's.
  const missing: string[] = [];
  let existing = absolute;
  for (;;) {
    const info = await lstat(existing).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      return refuse(`${existing} cannot be read (${err.code ?? err.message})`, `Set ${setting} to a folder of your own`);
    });
    if (info) break;
    missing.unshift(parse(existing).base);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  if (existing === absolute && (await lstat(absolute)).isSymbolicLink()) {
    refuse('it is a symbolic link, which whoever owns it can point elsewhere', `Set ${setting} to the real folder (${await realpath(absolute).catch(() => 'its target')}) or remove the link`);
  }
  await checkLinksOnTheWay(existing, uid, (problem) => refuse(problem, `Set ${setting} to a folder of your own`));
  let current = await realpath(existing);
  const above = missing.length === 0 ? dirname(current) : current;
  await checkAncestors(above, uid, (problem, path) =>
    refuse(problem, `Remove ${path} (as its owner or root) if it should not be there, or set ${setting} to a folder only you can write to`),
  );
  for (const name of missing) {
    current = join(current, name);
    try {
      await mkdir(current, { mode: 0o700 });
      await chmod(current, 0o700);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another member created it first: the checks below judge it like any existing folder.
      if (code !== 'EEXIST') refuse(`${current} cannot be created (${code ?? (err as Error).message})`, `Set ${setting} to a writable folder of your own`);
    }
    await checkOwnFolder(current, uid, setting, refuse);
  }
  if (missing.length === 0) await checkOwnFolder(current, uid, setting, refuse);
  return current;
}

/** The folder itself: a directory, not a link, this user's, writable by nobody else. */
async function checkOwnFolder(folder: string, uid: number | undefined, setting: string, refuse: (problem: string, fix: string) => never): Promise<void> {
  const info = await lstat(folder);
  if (info.isSymbolicLink()) refuse(`${folder} is a symbolic link`, `Remove it (another user may have planted it), or set ${setting} to a folder of your own`);
  if (!info.isDirectory()) refuse(`${folder} is not a folder`, `Remove it, or set ${setting} to a folder of your own`);
  if (uid === undefined) return;
  if (info.uid !== uid) {
    refuse(
      `${folder} belongs to user ${info.uid}, not to this user (${uid}), so that user could take or block leadership`,
      `Remove it (as its owner or root), or set ${setting} to a folder of your own`,
    );
  }
  if ((info.mode & GROUP_OR_OTHER_WRITE) !== 0) {
    refuse(`${folder} is writable by other users (mode ${(info.mode & 0o7777).toString(8)})`, `Run chmod 700 ${folder}, or set ${setting} to a folder of your own`);
  }
}

/** A symbolic link on the way that another user owns could be pointed elsewhere later: refused. */
async function checkLinksOnTheWay(path: string, uid: number | undefined, refuse: (problem: string) => never): Promise<void> {
  if (uid === undefined) return;
  for (let current = path; dirname(current) !== current; current = dirname(current)) {
    const info = await lstat(current);
    if (info.isSymbolicLink() && info.uid !== uid && info.uid !== 0) refuse(`${current} on the way is a symbolic link of user ${info.uid}, who could point it elsewhere`);
  }
}

/** Every folder above: owned by this user or root, and not writable by others unless sticky (as /tmp). */
async function checkAncestors(folder: string, uid: number | undefined, refuse: (problem: string, path: string) => never): Promise<void> {
  if (uid === undefined) return;
  for (let current = folder; ; current = dirname(current)) {
    const info = await lstat(current);
    if (info.uid !== uid && info.uid !== 0) refuse(`${current} above it belongs to user ${info.uid}, who could replace the folders inside it`, current);
    if ((info.mode & GROUP_OR_OTHER_WRITE) !== 0 && (info.mode & STICKY) === 0) {
      refuse(`${current} above it is writable by other users (mode ${(info.mode & 0o7777).toString(8)}) without the sticky bit, so they could replace the folders inside it`, current);
    }
    if (dirname(current) === current) return;
  }
}
