import type { Logger } from '../logging/logger.ts';
import type { ClusterConfig } from './config.ts';
import { ElectorClusterService } from './elector-cluster-service.ts';
import { MemoryLockStore } from './memory/memory-store.ts';

/**
 * `--cluster none`: this process elects only against itself, so it always leads every lock. For
 * development and single-instance deployments; master: routes are then not coordinated with anyone.
 */
export function createStandaloneClusterService(config: ClusterConfig, logger: Logger): ElectorClusterService {
  logger.warn('Cluster service "none": this process leads every lock by itself, so master: routes are not coordinated with other processes');
  return new ElectorClusterService({ kind: 'standalone', memberId: config.memberId, store: new MemoryLockStore(), timings: config.timings, logger });
}
