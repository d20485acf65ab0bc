import type { Logger } from '../../logging/logger.ts';
import { forbiddenDetail, KubernetesForbiddenError, statusOf, withSignal, type K8s } from './client.ts';
import { ResourceWatch } from './resource-watch.ts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;
type Pod = import('@kubernetes/client-node').V1Pod;

/** Camel's "pod liveness" (CAMEL-21720): a member is a pod that is Running and Ready. */
export function isLivePod(pod: Pod): boolean {
  return pod.status?.phase === 'Running' && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * The cluster's members in ConfigMap mode: the pods matching the cluster labels that are Running
 * and Ready. An empty label set means every pod of the namespace, as in Camel.
 */
export class PodMembers {
  readonly #api: InstanceType<K8s['CoreV1Api']>;
  readonly #namespace: string;
  readonly #selector: string;
  readonly watch: ResourceWatch;

  constructor(k8s: K8s, kc: KubeConfig, namespace: string, labels: Record<string, string>, watchIdleMs: number, logger: Logger) {
    this.#api = kc.makeApiClient(k8s.CoreV1Api);
    this.#namespace = namespace;
    this.#selector = ResourceWatch.selector(labels);
    this.watch = new ResourceWatch(k8s, kc, {
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      query: this.#selector ? { labelSelector: this.#selector } : {},
      keysOf: () => ['pods'],
      idleMs: watchIdleMs,
      logger,
    });
  }

  async live(signal: AbortSignal): Promise<string[]> {
    try {
      const list = await this.#api.listNamespacedPod({ namespace: this.#namespace, labelSelector: this.#selector || undefined }, withSignal(signal));
      return list.items.filter(isLivePod).map((p) => p.metadata?.name ?? '').filter(Boolean);
    } catch (err) {
      if (statusOf(err) === 403) throw new KubernetesForbiddenError('list', 'pods', this.#namespace, forbiddenDetail(err));
      throw err;
    }
  }
}
