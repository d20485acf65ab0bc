import { MemoryLockStore } from '../memory/memory-store.ts';
import type { VersionedRecord } from './lock-store.ts';
import type { HeartbeatBackend, HeartbeatRecord, VersionedHeartbeat } from './heartbeat-store.ts';

/**
 * The memory store with heartbeat records, for tests of heartbeat mode and several members in one
 * process. `heartbeatRequests` counts its heartbeat reads and writes and its lock listings.
 */
export class MemoryHeartbeatBackend extends MemoryLockStore implements HeartbeatBackend {
  readonly #beats = new Map<string, VersionedHeartbeat>();
  readonly #beatWatchers = new Map<string, Set<(beat: VersionedHeartbeat | null) => void>>();
  readonly #allWatchers = new Set<(key: string, beat: VersionedHeartbeat | null) => void>();
  #beatVersion = 0;
  heartbeatWrites = 0;
  heartbeatReads = 0;
  heldReads = 0;

  heartbeatKey(memberId: string, instanceId: string): string {
    return `${memberId}/${instanceId}`;
  }

  async readHeartbeat(key: string): Promise<VersionedHeartbeat | undefined> {
    this.heartbeatReads += 1;
    return this.#beats.get(key);
  }

  async writeHeartbeat(key: string, record: HeartbeatRecord): Promise<VersionedHeartbeat> {
    this.heartbeatWrites += 1;
    this.#beatVersion += 1;
    const beat = { version: `h${this.#beatVersion}`, record: { ...record, locks: [...record.locks] } };
    this.#beats.set(key, beat);
    for (const w of this.#beatWatchers.get(key) ?? []) setImmediate(w, beat);
    for (const w of this.#allWatchers) setImmediate(w, key, beat);
    return beat;
  }

  peekHeartbeat(key: string): VersionedHeartbeat | undefined {
    return this.#beats.get(key);
  }

  watchHeartbeat(key: string, onChange: (beat: VersionedHeartbeat | null) => void): () => void {
    const set = this.#beatWatchers.get(key) ?? new Set();
    this.#beatWatchers.set(key, set);
    set.add(onChange);
    return () => set.delete(onChange);
  }

  async readHeld(key: string, locks: readonly string[]): Promise<Map<string, VersionedRecord>> {
    this.heldReads += 1;
    const held = new Map<string, VersionedRecord>();
    for (const lock of locks) {
      const current = this.peek(lock);
      if (current?.record.heartbeat === key) held.set(lock, current);
    }
    return held;
  }

  async removeHeartbeat(key: string): Promise<void> {
    if (!this.#beats.delete(key)) return;
    for (const w of this.#beatWatchers.get(key) ?? []) setImmediate(w, null);
    for (const w of this.#allWatchers) setImmediate(w, key, null);
  }

  watchHeartbeats(onChange: (key: string, beat: VersionedHeartbeat | null) => void): () => void {
    this.#allWatchers.add(onChange);
    return () => this.#allWatchers.delete(onChange);
  }
}
