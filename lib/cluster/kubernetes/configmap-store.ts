import { LockConflictError, type LockRecord, type LockStore, type VersionedRecord } from '../election/lock-store.ts';
import type { Logger } from '../../logging/logger.ts';
import { apiTarget, describeApiFailure, forbiddenDetail, KubernetesForbiddenError, statusOf, withSignal, type ApiTarget, type K8s } from './client.ts';
import { ResourceWatch } from './resource-watch.ts';
import type { PodMembers } from './pod-members.ts';
import { parseState } from '../state-value.ts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;
type ConfigMap = import('@kubernetes/client-node').V1ConfigMap;

export interface ConfigMapStoreOptions {
  namespace: string;
  /** The one ConfigMap holding every lock (Camel's default: `leaders`). */
  name: string;
  labels: Record<string, string>;
  /** Reported as the record's lease; the ConfigMap itself stores none. */
  leaseDurationMs: number;
  members: PodMembers;
  /** How long the ConfigMap watch may stay silent before it counts as dead (see ResourceWatchOptions.idleMs). */
  watchIdleMs: number;
  logger: Logger;
}

const holderKey = (lock: string) => `leader.pod.${lock}`;
const timestampKey = (lock: string) => `leader.local.timestamp.${lock}`;
// Keys of dromedary's own, next to Camel's two (which Camel members go on reading as before).
const instanceKey = (lock: string) => `leader.instance.${lock}`;
const releasedKey = (lock: string) => `leader.released.${lock}`;
const tokenKey = (lock: string) => `leader.token.${lock}`;
/** The lock's leader state (ClusterView.state), as JSON. */
const stateKey = (lock: string) => `leader.state.${lock}`;

/**
 * The seed article's (and Camel's legacy) protocol: one ConfigMap holds `leader.pod.<lock>` for
 * every lock. A holder stays valid while its pod is a live member, not by a lease time, so this
 * store comes with holderValid and acquireDelay settings for the elector (see index.ts). All locks
 * share the ConfigMap's resourceVersion: a write for one lock makes a concurrent write for another
 * conflict, and that elector simply reads and tries again.
 */
export class ConfigMapLockStore implements LockStore {
  readonly #api: InstanceType<K8s['CoreV1Api']>;
  readonly #options: ConfigMapStoreOptions;
  readonly #watch: ResourceWatch;
  /** The server and the credentials' source, named when a request cannot reach it or is refused. */
  readonly #target: ApiTarget;
  /** The ConfigMap as last read or written, to write back every other lock's keys unchanged. */
  #last: ConfigMap | undefined;

  constructor(k8s: K8s, kc: KubeConfig, options: ConfigMapStoreOptions) {
    this.#target = apiTarget(kc);
    this.#api = kc.makeApiClient(k8s.CoreV1Api);
    this.#options = options;
    this.#watch = new ResourceWatch(k8s, kc, {
      path: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/configmaps`,
      query: { fieldSelector: `metadata.name=${options.name}` },
      keysOf: () => ['configmap'],
      idleMs: options.watchIdleMs,
      logger: options.logger,
    });
  }

  async #read(signal: AbortSignal): Promise<ConfigMap | undefined> {
    try {
      this.#last = await this.#api.readNamespacedConfigMap({ name: this.#options.name, namespace: this.#options.namespace }, withSignal(signal));
      return this.#last;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#explain(err, 'get');
    }
  }

  #record(map: ConfigMap, lock: string): VersionedRecord {
    const data = map.data ?? {};
    const token = Number(data[tokenKey(lock)]);
    const state = parseState(data[stateKey(lock)]);
    return {
      version: String(map.metadata?.resourceVersion ?? ''),
      record: {
        holderIdentity: data[holderKey(lock)] ?? '',
        leaseDurationMs: this.#options.leaseDurationMs,
        acquireTime: data[timestampKey(lock)] ?? '',
        renewTime: data[timestampKey(lock)] ?? '',
        leaseTransitions: 0,
        ...(data[instanceKey(lock)] ? { holderInstance: data[instanceKey(lock)] } : {}),
        ...(data[releasedKey(lock)] ? { releasedBy: data[releasedKey(lock)] } : {}),
        ...(data[tokenKey(lock)] && Number.isSafeInteger(token) ? { fencingToken: token } : {}),
        ...(state ? { state } : {}),
      },
    };
  }

  async get(lock: string, signal: AbortSignal): Promise<VersionedRecord | undefined> {
    const map = await this.#read(signal);
    return map ? this.#record(map, lock) : undefined;
  }

  async create(lock: string, record: LockRecord, signal: AbortSignal): Promise<VersionedRecord> {
    const body: ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: this.#options.name, namespace: this.#options.namespace, labels: { ...this.#options.labels, kind: 'locks' } },
      data: this.#data({}, lock, record),
    };
    try {
      this.#last = await this.#api.createNamespacedConfigMap({ namespace: this.#options.namespace, body }, withSignal(signal));
      return this.#record(this.#last, lock);
    } catch (err) {
      if (statusOf(err) === 409) throw new LockConflictError(lock, `the ConfigMap ${this.#options.name} already exists`);
      throw this.#explain(err, 'create');
    }
  }

  async update(lock: string, record: LockRecord, expectedVersion: string, signal: AbortSignal): Promise<VersionedRecord> {
    const base = this.#last?.metadata?.resourceVersion === expectedVersion ? this.#last : await this.#read(signal);
    if (!base || base.metadata?.resourceVersion !== expectedVersion) throw new LockConflictError(lock, 'the locks ConfigMap changed since it was read');
    const body: ConfigMap = { ...base, metadata: { ...base.metadata }, data: this.#data(base.data ?? {}, lock, record) };
    try {
      this.#last = await this.#api.replaceNamespacedConfigMap({ name: this.#options.name, namespace: this.#options.namespace, body }, withSignal(signal));
      return this.#record(this.#last, lock);
    } catch (err) {
      if (statusOf(err) === 409) throw new LockConflictError(lock, 'the locks ConfigMap changed since it was read (409 Conflict)');
      // Deleted since it was read: a lost race, so the elector reads again and finds no record.
      if (statusOf(err) === 404) throw new LockConflictError(lock, 'the locks ConfigMap was deleted since it was read (404 Not Found)');
      throw this.#explain(err, 'update');
    }
  }

  /**
   * This lock's keys set to the record (Camel's two removed when released, the release marker kept);
   * every other key as it was.
   */
  #data(previous: Record<string, string>, lock: string, record: LockRecord): Record<string, string> {
    const data = { ...previous };
    const set = (key: string, value: string | undefined) => {
      if (value === undefined || value === '') delete data[key];
      else data[key] = value;
    };
    if (record.holderIdentity === '') {
      delete data[holderKey(lock)];
      delete data[timestampKey(lock)];
    } else {
      data[holderKey(lock)] = record.holderIdentity;
      data[timestampKey(lock)] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    }
    set(instanceKey(lock), record.holderInstance);
    set(releasedKey(lock), record.releasedBy);
    set(tokenKey(lock), record.fencingToken === undefined ? undefined : String(record.fencingToken));
    set(stateKey(lock), record.state ? JSON.stringify(record.state) : undefined);
    return data;
  }

  /** Changes to the ConfigMap, and to the member pods (a holder's pod going away frees its locks). */
  watch(lock: string, onChange: (version?: string, record?: LockRecord | null) => void): () => void {
    const offMap = this.#watch.subscribe('configmap', (version, object, type) =>
      onChange(version, type === 'DELETED' ? null : object && type !== 'DISCONNECTED' ? this.#record(object as ConfigMap, lock).record : undefined),
    );
    // A pod change carries no lock version; naming it by the pod's resourceVersion (never equal to
    // a ConfigMap version) makes an elector that is busy with an attempt check again afterwards
    // instead of dropping the notice, so a holder's pod going away is never noticed one lease late.
    const offPods = this.#options.members.watch.subscribe('pods', (version) => onChange(version === undefined ? undefined : `pod@${version}`));
    return () => {
      offMap();
      offPods();
    };
  }

  watching(_lock: string): boolean {
    return this.#watch.live;
  }

  async members(_lock: string, signal: AbortSignal): Promise<string[]> {
    return this.#options.members.live(signal);
  }

  async close(): Promise<void> {
    this.#watch.close();
    this.#options.members.watch.close();
  }

  #explain(err: unknown, verb: string): Error {
    if (statusOf(err) === 403) {
      const error = new KubernetesForbiddenError(verb, 'configmaps', this.#options.namespace, forbiddenDetail(err));
      this.#options.logger.error(error.message);
      return error;
    }
    const failure = describeApiFailure(err, this.#target);
    if (failure) return new Error(`${verb} ConfigMap ${this.#options.name} failed: ${failure}`, { cause: err });
    const status = statusOf(err);
    return new Error(`${verb} ConfigMap ${this.#options.name} failed${status ? ` with HTTP ${status}` : ''}: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`);
  }
}
