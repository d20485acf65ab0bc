/**
 * The object store and its write semantics, as the apiserver's generic registry and the etcd3
 * storage layer behave: one global resourceVersion shared by every resource, bumped on each real
 * write; byte-identical writes skipped (no bump, no event); create/update/delete preconditions
 * with the exact Status errors; and a bounded event history that watches resume from.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  ApiError,
  MODIFIED_CONFLICT,
  alreadyExists,
  badRequest,
  conflict,
  internalNoReason,
  invalid,
  notFound,
  preconditionConflict,
} from './status.ts';
import { formatTime } from './microtime.ts';
import { stableStringify } from './patch.ts';
import { type DecodedObject, type KubeObject, type ResourceType, invalidObject } from './resources.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  /** The resourceVersion this write produced. */
  rv: number;
  resource: ResourceType;
  /** The object after the write (for DELETED: the last state, carrying the deletion's resourceVersion). */
  object: KubeObject;
  /** The object before the write, so a filtered watch can turn "stopped matching" into DELETED. */
  previous?: KubeObject;
}

export interface DeletePreconditions {
  resourceVersion?: string;
  uid?: string;
}

const GENERATE_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

function generateSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += GENERATE_CHARS[Math.floor(Math.random() * GENERATE_CHARS.length)];
  return s;
}

const key = (ns: string, name: string): string => `${ns}/${name}`;

/** Compared for no-op detection: the stored form without its resourceVersion, like etcd's stored bytes. */
function storedForm(obj: KubeObject): string {
  const { resourceVersion: _rv, ...meta } = obj.metadata;
  return stableStringify({ ...obj, metadata: meta });
}

export class ObjectStore extends EventEmitter {
  private revision: number;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly historyLimit: number;
  /** Events with rv <= this are gone; a watch from an older resourceVersion gets 410 Expired. */
  private compacted: number;

  constructor(options: { historyLimit?: number; initialResourceVersion?: number } = {}) {
    super();
    this.setMaxListeners(0);
    this.historyLimit = options.historyLimit ?? 1000;
    this.revision = options.initialResourceVersion ?? 1;
    this.compacted = this.revision;
  }

  get resourceVersion(): number {
    return this.revision;
  }

  get compactedRevision(): number {
    return this.compacted;
  }

  /** Drops the event history up to the current revision: any watch from an older resourceVersion expires. */
  compact(): void {
    this.history.length = 0;
    this.compacted = this.revision;
  }

  /** History events after `rv`, or undefined when `rv` is older than the compaction point. */
  eventsSince(rv: number): StoreEvent[] | undefined {
    if (rv < this.compacted) return undefined;
    return this.history.filter((e) => e.rv > rv);
  }

  private bucket(type: ResourceType): Map<string, KubeObject> {
    let b = this.objects.get(type.plural);
    if (!b) this.objects.set(type.plural, (b = new Map()));
    return b;
  }

  get(type: ResourceType, namespace: string, name: string): KubeObject | undefined {
    const obj = this.bucket(type).get(key(namespace, name));
    return obj && structuredClone(obj);
  }

  /** Objects in key (namespace/name) order, as etcd lists them; all namespaces when namespace is undefined. */
  list(type: ResourceType, namespace?: string): KubeObject[] {
    const out = [...this.bucket(type).entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => structuredClone(o));
    return out;
  }

  private record(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compacted = dropped[dropped.length - 1]!.rv;
    }
    this.emit('event', event);
  }

  /** POST semantics. `keepStatus` lets the programmatic API create a pod with a status already set. */
  create(type: ResourceType, namespace: string, decoded: DecodedObject, options: { keepStatus?: boolean; dryRun?: boolean } = {}): KubeObject {
    const meta = decoded.metadata;
    if (meta.namespace && meta.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    let name = meta.name ?? '';
    if (!name && meta.generateName) name = `${meta.generateName}${generateSuffix()}`;
    if (!name) {
      throw invalidObject(type, '', [{ type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' }]);
    }
    const obj: KubeObject = {
      ...decoded,
      metadata: {
        ...meta,
        name,
        namespace,
        uid: randomUUID(),
        resourceVersion: '',
        creationTimestamp: formatTime(Date.now()),
      },
    };
    delete (obj.metadata as { selfLink?: string }).selfLink;
    delete obj.metadata.deletionTimestamp;
    delete (obj.metadata as { generation?: number }).generation;
    if (type.prepareForCreate && !options.keepStatus) type.prepareForCreate(obj);
    const errors = type.validate(obj);
    if (errors.length > 0) throw invalidObject(type, name, errors);
    if (this.bucket(type).has(key(namespace, name))) throw alreadyExists(type.gr, name);
    // Checked after validation, as the etcd3 store does when it is about to write.
    if (meta.resourceVersion) throw internalNoReason('resourceVersion should not be set on objects to be created');
    // dryRun=All: every check runs, nothing is written (the answer has no resourceVersion, as the apiserver's).
    if (options.dryRun) return structuredClone(type.order(obj));
    this.revision++;
    obj.metadata.resourceVersion = String(this.revision);
    const stored = type.order(obj);
    this.bucket(type).set(key(namespace, name), stored);
    this.record({ type: 'ADDED', rv: this.revision, resource: type, object: structuredClone(stored) });
    return structuredClone(stored);
  }

  /**
   * PUT semantics (and the final step of PATCH). `subresource: 'status'` replaces only the status;
   * a main-resource write keeps the old status. Returns the object and whether it was created.
   */
  update(
    type: ResourceType,
    namespace: string,
    name: string,
    decoded: DecodedObject,
    options: { subresource?: 'status'; fromPatch?: boolean; dryRun?: boolean } = {},
  ): { object: KubeObject; created: boolean } {
    const meta = decoded.metadata;
    if (meta.namespace && meta.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if ((meta.name ?? '') !== name) {
      throw badRequest(`the name of the object (${meta.name ?? ''}) does not match the name on the URL (${name})`);
    }
    const existing = this.bucket(type).get(key(namespace, name));
    if (meta.uid && (!existing || existing.metadata.uid !== meta.uid)) {
      throw preconditionConflict(type.gr, namespace, name, `UID in precondition: ${meta.uid}, UID in object meta: ${existing?.metadata.uid ?? ''}`);
    }
    if (!existing) {
      if (!type.allowCreateOnUpdate || options.subresource || options.fromPatch) throw notFound(type.gr, name);
      const { resourceVersion: _rv, ...rest } = meta;
      const object = this.create(type, namespace, { ...decoded, metadata: rest }, { dryRun: options.dryRun });
      return { object, created: true };
    }
    if (!meta.resourceVersion) {
      if (!type.allowUnconditionalUpdate) {
        throw invalid({ group: type.group, kind: type.plural }, name, [
          { type: 'FieldValueInvalid', field: 'metadata.resourceVersion', value: 0, detail: 'must be specified for an update' },
        ]);
      }
    } else if (meta.resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(type.gr, name, MODIFIED_CONFLICT);
    }
    let next: KubeObject;
    if (options.subresource === 'status') {
      next = { ...structuredClone(existing), status: decoded.status ?? {} };
    } else {
      next = {
        ...decoded,
        metadata: {
          ...meta,
          name,
          namespace,
          uid: existing.metadata.uid,
          resourceVersion: existing.metadata.resourceVersion,
          creationTimestamp: existing.metadata.creationTimestamp,
        },
      };
      if (existing.metadata.generateName && !meta.generateName) next.metadata.generateName = existing.metadata.generateName;
      delete (next.metadata as { selfLink?: string }).selfLink;
      if (type.hasStatus) {
        if (existing.status === undefined) delete next.status;
        else next.status = structuredClone(existing.status);
      }
    }
    const errors = type.validate(next, existing);
    if (errors.length > 0) throw invalidObject(type, name, errors);
    const ordered = type.order(next);
    if (storedForm(ordered) === storedForm(existing)) return { object: structuredClone(existing), created: false };
    if (options.dryRun) return { object: structuredClone(ordered), created: false };
    this.revision++;
    ordered.metadata.resourceVersion = String(this.revision);
    this.bucket(type).set(key(namespace, name), ordered);
    this.record({ type: 'MODIFIED', rv: this.revision, resource: type, object: structuredClone(ordered), previous: existing });
    return { object: structuredClone(ordered), created: false };
  }

  delete(type: ResourceType, namespace: string, name: string, preconditions: DeletePreconditions = {}, options: { dryRun?: boolean } = {}): KubeObject {
    const existing = this.bucket(type).get(key(namespace, name));
    if (!existing) throw notFound(type.gr, name);
    if (preconditions.uid && preconditions.uid !== existing.metadata.uid) {
      throw preconditionConflict(type.gr, namespace, name, `UID in precondition: ${preconditions.uid}, UID in object meta: ${existing.metadata.uid}`);
    }
    if (preconditions.resourceVersion && preconditions.resourceVersion !== existing.metadata.resourceVersion) {
      throw preconditionConflict(
        type.gr,
        namespace,
        name,
        `ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
      );
    }
    if (options.dryRun) return structuredClone(existing);
    this.bucket(type).delete(key(namespace, name));
    this.revision++;
    const last = structuredClone(existing);
    last.metadata.resourceVersion = String(this.revision);
    this.record({ type: 'DELETED', rv: this.revision, resource: type, object: structuredClone(last), previous: existing });
    return last;
  }
}

export { ApiError };
