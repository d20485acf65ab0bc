import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { link, mkdir, open, readdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LockConflictError, type LockRecord, type LockStore, type VersionedRecord } from '../election/lock-store.ts';

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
 * leader learns its record was deleted instead of silently writing it back.
 *
 * NFS and other shared filesystems: link(2) is atomic on the server, which is why NFS-safe lock
 * files use it; but directory listings can be cached for a few seconds, so members see changes
 * late (that costs failover time, not safety, since expiry is judged from when a member saw a
 * change), and fs.watch does not fire for other machines' writes, so members fall back to polling
 * every retryPeriod. Avoid filesystems without hard links (some FUSE and SMB mounts): the store
 * refuses to start there.
 */
export class FileLockStore implements LockStore {
  readonly root: string;
  readonly #keep: number;
  readonly #watchers = new Map<string, { watcher: FSWatcher | undefined; listeners: Set<(version?: string) => void> }>();

  constructor(root: string, options: { keepVersions?: number } = {}) {
    this.root = root;
    this.#keep = options.keepVersions ?? 8;
  }

  #dir(lock: string): string {
    return join(this.root, encodeURIComponent(lock));
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
        const record = JSON.parse(await readFile(this.#file(lock, latest), 'utf8')) as LockRecord;
        return { record, version: String(latest) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw new Error(`lock ${lock}: its record kept changing while being read`);
  }

  async create(lock: string, record: LockRecord, _signal?: AbortSignal): Promise<VersionedRecord> {
    await mkdir(this.#dir(lock), { recursive: true });
    return this.#publish(lock, record, 1, 'already exists');
  }

  async update(lock: string, record: LockRecord, expectedVersion: string, _signal?: AbortSignal): Promise<VersionedRecord> {
    const expected = Number(expectedVersion);
    if (!Number.isInteger(expected)) throw new LockConflictError(lock, `not a version of this store: ${expectedVersion}`);
    return this.#publish(lock, record, expected + 1, 'the record changed since it was read', expected);
  }

  /**
   * Publishes `version`. For an update, `basedOn` (the version read) must still be there once the new
   * one is published: the newest few versions are never collected, so only a deletion of the record
   * removes it, and the update is then withdrawn and lost like any other race.
   */
  async #publish(lock: string, record: LockRecord, version: number, conflict: string, basedOn?: number): Promise<VersionedRecord> {
    const temp = join(this.#dir(lock), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    let handle;
    try {
      handle = await open(temp, 'wx');
    } catch (err) {
      if (basedOn !== undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') throw new LockConflictError(lock, 'its folder was removed (the record was deleted)');
      throw err;
    }
    try {
      await handle.writeFile(JSON.stringify(record));
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
    if (basedOn !== undefined && basedOn > 0 && !versions.includes(basedOn)) {
      await unlink(this.#file(lock, version)).catch(() => undefined);
      throw new LockConflictError(lock, 'the record was deleted since it was read');
    }
    void this.#collect(lock, versions);
    return { record, version: String(version) };
  }

  /** Deletes all but the newest versions, and temporary files a crashed writer left behind. */
  async #collect(lock: string, versions: number[]): Promise<void> {
    for (const old of versions.slice(this.#keep)) await unlink(this.#file(lock, old)).catch(() => undefined);
    if (versions[0]! % 64 !== 0) return;
    const dir = this.#dir(lock);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith('.tmp-')) continue;
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > 60_000) await unlink(join(dir, name)).catch(() => undefined);
    }
  }

  watch(lock: string, onChange: (version?: string) => void): () => void {
    let entry = this.#watchers.get(lock);
    if (!entry) {
      entry = { watcher: undefined, listeners: new Set() };
      this.#watchers.set(lock, entry);
      const current = entry;
      void mkdir(this.#dir(lock), { recursive: true })
        .then(() => {
          if (!this.#watchers.has(lock)) return;
          current.watcher = watch(this.#dir(lock), (_event, name) => {
            const m = name ? /^v(\d+)\.json$/.exec(String(name)) : null;
            if (name && !m) return;
            const version = m ? String(Number(m[1])) : undefined;
            for (const l of current.listeners) l(version);
          });
          current.watcher.on('error', () => current.watcher?.close());
        })
        .catch(() => undefined);
    }
    entry.listeners.add(onChange);
    return () => {
      entry.listeners.delete(onChange);
      if (entry.listeners.size === 0) {
        entry.watcher?.close();
        this.#watchers.delete(lock);
      }
    };
  }

  /** Members touch `<root>/<lock>/members/<id>`; the ones touched within the lease are alive. */
  async heartbeat(lock: string, memberId: string): Promise<void> {
    const dir = join(this.#dir(lock), 'members');
    const file = join(dir, encodeURIComponent(memberId));
    const now = new Date();
    await utimes(file, now, now).catch(async () => {
      await mkdir(dir, { recursive: true });
      await writeFile(file, '');
    });
  }

  async members(lock: string): Promise<string[]> {
    const dir = join(this.#dir(lock), 'members');
    const current = await this.get(lock).catch(() => undefined);
    const horizon = Date.now() - Math.max(current?.record.leaseDurationMs ?? 15_000, 1000);
    const names = await readdir(dir).catch(() => [] as string[]);
    const alive: string[] = [];
    for (const name of names) {
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (info && info.mtimeMs >= horizon) alive.push(decodeURIComponent(name));
    }
    return alive;
  }

  async close(): Promise<void> {
    for (const entry of this.#watchers.values()) entry.watcher?.close();
    this.#watchers.clear();
  }
}
