import { ConfigurationError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import { maskUri } from '../../uri/mask.ts';
import type { ClusterService } from '../cluster-service.ts';
import type { ClusterConfig } from '../config.ts';
import { CampaignClusterService } from '../campaign/campaign-cluster-service.ts';
import { EtcdCampaign } from './etcd-campaign.ts';
import { EtcdSessions, etcdCallTimeout } from './etcd-session.ts';

export interface EtcdEndpoints {
  hosts: string[];
  auth?: { username: string; password: string };
}

/**
 * `http://127.0.0.1:2379,http://10.0.0.2:2379` → hosts; credentials in a URL
 * (`http://user:pass@host:2379`) become etcd's username/password authentication.
 */
export function parseEtcdEndpoints(text: string | undefined): EtcdEndpoints {
  if (!text || text.trim() === '') {
    throw new ConfigurationError('the etcd cluster backend needs its servers: set DROMEDARY_ETCD_ENDPOINTS (or --etcd-endpoints), e.g. http://127.0.0.1:2379');
  }
  let auth: EtcdEndpoints['auth'];
  const hosts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((endpoint) => {
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw new ConfigurationError(`DROMEDARY_ETCD_ENDPOINTS: "${maskUri(endpoint)}" is not a URL: use http://host:2379 (https:// is not supported yet)`);
      }
      if (url.protocol !== 'http:') {
        throw new ConfigurationError(`DROMEDARY_ETCD_ENDPOINTS: "${maskUri(endpoint)}" uses ${url.protocol}: use http://host:2379 (https:// is not supported yet)`);
      }
      if (url.username) auth = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      return `${url.protocol}//${url.host}`;
    });
  return { hosts, ...(auth ? { auth } : {}) };
}

/**
 * The etcd backend: one session (a kept-alive lease) per member, one campaign per lock (see
 * etcd-session.ts and etcd-campaign.ts). The etcd3 client is
 * loaded here, and this module only when the backend is chosen. `DROMEDARY_ETCD_PREFIX` (default
 * `/dromedary/leader/`) keeps different apps apart on one etcd.
 */
export async function createEtcdClusterService(config: ClusterConfig, logger: Logger): Promise<ClusterService> {
  const endpoints = parseEtcdEndpoints(config.env.DROMEDARY_ETCD_ENDPOINTS);
  const prefix = config.env.DROMEDARY_ETCD_PREFIX || '/dromedary/leader/';
  const { Etcd3 } = await import('etcd3');
  const { timings } = config;
  // Every call has its own deadline (etcd-campaign.ts); the client must not retry behind it, nor
  // open a circuit breaker that would keep it from a server that is back.
  const direct = { execute: async <T>(fn: (context: { signal: AbortSignal; attempt: number }) => T) => fn({ signal: new AbortController().signal, attempt: 1 }) };
  const backoff = Math.max(100, Math.min(timings.retryPeriod, 1000));
  const client = new Etcd3({
    hosts: endpoints.hosts,
    ...(endpoints.auth ? { auth: endpoints.auth } : {}),
    dialTimeout: etcdCallTimeout(timings),
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': backoff, 'grpc.max_reconnect_backoff_ms': Math.max(backoff, 1000) },
    faultHandling: { host: () => direct as never, global: direct as never },
  });
  logger.info(`Cluster service etcd: ${endpoints.hosts.join(', ')}, keys under ${prefix}`);
  const sessions = new EtcdSessions({ client, memberId: config.memberId, timings, logger });
  return new CampaignClusterService({
    rebalance: config.rebalance ? { intervalMs: config.timings.retryPeriod, leaseDurationMs: config.timings.leaseDuration } : undefined,
    kind: 'etcd',
    retryPeriod: timings.retryPeriod,
    memberId: config.memberId,
    logger,
    campaign: (lock, log) => new EtcdCampaign({ client, sessions, lock, memberId: config.memberId, prefix, timings, logger: log }),
    close: async () => {
      await sessions.close();
      client.close();
    },
  });
}
