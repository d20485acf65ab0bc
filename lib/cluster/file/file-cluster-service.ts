import { mkdir, access, constants } from 'node:fs/promises';
import { ConfigurationError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ClusterConfig } from '../config.ts';
import { ElectorClusterService } from '../elector-cluster-service.ts';
import { FileLockStore } from './file-lock-store.ts';

/** The embedded default: members on this machine elect leaders through a folder of lock files. */
export async function createFileClusterService(config: ClusterConfig, logger: Logger): Promise<ElectorClusterService> {
  try {
    await mkdir(config.root, { recursive: true });
    await access(config.root, constants.W_OK);
  } catch (err) {
    throw new ConfigurationError(
      `the file cluster folder ${config.root} cannot be used (${(err as Error).message}): set DROMEDARY_CLUSTER_ROOT to a writable folder shared by all members`,
    );
  }
  return new ElectorClusterService({ kind: 'file', memberId: config.memberId, store: new FileLockStore(config.root), timings: config.timings, logger });
}
