import { existsSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { parseDuration } from '../uri/duration.ts';
import type { ClusterService } from './cluster-service.ts';
import { validateTimings, type ElectionTimings } from './election/timings.ts';

export const CLUSTER_KINDS = ['auto', 'file', 'kubernetes', 'etcd', 'postgres', 'zookeeper', 'none'] as const;
export type ClusterKind = (typeof CLUSTER_KINDS)[number];

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ClusterConfig {
  /** What was asked for. */
  readonly requested: ClusterKind;
  /** What `auto` resolved to. */
  readonly kind: Exclude<ClusterKind, 'auto'>;
  readonly memberId: string;
  readonly timings: ElectionTimings;
  /** The file backend's folder. */
  readonly root: string;
  /** The environment the configuration was read from (the kubernetes backend reads more of it). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Spread the leaders of the locks evenly over the live members (`--rebalance`, DROMEDARY_REBALANCE). */
  readonly rebalance: boolean;
}

export interface ClusterFlags {
  cluster?: string;
  memberId?: string;
  root?: string;
  timings?: Partial<ElectionTimings>;
  /** The servers of the etcd, zookeeper and postgres backends (else their DROMEDARY_* variables). */
  etcdEndpoints?: string;
  zookeeperNodes?: string;
  postgresUrl?: string;
  rebalance?: boolean;
}

/** Whether this process runs inside a Kubernetes pod with a service account. */
export function inKubernetesPod(env: Readonly<Record<string, string | undefined>>, serviceAccountDir = SERVICE_ACCOUNT_DIR): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(join(serviceAccountDir, 'token'));
}

/**
 * Cluster settings from flags (or code), then environment variables, then defaults:
 * `--cluster`/DROMEDARY_CLUSTER (auto), `--member-id`/DROMEDARY_MEMBER_ID, `--rebalance`/DROMEDARY_REBALANCE, DROMEDARY_CLUSTER_ROOT,
 * DROMEDARY_LEASE_DURATION, DROMEDARY_RENEW_DEADLINE, DROMEDARY_RETRY_PERIOD; the servers of the etcd,
 * postgres and zookeeper backends (DROMEDARY_ETCD_ENDPOINTS, `--etcd-endpoints`; DROMEDARY_POSTGRES_URL,
 * `--postgres-url`; DROMEDARY_ZOOKEEPER_NODES, `--zookeeper-nodes`).
 */
export function resolveClusterConfig(options: { flags?: ClusterFlags; env?: Readonly<Record<string, string | undefined>> } = {}): ClusterConfig {
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const requested = (flags.cluster ?? env.DROMEDARY_CLUSTER ?? 'auto').toLowerCase();
  if (!(CLUSTER_KINDS as readonly string[]).includes(requested)) {
    throw new ConfigurationError(`unknown cluster "${requested}": use --cluster (or DROMEDARY_CLUSTER) ${CLUSTER_KINDS.join(', ')}`);
  }
  const kind = requested === 'auto' ? (inKubernetesPod(env) ? 'kubernetes' : 'file') : (requested as ClusterConfig['kind']);
  const timings = validateTimings({
    leaseDuration: flags.timings?.leaseDuration ?? duration(env, 'DROMEDARY_LEASE_DURATION'),
    renewDeadline: flags.timings?.renewDeadline ?? duration(env, 'DROMEDARY_RENEW_DEADLINE'),
    retryPeriod: flags.timings?.retryPeriod ?? duration(env, 'DROMEDARY_RETRY_PERIOD'),
    jitter: flags.timings?.jitter,
  });
  const podName = env.POD_NAME || env.HOSTNAME;
  const memberId =
    flags.memberId ?? env.DROMEDARY_MEMBER_ID ?? (kind === 'kubernetes' && podName ? podName : `${podName || hostname()}-${process.pid}`);
  if (memberId.trim() === '') throw new ConfigurationError('the member id is empty: set --member-id or DROMEDARY_MEMBER_ID');
  const root = flags.root ?? (env.DROMEDARY_CLUSTER_ROOT || defaultClusterRoot());
  const servers = { DROMEDARY_ETCD_ENDPOINTS: flags.etcdEndpoints, DROMEDARY_ZOOKEEPER_NODES: flags.zookeeperNodes, DROMEDARY_POSTGRES_URL: flags.postgresUrl };
  const withServers = { ...env, ...Object.fromEntries(Object.entries(servers).filter(([, v]) => v !== undefined)) };
  const rebalance = flags.rebalance ?? flag(env, 'DROMEDARY_REBALANCE') ?? false;
  return { requested: requested as ClusterKind, kind, memberId, timings, root, env: withServers, rebalance };
}

function flag(env: Readonly<Record<string, string | undefined>>, name: string): boolean | undefined {
  const text = env[name]?.trim().toLowerCase();
  if (text === undefined || text === '') return undefined;
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  throw new ConfigurationError(`${name}="${env[name]}" is not true or false: use ${name}=true to turn it on, false (the default) to leave it off`);
}

/**
 * The file backend's default folder: one per user on this machine, `<os temp>/dromedary-<uid>/cluster`.
 * The lock name is the identity, as in one Kubernetes namespace: every process of this user that
 * names lock1 coordinates on it, however its routes path was typed and wherever the app was copied
 * (release-v1/ and release-v2/ during an upgrade). Not XDG_RUNTIME_DIR: only login sessions have it
 * (cron, system services, sudo and docker exec do not), so two processes of one user could disagree.
 */
export function defaultClusterRoot(): string {
  const uid = typeof process.getuid === 'function' ? String(process.getuid()) : userInfo().username;
  return join(tmpdir(), `dromedary-${uid}`, 'cluster');
}

function duration(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(text)) {
    throw new ConfigurationError(`${name}="${text}" has no unit: write ${text.trim()}s for seconds (or ${text.trim()}ms, 1m)`);
  }
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw new ConfigurationError(`${name}="${text}" is not a duration: use e.g. 15s, 500ms or 1m`);
  return ms;
}

/** Builds the configured backend. The kubernetes one (and @kubernetes/client-node) is loaded only when chosen. */
export async function createClusterService(config: ClusterConfig, logger: Logger): Promise<ClusterService> {
  // Their leaders do not see the other candidates (ZooKeeper's watch only the node before their own;
  // PostgreSQL's row names only the holder), so they cannot tell whom to hand a lock to.
  if (config.rebalance && (config.kind === 'postgres' || config.kind === 'zookeeper' || config.kind === 'none')) {
    logger.warn(`Rebalancing (DROMEDARY_REBALANCE, --rebalance) is not supported by the ${config.kind} backend: each lock goes to whichever member takes it first. The file, kubernetes and etcd backends rebalance`);
  }
  switch (config.kind) {
    case 'file': {
      const { createFileClusterService } = await import('./file/file-cluster-service.ts');
      return createFileClusterService(config, logger);
    }
    case 'etcd': {
      const { createEtcdClusterService } = await import('./etcd/index.ts');
      return createEtcdClusterService(config, logger);
    }
    case 'postgres': {
      const { createPostgresClusterService } = await import('./postgres/index.ts');
      return createPostgresClusterService(config, logger);
    }
    case 'zookeeper': {
      const { createZooKeeperClusterService } = await import('./zookeeper/index.ts');
      return createZooKeeperClusterService(config, logger);
    }
    case 'none': {
      const { createStandaloneClusterService } = await import('./standalone.ts');
      return createStandaloneClusterService(config, logger);
    }
    case 'kubernetes': {
      let backend: { createKubernetesClusterService(config: ClusterConfig, logger: Logger): Promise<ClusterService> };
      // A computed specifier: this module must not pull in @kubernetes/client-node unless chosen.
      const specifier = './kubernetes/index.ts';
      try {
        backend = (await import(specifier)) as typeof backend;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes('kubernetes/index.ts')) {
          throw new ConfigurationError('the kubernetes cluster backend is not available in this build: use --cluster file or --cluster none');
        }
        throw err;
      }
      return backend.createKubernetesClusterService(config, logger);
    }
  }
}
