import { ConfigurationError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ClusterService } from '../cluster-service.ts';
import type { ClusterConfig } from '../config.ts';
import { CampaignClusterService } from '../campaign/campaign-cluster-service.ts';
import type { ZkModule } from './zk-client.ts';
import { ZkCampaign } from './zk-campaign.ts';
import { ZkSessions } from './zk-session.ts';

/** `127.0.0.1:2181,10.0.0.2:2181/apps/x` → the servers and the optional chroot (a path every node goes under). */
export function parseZooKeeperNodes(text: string | undefined): { servers: string; chroot: string } {
  if (!text || text.trim() === '') {
    throw new ConfigurationError('the zookeeper cluster backend needs its servers: set DROMEDARY_ZOOKEEPER_NODES (or --zookeeper-nodes), e.g. 127.0.0.1:2181 or 127.0.0.1:2181/chroot');
  }
  const slash = text.indexOf('/');
  const servers = (slash < 0 ? text : text.slice(0, slash)).trim();
  const chroot = slash < 0 ? '' : text.slice(slash).trim().replace(/\/+$/, '');
  for (const server of servers.split(',')) {
    if (!/^[A-Za-z0-9.\-[\]:]+:\d+$/.test(server.trim())) {
      throw new ConfigurationError(`DROMEDARY_ZOOKEEPER_NODES: "${server}" is not host:port; use e.g. 127.0.0.1:2181,10.0.0.2:2181/chroot`);
    }
  }
  if (chroot !== '' && !/^(\/[A-Za-z0-9._-]+)+$/.test(chroot)) {
    throw new ConfigurationError(`DROMEDARY_ZOOKEEPER_NODES: the chroot "${chroot}" is not a path like /apps/orders`);
  }
  return { servers, chroot };
}

/**
 * The zookeeper backend: one session per member, one LeaderLatch-style campaign per lock (see
 * zk-session.ts and zk-campaign.ts). node-zookeeper-client is loaded here, and this module only when
 * the backend is chosen. The lock nodes live under `<chroot>/dromedary/<lock>`.
 */
export async function createZooKeeperClusterService(config: ClusterConfig, logger: Logger): Promise<ClusterService> {
  const { servers, chroot } = parseZooKeeperNodes(config.env.DROMEDARY_ZOOKEEPER_NODES);
  // The package ships no types; zk-client.ts declares the part used.
  const specifier = 'node-zookeeper-client';
  const zk = ((await import(specifier)) as { default: ZkModule }).default;
  const { timings } = config;
  const sessions = new ZkSessions({ zk, connectString: servers, memberId: config.memberId, timings, logger });
  const root = `${chroot}/dromedary`;
  logger.info(`Cluster service zookeeper: ${servers}, nodes under ${root}`);
  return new CampaignClusterService({
    kind: 'zookeeper',
    retryPeriod: timings.retryPeriod,
    memberId: config.memberId,
    logger,
    campaign: (lock, log) => new ZkCampaign({ sessions, lock, memberId: config.memberId, root, timings, logger: log }),
    close: () => sessions.close(),
  });
}
