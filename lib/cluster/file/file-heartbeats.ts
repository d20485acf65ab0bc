import { randomBytes } from 'node:crypto';
import { constants, watch, type FSWatcher } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { HeartbeatBackend, HeartbeatRecord, VersionedHeartbeat } from '../election/heartbeat-store.ts';
import type { VersionedRecord } from '../election/lock-store.ts';
import type { FileLockStore } from './file-lock-store.ts';
import { currentUid, preparePrivateFolder } from './private-folder.ts';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

/** The folder of heartbeat files; lock names never start with a dot, so no lock's folder is called so. */
export const HEARTBEATS_FOLDER = '.heartbeats';

/**
 * Heartbeat mode's records as files (see election/heartbeat-store.ts): one per member process,
 * `<root>/.heartbeats/<instance>.json`, replaced whole at each heartbeat (written to a temporary file,
 * fsynced, renamed over the old one), carrying the member, the instance, a sequence number (its
 * version), the time and the locks it keeps alive. Lock records stay in the file lock store; each one
 * held in heartbeat mode names its holder's heartbeat file. The same rules as the lock files hold:
 * folders 0700 and checked to be this user's, files 0600, never read or written through a symlink.
 */
export class FileHeartbeatBackend implements HeartbeatBackend {
  readonly #locks: FileLockStore;
  readonly #dir: string;
  #sequence = 0;
  #checked = false;
  #watcher: FSWatcher | undefined;
  readonly #listeners = new Map<string, Set<(beat: VersionedHeartbeat | null) => void>>();
  readonly get: HeartbeatBackend['get'];
  readonly create: HeartbeatBackend['create'];
  readonly update: HeartbeatBackend['update'];
  readonly watch: NonNullable<HeartbeatBackend['watch']>;
  readonly members: NonNullable<HeartbeatBackend['members']>;
  readonly heartbeat: NonNullable<HeartbeatBackend['heartbeat']>;

  constructor(locks: FileLockStore) {
    this.#locks = locks;
    this.#dir = join(locks.root, HEARTBEATS_FOLDER);
    this.get = (lock, signal) => locks.get(lock, signal);
    this.create = (lock, record, signal) => locks.create(lock, record, signal);
    this.update = (lock, record, version, signal) => locks.update(lock, record, version, signal);
    this.watch = (lock, onChange) => locks.watch(lock, onChange);
    this.members = (lock) => locks.members(lock);
    this.heartbeat = (lock, memberId) => locks.heartbeat(lock, memberId);
  }

  heartbeatKey(_memberId: string, instanceId: string): string {
    return encodeURIComponent(instanceId).replace(/\./g, '%2E');
  }

  #file(key: string): string {
    if (key === '' || key.includes('/') || key.startsWith('.')) throw new Error(`not a heartbeat name: ${JSON.stringify(key)}`);
    return join(this.#dir, `${key}.json`);
  }

  async #ensureDir(again = false): Promise<void> {
    if (this.#checked && !again) return;
    try {
      await mkdir(this.#dir, { mode: 0o700 });
      await chmod(this.#dir, 0o700);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await preparePrivateFolder(this.#locks.root, 'DROMEDARY_CLUSTER_ROOT');
        return this.#ensureDir(true);
      }
      if (code !== 'EEXIST') throw err;
    }
    const info = await lstat(this.#dir);
    const uid = currentUid();
    if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) {
      throw new Error(`${this.#dir} is not a folder of this user (${info.isSymbolicLink() ? 'a symbolic link' : `owner ${info.uid}`}): remove it`);
    }
    this.#checked = true;
  }

  async readHeartbeat(key: string): Promise<VersionedHeartbeat | undefined> {
    let text: string;
    try {
      const handle = await open(this.#file(key), O_RDONLY | O_NOFOLLOW);
      try {
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const data = JSON.parse(text) as HeartbeatRecord & { sequence: number };
    return { version: String(data.sequence), record: { member: data.member, instance: data.instance, renewTime: data.renewTime, locks: data.locks ?? [] } };
  }

  async writeHeartbeat(key: string, record: HeartbeatRecord): Promise<VersionedHeartbeat> {
    await this.#ensureDir();
    this.#sequence += 1;
    const sequence = this.#sequence;
    const temp = join(this.#dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    let handle;
    try {
      handle = await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.#ensureDir(true);
      handle = await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    }
    try {
      await handle.chmod(0o600);
      await handle.writeFile(JSON.stringify({ ...record, sequence }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      // rename(2) replaces the name atomically, and a symlink planted there is replaced, never followed.
      await rename(temp, this.#file(key));
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    return { version: String(sequence), record };
  }

  watchHeartbeat(key: string, onChange: (beat: VersionedHeartbeat | null) => void): () => void {
    const set = this.#listeners.get(key) ?? new Set();
    this.#listeners.set(key, set);
    set.add(onChange);
    this.#startWatch();
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.#listeners.delete(key);
      if (this.#listeners.size === 0) {
        this.#watcher?.close();
        this.#watcher = undefined;
      }
    };
  }

  #startWatch(): void {
    if (this.#watcher) return;
    const starting = this.#ensureDir().then(() => {
      if (this.#watcher || this.#listeners.size === 0) return;
      this.#watcher = watch(this.#dir, (_event, name) => {
        const file = name === null ? '' : String(name);
        if (!file.endsWith('.json')) return;
        const key = file.slice(0, -'.json'.length);
        const listeners = this.#listeners.get(key);
        if (!listeners) return;
        void this.readHeartbeat(key)
          .then((beat) => {
            for (const l of [...listeners]) l(beat ?? null);
          })
          .catch(() => undefined);
      });
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    });
    starting.catch(() => undefined);
  }

  /** Every heartbeat file (the member list): read whole at each round, as fs.watch misses other machines' writes. */
  async listHeartbeats(): Promise<Map<string, VersionedHeartbeat>> {
    const beats = new Map<string, VersionedHeartbeat>();
    // No folder yet is no heartbeat (and a reader such as `dromedary status` creates nothing).
    try {
      await lstat(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return beats;
      throw err;
    }
    await this.#ensureDir();
    for (const file of await readdir(this.#dir)) {
      if (!file.endsWith('.json') || file.startsWith('.')) continue;
      const key = file.slice(0, -'.json'.length);
      // Gone or half-seen meanwhile (a member stopping): the next round sees it again.
      const beat = await this.readHeartbeat(key).catch(() => undefined);
      if (beat) beats.set(key, beat);
    }
    return beats;
  }

  async readHeld(key: string, locks: readonly string[], signal: AbortSignal): Promise<Map<string, VersionedRecord>> {
    const held = new Map<string, VersionedRecord>();
    for (const lock of locks) {
      const current = await this.#locks.get(lock, signal);
      if (current?.record.heartbeat === key) held.set(lock, current);
    }
    return held;
  }

  async removeHeartbeat(key: string): Promise<void> {
    await unlink(this.#file(key)).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#locks.close();
  }
}
