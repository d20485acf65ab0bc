import { ConfigurationError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ClusterConfig } from '../config.ts';
import type { ClusterService } from '../cluster-service.ts';
import { ElectorClusterService } from '../elector-cluster-service.ts';
import { loadClientNode, loadKubeConfig, resolveNamespace } from './client.ts';
import { LeaseLockStore } from './lease-store.ts';

/** `app=x,group=y` → { app: 'x', group: 'y' }. */
export function parseClusterLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!text) return labels;
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigurationError(`DROMEDARY_CLUSTER_LABELS: "${pair}" is not key=value (example: app=orders,group=acme)`);
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}

/**
 * The kubernetes backend. Lease mode (the default): one coordination.k8s.io/v1 Lease per lock.
 * @kubernetes/client-node is loaded here, and this module only when the backend is chosen.
 */
export async function createKubernetesClusterService(config: ClusterConfig, logger: Logger): Promise<ClusterService> {
  const env = config.env;
  const mode = (env.DROMEDARY_K8S_LOCK ?? 'lease').toLowerCase();
  if (mode !== 'lease') {
    throw new ConfigurationError(`DROMEDARY_K8S_LOCK="${mode}" is not available in this build: use lease`);
  }
  const k8s = await loadClientNode();
  const kc = loadKubeConfig(k8s, env);
  const namespace = resolveNamespace(kc, env);
  const labels = { provider: 'dromedary', ...parseClusterLabels(env.DROMEDARY_CLUSTER_LABELS) };
  const store = new LeaseLockStore(k8s, kc, { namespace, prefix: env.DROMEDARY_K8S_LEASE_PREFIX || 'dromedary', labels, logger });
  logger.info(`Kubernetes cluster service: Leases in namespace ${namespace}, labels ${JSON.stringify(labels)}`);
  return new ElectorClusterService({ kind: 'kubernetes', memberId: config.memberId, store, timings: config.timings, logger });
}
