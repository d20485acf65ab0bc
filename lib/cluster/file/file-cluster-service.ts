import { constants } from 'node:fs';
import { link, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError } from '../../errors.ts';
import { randomHex } from '../../random-hex.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ClusterConfig } from '../config.ts';
import { ElectorClusterService } from '../elector-cluster-service.ts';
import { FileLockStore } from './file-lock-store.ts';
import { preparePrivateFolder } from './private-folder.ts';
import { FileHeartbeatBackend } from './file-heartbeats.ts';
import { HeartbeatLockStore, heartbeatCadence } from '../election/heartbeat-store.ts';
import { resolveRenewals } from '../election/heartbeat-config.ts';
import { newInstanceId } from '../election/instance.ts';

/** The embedded default: members on this machine elect leaders through a folder of lock files. */
export async function createFileClusterService(config: ClusterConfig, logger: Logger): Promise<ElectorClusterService> {
  const root = await preparePrivateFolder(config.root, 'DROMEDARY_CLUSTER_ROOT');
  await probe(root);
  // Which folder is the lock domain decides who coordinates with whom: say it.
  logger.info(`File cluster folder ${root}: processes of this user that name the same lock in it coordinate`, { root });
  const locks = new FileLockStore(root, { memberTimeout: config.timings.leaseDuration });
  const renewals = resolveRenewals(config.env);
  const instanceId = newInstanceId();
  const cadence = heartbeatCadence(config.timings);
  // Either way through the heartbeat store: records another member wrote in heartbeat mode are judged by their heartbeat.
  const store = new HeartbeatLockStore({ backend: new FileHeartbeatBackend(locks), memberId: config.memberId, instanceId, timings: config.timings, interval: cadence.interval, renewals, logger });
  if (renewals === 'heartbeat') logger.info('File cluster renewals: one heartbeat file per member process keeps all its locks (DROMEDARY_RENEWALS=heartbeat)');
  return new ElectorClusterService({
    kind: 'file',
    memberId: config.memberId,
    instanceId,
    store,
    timings: config.timings,
    logger,
    rebalance: config.rebalance,
    ...(renewals === 'heartbeat' ? { elector: { renewInterval: cadence.renewInterval } } : {}),
  });
}

/**
 * Writes a file and hard-links it, as every record is published: a folder where that fails (read-only,
 * a pseudo-filesystem such as /proc, a filesystem without hard links) is refused now, not retried forever.
 */
async function probe(root: string): Promise<void> {
  const file = join(root, `.probe-${process.pid}-${randomHex(4)}`);
  try {
    const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    await handle.close();
    await link(file, `${file}.link`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigurationError(
      `the cluster folder ${root} cannot be used: writing a file and a hard link to it there failed (${code}). ` +
        'Set DROMEDARY_CLUSTER_ROOT to a writable folder of your own on a filesystem with hard links',
    );
  } finally {
    await unlink(`${file}.link`).catch(() => undefined);
    await unlink(file).catch(() => undefined);
  }
}
