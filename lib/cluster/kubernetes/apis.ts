import type { V1ConfigMap, V1ConfigMapList, V1Lease, V1LeaseList, V1Pod, V1PodList, V1Status } from '@kubernetes/client-node';
import type { CallOptions, KubeTransport, Query } from './transport.ts';

/**
 * The few calls the Lease and ConfigMap stores, pod membership and `dromedary status` make, named and
 * shaped as client-node's generated clients (a parameter object, then options) so code reads the same.
 * Objects are the API server's JSON as sent: times are strings, not Dates (leaseRecord reads both).
 */
interface Named {
  name: string;
  namespace: string;
}
interface Listed {
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  limit?: number;
  _continue?: string;
}

/** A namespaced collection, e.g. `/apis/coordination.k8s.io/v1` + `leases`. */
class Collection<T, L> {
  readonly #transport: KubeTransport;
  readonly #prefix: string;
  readonly #plural: string;

  constructor(transport: KubeTransport, prefix: string, plural: string) {
    this.#transport = transport;
    this.#prefix = prefix;
    this.#plural = plural;
  }

  #path(namespace: string, name?: string): string {
    const base = `${this.#prefix}/namespaces/${encodeURIComponent(namespace)}/${this.#plural}`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }

  read(p: Named, o?: CallOptions): Promise<T> {
    return this.#transport.call<T>('GET', this.#path(p.namespace, p.name), {}, undefined, o);
  }

  list(p: Listed, o?: CallOptions): Promise<L> {
    const query: Query = { labelSelector: p.labelSelector, fieldSelector: p.fieldSelector, resourceVersion: p.resourceVersion, limit: p.limit, continue: p._continue };
    return this.#transport.call<L>('GET', this.#path(p.namespace), query, undefined, o);
  }

  create(p: { namespace: string; body: T }, o?: CallOptions): Promise<T> {
    return this.#transport.call<T>('POST', this.#path(p.namespace), {}, p.body, o);
  }

  /** PUT: the body's resourceVersion (and uid) are the preconditions; a mismatch is 409 Conflict. */
  replace(p: Named & { body: T }, o?: CallOptions): Promise<T> {
    return this.#transport.call<T>('PUT', this.#path(p.namespace, p.name), {}, p.body, o);
  }

  delete(p: Named, o?: CallOptions): Promise<V1Status> {
    return this.#transport.call<V1Status>('DELETE', this.#path(p.namespace, p.name), {}, undefined, o);
  }
}

export class CoordinationV1Api {
  readonly #leases: Collection<V1Lease, V1LeaseList>;

  constructor(transport: KubeTransport) {
    this.#leases = new Collection(transport, '/apis/coordination.k8s.io/v1', 'leases');
  }

  readNamespacedLease(p: Named, o?: CallOptions): Promise<V1Lease> {
    return this.#leases.read(p, o);
  }
  listNamespacedLease(p: Listed, o?: CallOptions): Promise<V1LeaseList> {
    return this.#leases.list(p, o);
  }
  createNamespacedLease(p: { namespace: string; body: V1Lease }, o?: CallOptions): Promise<V1Lease> {
    return this.#leases.create(p, o);
  }
  replaceNamespacedLease(p: Named & { body: V1Lease }, o?: CallOptions): Promise<V1Lease> {
    return this.#leases.replace(p, o);
  }
  deleteNamespacedLease(p: Named, o?: CallOptions): Promise<V1Status> {
    return this.#leases.delete(p, o);
  }
}

export class CoreV1Api {
  readonly #configMaps: Collection<V1ConfigMap, V1ConfigMapList>;
  readonly #pods: Collection<V1Pod, V1PodList>;

  constructor(transport: KubeTransport) {
    this.#configMaps = new Collection(transport, '/api/v1', 'configmaps');
    this.#pods = new Collection(transport, '/api/v1', 'pods');
  }

  readNamespacedConfigMap(p: Named, o?: CallOptions): Promise<V1ConfigMap> {
    return this.#configMaps.read(p, o);
  }
  listNamespacedConfigMap(p: Listed, o?: CallOptions): Promise<V1ConfigMapList> {
    return this.#configMaps.list(p, o);
  }
  createNamespacedConfigMap(p: { namespace: string; body: V1ConfigMap }, o?: CallOptions): Promise<V1ConfigMap> {
    return this.#configMaps.create(p, o);
  }
  replaceNamespacedConfigMap(p: Named & { body: V1ConfigMap }, o?: CallOptions): Promise<V1ConfigMap> {
    return this.#configMaps.replace(p, o);
  }
  deleteNamespacedConfigMap(p: Named, o?: CallOptions): Promise<V1Status> {
    return this.#configMaps.delete(p, o);
  }
  readNamespacedPod(p: Named, o?: CallOptions): Promise<V1Pod> {
    return this.#pods.read(p, o);
  }
  listNamespacedPod(p: Listed, o?: CallOptions): Promise<V1PodList> {
    return this.#pods.list(p, o);
  }
  deleteNamespacedPod(p: Named, o?: CallOptions): Promise<V1Status> {
    return this.#pods.delete(p, o);
  }
}

/** A MicroTime: JSON with six fractional digits, as client-go writes Lease times (client-node's V1MicroTime). */
export class V1MicroTime extends Date {
  override toISOString(): string {
    return `${super.toISOString().slice(0, -1)}000Z`;
  }
}
