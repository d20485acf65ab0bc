import { constants, watch, type FSWatcher } from 'node:fs';
import { chmod, link, lstat, lutimes, mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomHex } from '../../random-hex.ts';
import { LockConflictError, type LockRecord, type LockStore, type VersionedRecord } from '../election/lock-store.ts';
import { assertLockName } from '../lock-name.ts';
import { currentUid, preparePrivateFolder } from './private-folder.ts';
import { isStateRecord } from '../state-value.ts';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;
/** Exclusive create, never through a symbolic link (O_EXCL refuses one at the name; O_NOFOLLOW says so twice). */
const CREATE_NEW = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const RECREATED = 'the record was deleted and created again since it was read';

/**
 * Lock records in a folder, for members on one machine or on a shared POSIX filesystem.
 *
 * Compare-and-swap without any mutex: each version of a lock's record is its own file,
 * `<root>/<lock>/v<version>.json`, written complete to a temporary file and then published with
 * link(2), which fails with EEXIST when the name exists. Two members that read version N and both
 * write N+1: one link succeeds, the other gets EEXIST and loses. There is no lock to be left held,
 * so a member SIGKILLed at any instant leaves at worst a temporary file behind (cleaned up later),
 * and a member SIGSTOPped mid-write that resumes later finds its N+1 taken and loses.
 * Old versions are deleted, keeping the newest few. Should a very late writer publish an old number
 * whose file was already deleted, the check after the link sees a newer version and reports a
 * conflict, and readers always take the highest version, so its write never counts.
 * Someone removing the lock files (or the lock's folder) deletes the record: an update then finds
 * the version it was based on gone and reports a conflict (withdrawing what it published), so a
 * leader learns its record was deleted instead of silently writing it back. A record deleted and
 * created again numbers its versions from 1 again, so a version number alone does not name one
 * record: a member that read version N of the old record (and was paused over the deletion) could
 * otherwise replace the new record's version N. So an update is also checked against the content this
 * store read or wrote as that version, before and after it publishes.
 *
 * NFS and other shared filesystems: link(2) is atomic on the server, which is why NFS-safe lock
 * files use it; but directory listings can be cached for a few seconds, so members see changes
 * late (that costs failover time, not safety, since expiry is judged from when a member saw a
 * change), and fs.watch does not fire for other machines' writes, so members fall back to polling
 * every retryPeriod. Avoid filesystems without hard links (some FUSE and SMB mounts): the store
 * refuses to start there.
 *
 * Every file is this store's own: the root is a folder only this user can write to (checked by
 * preparePrivateFolder before the store starts), folders are made 0700 and checked to be real
 * folders of this user, files are created exclusively (never through a symlink) with mode 0600 and
 * read without following symlinks, whatever the umask. Lock names are plain names (lock-name.ts), so
 * a record can never land outside the root.
 */
export class FileLockStore implements LockStore {
  readonly root: string;
  readonly #keep: number;
  readonly #memberTimeout: number;
  readonly #watchers = new Map<string, WatchEntry>();
  /** Folders already made and checked: only this user can write to the root, so they stay as checked. */
  readonly #checkedDirs = new Set<string>();
  /** Per lock, per member file: the heartbeat last seen and when, on this member's monotonic clock. */
  readonly #heartbeats = new Map<string, Map<string, { mtimeMs: number; seenAt: number }>>();
  /** Member files this store itself keeps alive. */
  readonly #own = new Set<string>();
  /** Per lock, the newest version this store read or wrote and its file's content: what an update is based on. */
  readonly #known = new Map<string, { version: number; content: string }>();

  /**
   * `memberTimeout`: a member whose heartbeat file did not change for this long, by this member's
   * clock, is no longer listed (the lease duration; 15 s by default).
   */
  constructor(root: string, options: { keepVersions?: number; memberTimeout?: number } = {}) {
    this.root = root;
    this.#keep = options.keepVersions ?? 8;
    this.#memberTimeout = options.memberTimeout ?? 15_000;
  }

  #dir(lock: string): string {
    assertLockName(lock);
    return join(this.root, lock);
  }

  /**
   * Makes `dir` (mode 0700, whatever the umask) if needed and checks it is a real folder of this user.
   * `again`: someone may have removed it since it was checked (an operator deleting a lock's files).
   */
  async #ensureDir(dir: string, again = false): Promise<void> {
    if (!again && this.#checkedDirs.has(dir)) return;
    try {
      await mkdir(dir, { mode: 0o700 });
      await chmod(dir, 0o700);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && dir !== this.root) {
        // The cluster folder itself was removed (an operator cleaning up): make it again, under the
        // checks it passed at startup, or no member could ever lead again. Its records went with it,
        // so the electors treat every holder as unknown and wait a full lease.
        await preparePrivateFolder(this.root, 'DROMEDARY_CLUSTER_ROOT');
        return this.#ensureDir(dir, true);
      }
      if (code !== 'EEXIST') throw err;
    }
    const info = await lstat(dir);
    const uid = currentUid();
    if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) {
      throw new Error(`${dir} is not a folder of this user (${info.isSymbolicLink() ? 'a symbolic link' : `owner ${info.uid}`}): remove it`);
    }
    this.#checkedDirs.add(dir);
  }

  async #versions(lock: string): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir(lock));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const versions: number[] = [];
    for (const name of names) {
      const m = /^v(\d+)\.json$/.exec(name);
      if (m) versions.push(Number(m[1]));
    }
    return versions.sort((a, b) => b - a);
  }

  #file(lock: string, version: number): string {
    return join(this.#dir(lock), `v${String(version).padStart(12, '0')}.json`);
  }

  // File operations finish quickly or not at all; the elector's own timeout bounds them, so the signal is unused.
  async get(lock: string, _signal?: AbortSignal): Promise<VersionedRecord | undefined> {
    // A version can be garbage-collected between the listing and the read; list again then.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const [latest] = await this.#versions(lock);
      if (latest === undefined) return undefined;
      try {
        const content = await readOwnFile(this.#file(lock, latest));
        const record = JSON.parse(content) as LockRecord;
        this.#remember(lock, latest, content);
        // A hand-edited state that is not a JSON object reads as none (see state-value.ts parseState).
        if (record.state !== undefined && !isStateRecord(record.state)) delete record.state;
        return { record, version: String(latest) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw new Error(`lock ${lock}: its record kept changing while being read`);
  }

  async create(lock: string, record: LockRecord, _signal?: AbortSignal): Promise<VersionedRecord> {
    await this.#ensureDir(this.#dir(lock), true);
    return this.#publish(lock, record, 1, 'already exists');
  }

  async update(lock: string, record: LockRecord, expectedVersion: string, _signal?: AbortSignal): Promise<VersionedRecord> {
    const expected = Number(expectedVersion);
    if (!Number.isInteger(expected)) throw new LockConflictError(lock, `not a version of this store: ${expectedVersion}`);
    if (!(await this.#isAsKnown(lock, expected))) throw new LockConflictError(lock, RECREATED);
    return this.#publish(lock, record, expected + 1, 'the record changed since it was read', expected);
  }

  /**
   * Publishes `version`. For an update, `basedOn` (the version read) must still be there once the new
   * one is published: the newest few versions are never collected, so only a deletion of the record
   * removes it, and the update is then withdrawn and lost like any other race.
   */
  async #publish(lock: string, record: LockRecord, version: number, conflict: string, basedOn?: number): Promise<VersionedRecord> {
    const temp = join(this.#dir(lock), `.tmp-${process.pid}-${randomHex(6)}`);
    let handle;
    try {
      handle = await open(temp, CREATE_NEW, 0o600);
    } catch (err) {
      if (basedOn !== undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') throw new LockConflictError(lock, 'its folder was removed (the record was deleted)');
      throw err;
    }
    const content = JSON.stringify(record);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, this.#file(lock, version));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new LockConflictError(lock, conflict);
      throw err;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    const versions = await this.#versions(lock);
    if (versions[0]! > version) throw new LockConflictError(lock, 'a newer version was published first');
    if (basedOn !== undefined && basedOn > 0 && (!versions.includes(basedOn) || !(await this.#isAsKnown(lock, basedOn)))) {
      await unlink(this.#file(lock, version)).catch(() => undefined);
      throw new LockConflictError(lock, versions.includes(basedOn) ? RECREATED : 'the record was deleted since it was read');
    }
    this.#remember(lock, version, content);
    void this.#collect(lock, versions);
    return { record, version: String(version) };
  }

  #remember(lock: string, version: number, content: string): void {
    const known = this.#known.get(lock);
    if (!known || known.version <= version) this.#known.set(lock, { version, content });
  }

  /**
   * Whether `version`'s file holds what this store read or wrote as that version. A version it never
   * saw (another store instance's, in tests) is taken as it is; a file that is gone counts as unchanged
   * here, since the check after publishing catches a deletion.
   */
  async #isAsKnown(lock: string, version: number): Promise<boolean> {
    const known = this.#known.get(lock);
    if (!known || known.version !== version) return true;
    try {
      return (await readOwnFile(this.#file(lock, version))) === known.content;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw err;
    }
  }

  /** Deletes all but the newest versions, and temporary files a crashed writer left behind. */
  async #collect(lock: string, versions: number[]): Promise<void> {
    for (const old of versions.slice(this.#keep)) await unlink(this.#file(lock, old)).catch(() => undefined);
    if (versions[0]! % 64 !== 0) return;
    const dir = this.#dir(lock);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith('.tmp-')) continue;
      const info = await lstat(join(dir, name)).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > 60_000) await unlink(join(dir, name)).catch(() => undefined);
    }
  }

  /**
   * Reports a new newest record, never anything else. Deleting old versions (the garbage collection
   * after every write), temporary files and heartbeats change the folder too; were they reported,
   * a leader would renew at each of them, and each renewal deletes another old version: a hot loop
   * of writes. So only a version newer than the newest reported is reported at once; any other event
   * re-lists the folder and reports only when the newest record itself changed (it was deleted, or
   * the versions started over), which is a change a member must see.
   */
  watch(lock: string, onChange: (version?: string) => void): () => void {
    let entry = this.#watchers.get(lock);
    if (!entry) {
      const created: WatchEntry = { watcher: undefined, listeners: new Set(), newest: undefined, generation: 0, checking: false, recheck: false };
      entry = created;
      this.#watchers.set(lock, created);
      const dir = this.#dir(lock);
      void this.#ensureDir(dir)
        .then(async () => {
          if (this.#watchers.get(lock) !== created) return;
          created.watcher = watch(dir, (_event, name) => this.#onWatchEvent(lock, created, name === null ? undefined : String(name)));
          created.watcher.on('error', () => created.watcher?.close());
          const [newest] = await this.#versions(lock);
          if (created.generation === 0) created.newest = newest;
        })
        .catch(() => undefined);
    }
    entry.listeners.add(onChange);
    const current = entry;
    return () => {
      current.listeners.delete(onChange);
      if (current.listeners.size === 0) {
        current.watcher?.close();
        if (this.#watchers.get(lock) === current) this.#watchers.delete(lock);
      }
    };
  }

  #onWatchEvent(lock: string, entry: WatchEntry, name: string | undefined): void {
    const m = name === undefined ? null : /^v(\d+)\.json$/.exec(name);
    if (name !== undefined && !m) return;
    const version = m ? Number(m[1]) : undefined;
    if (version !== undefined && (entry.newest === undefined || version > entry.newest)) {
      this.#report(entry, version);
      return;
    }
    void this.#recheck(lock, entry);
  }

  #report(entry: WatchEntry, newest: number | undefined): void {
    entry.newest = newest;
    entry.generation += 1;
    for (const l of entry.listeners) l(newest === undefined ? undefined : String(newest));
  }

  /** Lists the folder (one listing at a time, coalescing events) and reports only a changed newest record. */
  async #recheck(lock: string, entry: WatchEntry): Promise<void> {
    if (entry.checking) {
      entry.recheck = true;
      return;
    }
    entry.checking = true;
    try {
      do {
        entry.recheck = false;
        const generation = entry.generation;
        const [newest] = await this.#versions(lock).catch(() => [] as number[]);
        // A newer version reported meanwhile makes this listing stale.
        if (generation === entry.generation && newest !== entry.newest && entry.listeners.size > 0) this.#report(entry, newest);
      } while (entry.recheck);
    } finally {
      entry.checking = false;
    }
  }

  /** Members touch `<root>/<lock>/members/<id>` (a file of their own, 0600, never through a symlink). */
  async heartbeat(lock: string, memberId: string): Promise<void> {
    const dir = join(this.#dir(lock), 'members');
    const name = memberFileName(memberId);
    const file = join(dir, name);
    this.#own.add(`${lock}/${name}`);
    const now = new Date();
    try {
      // lutimes never follows a link: a link planted there changes only its own times, and is not listed.
      await lutimes(file, now, now);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.#ensureDir(this.#dir(lock), true);
      await this.#ensureDir(dir, true);
      const handle = await open(file, CREATE_NEW, 0o600).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EEXIST') return undefined;
        throw e;
      });
      await handle?.chmod(0o600);
      await handle?.close();
    }
  }

  /**
   * Each member's heartbeat file with its modification time, as the file says (another machine's
   * clock may have written it): for a one-shot reader such as `dromedary status`, which can only
   * judge it as a hint. Members judge liveness with members().
   */
  async heartbeats(lock: string): Promise<{ member: string; file: string; mtimeMs: number }[]> {
    const dir = join(this.#dir(lock), 'members');
    const names = await readdir(dir).catch(() => [] as string[]);
    const beats: { member: string; file: string; mtimeMs: number }[] = [];
    for (const name of names) {
      const info = await lstat(join(dir, name)).catch(() => undefined);
      if (info?.isFile()) beats.push({ member: decodeURIComponent(name), file: name, mtimeMs: info.mtimeMs });
    }
    return beats;
  }

  /**
   * The members seen alive: this one, and those whose heartbeat file this member saw change within
   * memberTimeout on its own monotonic clock. Never by the times in the files: a dead member whose
   * clock ran fast would stay listed, one whose clock ran slow would never be.
   */
  async members(lock: string): Promise<string[]> {
    const now = performance.now();
    const seen = this.#heartbeats.get(lock) ?? new Map<string, { mtimeMs: number; seenAt: number }>();
    this.#heartbeats.set(lock, seen);
    const beats = await this.heartbeats(lock);
    const alive: string[] = [];
    for (const { member, file, mtimeMs } of beats) {
      const previous = seen.get(file);
      // A file seen for the first time may be a dead member's: it counts once it changes.
      if (!previous) seen.set(file, { mtimeMs, seenAt: -Infinity });
      else if (previous.mtimeMs !== mtimeMs) seen.set(file, { mtimeMs, seenAt: now });
      const alivePeer = now - seen.get(file)!.seenAt < this.#memberTimeout;
      if (alivePeer || this.#own.has(`${lock}/${file}`)) alive.push(member);
    }
    const files = new Set(beats.map((b) => b.file));
    for (const file of seen.keys()) if (!files.has(file)) seen.delete(file);
    return alive;
  }

  async close(): Promise<void> {
    for (const entry of this.#watchers.values()) entry.watcher?.close();
    this.#watchers.clear();
  }
}

interface WatchEntry {
  watcher: FSWatcher | undefined;
  listeners: Set<(version?: string) => void>;
  /** The newest version reported (or found when the watch began). */
  newest: number | undefined;
  /** Counts reports, so a folder listing that raced a newer report is discarded. */
  generation: number;
  checking: boolean;
  recheck: boolean;
}

/** encodeURIComponent, and dots too: no member id can name `.`, `..` or a hidden file. */
function memberFileName(memberId: string): string {
  return encodeURIComponent(memberId).replace(/\./g, '%2E');
}

/** Reads a file of this store, never through a symbolic link. */
async function readOwnFile(file: string): Promise<string> {
  const handle = await open(file, O_RDONLY | O_NOFOLLOW);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
