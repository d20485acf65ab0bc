import { randomBytes } from 'node:crypto';
import { ConfigurationError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import { maskUri } from '../../uri/mask.ts';
import type { ClusterService } from '../cluster-service.ts';
import type { ClusterConfig } from '../config.ts';
import { CampaignClusterService } from '../campaign/campaign-cluster-service.ts';
import { PgCampaign } from './pg-campaign.ts';
import { PgConnection } from './pg-connection.ts';
import { PgSchema } from './pg-schema.ts';

/** `postgres://user:pass@host:5432/db` (or `postgresql://`); anything else is refused with the fix. */
export function parsePostgresUrl(text: string | undefined): string {
  if (!text || text.trim() === '') {
    throw new ConfigurationError('the postgres cluster backend needs its database: set DROMEDARY_POSTGRES_URL (or --postgres-url), e.g. postgres://user:password@127.0.0.1:5432/app');
  }
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ConfigurationError(`DROMEDARY_POSTGRES_URL "${maskUri(text)}" is not a URL: use postgres://user:password@host:5432/database`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigurationError(`DROMEDARY_POSTGRES_URL "${maskUri(text)}" uses ${url.protocol}: use postgres://user:password@host:5432/database`);
  }
  return text.trim();
}

/**
 * The postgres backend: one connection per member, one lease-table campaign per lock (see
 * pg-campaign.ts). The pg client is loaded here, and this module only when the backend is chosen.
 */
export async function createPostgresClusterService(config: ClusterConfig, logger: Logger): Promise<ClusterService> {
  const url = parsePostgresUrl(config.env.DROMEDARY_POSTGRES_URL);
  const { timings } = config;
  const campaigns = new Set<PgCampaign>();
  let connection: PgConnection;
  const schema = new PgSchema(config.env.DROMEDARY_POSTGRES_TABLE || 'dromedary_leases', () => connection);
  const pg = (await import('pg')).default;
  // Several statements must fit in renewDeadline, and a hung one must not use it all up.
  const timeout = Math.min(timings.renewDeadline / 3, Math.max(timings.retryPeriod, 500));
  connection = new PgConnection({
    pg,
    url,
    channel: schema.channel,
    timeout,
    logger,
    onNotify: (lock) => {
      for (const c of campaigns) if (c.lock === lock) c.released();
    },
  });
  const instance = randomBytes(8).toString('hex');
  logger.info(`Cluster service postgres: ${maskUri(url)}, leases in ${schema.channel}`);
  return new CampaignClusterService({
    kind: 'postgres',
    retryPeriod: timings.retryPeriod,
    memberId: config.memberId,
    logger,
    campaign: (lock, log) => {
      const campaign = new PgCampaign({ connection, schema, lock, memberId: config.memberId, instance, timings, logger: log });
      campaigns.add(campaign);
      return campaign;
    },
    close: () => connection.close(),
  });
}
