import type { Logger } from '../../logging/logger.ts';
import type { ClusterConfig } from '../config.ts';
import { ElectorClusterService } from '../elector-cluster-service.ts';
import { FileLockStore } from './file-lock-store.ts';
import { preparePrivateFolder } from './private-folder.ts';

/** The embedded default: members on this machine elect leaders through a folder of lock files. */
export async function createFileClusterService(config: ClusterConfig, logger: Logger): Promise<ElectorClusterService> {
  const root = await preparePrivateFolder(config.root, 'DROMEDARY_CLUSTER_ROOT');
  // Which folder is the lock domain decides who coordinates with whom: say it.
  logger.info(`File cluster folder ${root}: processes of this user that name the same lock in it coordinate`, { root });
  const store = new FileLockStore(root, { memberTimeout: config.timings.leaseDuration });
  return new ElectorClusterService({ kind: 'file', memberId: config.memberId, store, timings: config.timings, logger });
}
