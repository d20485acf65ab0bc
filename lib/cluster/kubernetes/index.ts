import { ConfigurationError } from '../../errors.ts';
import { parseDuration } from '../../uri/duration.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ClusterConfig } from '../config.ts';
import type { ClusterService } from '../cluster-service.ts';
import { ElectorClusterService, type ElectorClusterServiceOptions } from '../elector-cluster-service.ts';
import type { LockStore } from '../election/lock-store.ts';
import { loadClientNode, loadKubeConfig, resolveNamespace, type K8s } from './client.ts';
import { LeaseLockStore } from './lease-store.ts';
import { ConfigMapLockStore } from './configmap-store.ts';
import { PodMembers } from './pod-members.ts';
import { LeaseHeartbeatBackend } from './lease-heartbeats.ts';
import { HeartbeatLockStore, heartbeatCadence } from '../election/heartbeat-store.ts';
import { newInstanceId } from '../election/instance.ts';
import { resolveRenewals } from '../election/heartbeat-config.ts';

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
 * The kubernetes backend. Its client (kube-client.ts) is loaded here, and this module only when the
 * backend is chosen. `DROMEDARY_K8S_LOCK=lease` (default): one coordination.k8s.io/v1 Lease per lock.
 * `configmap`: the seed's protocol, one ConfigMap of `leader.pod.<lock>` keys and Running+Ready pods
 * matching the cluster labels as the members.
 */
export async function createKubernetesClusterService(config: ClusterConfig, logger: Logger): Promise<ClusterService> {
  const env = config.env;
  const mode = (env.DROMEDARY_K8S_LOCK ?? 'lease').toLowerCase();
  if (mode !== 'lease' && mode !== 'configmap') {
    throw new ConfigurationError(`DROMEDARY_K8S_LOCK="${mode}" is not a lock type: use lease or configmap`);
  }
  const k8s = await loadClientNode();
  const kc = loadKubeConfig(k8s, env);
  const namespace = resolveNamespace(kc, env);
  const clusterLabels = parseClusterLabels(env.DROMEDARY_CLUSTER_LABELS);
  const watchIdleMs = watchIdle(config);
  const instanceId = newInstanceId();
  const { store, elector } =
    mode === 'configmap' ? configMapMode(k8s, kc, namespace, clusterLabels, watchIdleMs, config, logger) : leaseMode(k8s, kc, namespace, clusterLabels, watchIdleMs, config, instanceId, logger);
  return new ElectorClusterService({
    kind: 'kubernetes',
    memberId: config.memberId,
    instanceId,
    store,
    timings: config.timings,
    logger,
    elector: { renewInterval: renewInterval(config), ...elector },
    rebalance: config.rebalance,
  });
}

type KubeConfig = InstanceType<K8s['KubeConfig']>;
type Mode = { store: LockStore; elector?: ElectorClusterServiceOptions['elector'] };

function leaseMode(k8s: K8s, kc: KubeConfig, namespace: string, clusterLabels: Record<string, string>, watchIdleMs: number, config: ClusterConfig, instanceId: string, logger: Logger): Mode {
  const env = config.env;
  const labels = { provider: 'dromedary', ...clusterLabels };
  const renewals = resolveRenewals(env);
  logger.info(
    `Kubernetes cluster service: Leases in namespace ${namespace}, labels ${JSON.stringify(labels)}, ` +
      (renewals === 'heartbeat' ? 'renewals by one heartbeat Lease per member (DROMEDARY_RENEWALS=heartbeat)' : 'renewals of each lock\'s Lease (DROMEDARY_RENEWALS=per-lock)'),
  );
  const options = { namespace, prefix: env.DROMEDARY_K8S_LEASE_PREFIX || 'dromedary', labels, watchIdleMs, logger };
  const leases = new LeaseLockStore(k8s, kc, options);
  // Either way through the heartbeat store: records another member wrote in heartbeat mode are judged by their heartbeat.
  const backend = new LeaseHeartbeatBackend(k8s, kc, leases, { ...options, leaseDurationMs: config.timings.leaseDuration });
  const cadence = heartbeatCadence(config.timings);
  // Rebalancing needs every live member, and a lock's Lease names only its holder: the heartbeat Leases list them (in per-lock mode too).
  const store = new HeartbeatLockStore({ backend, memberId: config.memberId, instanceId, timings: config.timings, interval: cadence.interval, renewals, membership: config.rebalance, logger });
  return { store, ...(renewals === 'heartbeat' ? { elector: { renewInterval: cadence.renewInterval } } : {}) };
}

function configMapMode(k8s: K8s, kc: KubeConfig, namespace: string, clusterLabels: Record<string, string>, watchIdleMs: number, config: ClusterConfig, logger: Logger): Mode {
  const members = new PodMembers(k8s, kc, namespace, clusterLabels, watchIdleMs, logger);
  const name = config.env.DROMEDARY_K8S_CONFIGMAP || 'leaders';
  logger.info(`Kubernetes cluster service: ConfigMap ${name} in namespace ${namespace}, members are live pods matching ${JSON.stringify(clusterLabels)}`);
  return {
    store: new ConfigMapLockStore(k8s, kc, { namespace, name, labels: { provider: 'dromedary' }, leaseDurationMs: config.timings.leaseDuration, members, watchIdleMs, logger }),
    elector: {
      // A holder stays valid while its pod is a live member; a pod that is not a member itself never takes over.
      holderValid: async ({ record }) => {
        // Bounded like the elector's own calls: a slow API server must not keep every member out.
        const live = await members.live(AbortSignal.timeout(config.timings.renewDeadline));
        return live.includes(record.holderIdentity) || !live.includes(config.memberId);
      },
      // Let an old leader that lost contact with the API server stop before this one starts.
      acquireDelay: config.timings.leaseDuration,
    },
  };
}

/**
 * Renewing every renewDeadline / 3 instead of every retryPeriod cuts the API server's load, and a
 * failed renewal is still retried every retryPeriod, several times before renewDeadline.
 */
function renewInterval(config: ClusterConfig): number {
  return Math.max(config.timings.retryPeriod, Math.floor(config.timings.renewDeadline / 3));
}

/**
 * DROMEDARY_K8S_WATCH_IDLE, else twice leaseDuration (at least 10 s): a silent watch costs a follower
 * at most one leaseDuration of reaction time (it still reads when its observed lease runs out), so
 * noticing within a couple of leases is proportionate, and the API server is then asked to end
 * each stream every leaseDuration (at least 5 s, so a real one sends its pre-timeout bookmark).
 */
function watchIdle(config: ClusterConfig): number {
  const text = config.env.DROMEDARY_K8S_WATCH_IDLE;
  if (text === undefined || text === '') return Math.max(10_000, 2 * config.timings.leaseDuration);
  const ms = parseDuration(text);
  if (ms === undefined || ms < 2000) {
    throw new ConfigurationError(`DROMEDARY_K8S_WATCH_IDLE="${text}" is not a duration of at least 2s: use e.g. 30s (the API server ends each watch within half of it)`);
  }
  return ms;
}
