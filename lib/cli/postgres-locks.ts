import type { ClusterConfig } from '../cluster/config.ts';
import { parsePostgresUrl } from '../cluster/postgres/index.ts';
import { quoteIdent } from '../cluster/postgres/pg-connection.ts';
import { PgSchema } from '../cluster/postgres/pg-schema.ts';
import { withTimeout } from '../cluster/campaign/campaign.ts';
import { ConfigurationError } from '../errors.ts';
import { maskSecrets, maskUri } from '../uri/mask.ts';
import type { LockStatus, StoreStatus } from './lock-records.ts';

interface LeaseRow extends Record<string, unknown> {
  lock: string;
  holder: string;
  token: string;
  /** ms until the lease expires by the server's clock (negative: expired); null once released. */
  left_ms: number | null;
}

/**
 * The postgres backend's locks, read from outside: one row per lock in the lease table (see
 * lib/cluster/postgres/pg-schema.ts), its token the fencing token, its expiry judged by the server's
 * clock as the members' statements judge it. The table keeps no acquire or renew times.
 */
export async function readPostgresLocks(config: ClusterConfig, timeout: number): Promise<StoreStatus> {
  const url = parsePostgresUrl(config.env.DROMEDARY_POSTGRES_URL);
  const table = config.env.DROMEDARY_POSTGRES_TABLE || 'dromedary_leases';
  // Validates the name as the members do, with the same error.
  void new PgSchema(table, () => {
    throw new Error('not connected');
  });
  const quoted = table.split('.').map(quoteIdent).join('.');
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeout, application_name: 'dromedary status' });
  client.on('error', () => undefined);
  const where = `${maskUri(url)} table ${table}`;
  try {
    await withTimeout(client.connect(), timeout, 'postgres connect');
    let rows: LeaseRow[];
    try {
      const result = await withTimeout(
        client.query<LeaseRow>(
          `SELECT lock, holder, token::text AS token,
             CASE WHEN isfinite(expires) THEN (EXTRACT(EPOCH FROM (expires - clock_timestamp())) * 1000)::float8 END AS left_ms
           FROM ${quoted} ORDER BY lock`,
        ),
        timeout,
        'postgres query',
      );
      rows = result.rows;
    } catch (err) {
      // No member has run with this table yet (undefined_table).
      if ((err as { code?: string }).code !== '42P01') throw err;
      rows = [];
    }
    const locks = rows.map((row): LockStatus => {
      const holder = row.holder === '' ? undefined : row.holder;
      const left = holder === undefined || row.left_ms === null ? undefined : Math.round(row.left_ms);
      return {
        lock: row.lock,
        holder,
        term: Number(row.token),
        transitions: undefined,
        acquireTime: undefined,
        renewTime: undefined,
        leaseDurationMs: config.timings.leaseDuration,
        valid: left !== undefined && left > 0,
        expiresInMs: left,
      };
    });
    return { backend: 'postgres', where, locks };
  } catch (err) {
    throw new ConfigurationError(
      maskSecrets(`cannot read the locks from PostgreSQL at ${maskUri(url)}: ${(err as Error).message}. Set DROMEDARY_POSTGRES_URL (or --postgres-url) and DROMEDARY_POSTGRES_TABLE as the members have them`),
    );
  } finally {
    await withTimeout(client.end(), timeout, 'postgres close').catch(() => undefined);
  }
}
