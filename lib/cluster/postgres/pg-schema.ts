import { ConfigurationError } from '../../errors.ts';
import { quoteIdent, type PgConnection } from './pg-connection.ts';

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,50}(\.[A-Za-z_][A-Za-z0-9_]{0,50})?$/;

/**
 * The lease table, its token sequence and the statements on them. The table is
 * `DROMEDARY_POSTGRES_TABLE` (default `dromedary_leases`, optionally `schema.table`); it and the
 * sequence `<table>_token` are created when missing. Its columns: `lock` (the primary key), `holder`
 * (member id, '' once released), `instance` (the holder's process), `token` (the term's fencing
 * token), `expires` (by the server's clock), and `state` (jsonb, the lock's leader state; NULL until
 * a leader writes it; added to a table made by an earlier version). A take or a release leaves
 * `state` as it is, so it outlives its leader.
 */
export class PgSchema {
  readonly channel: string;
  readonly take: string;
  readonly renew: string;
  readonly release: string;
  readonly readState: string;
  readonly writeState: string;
  readonly #create: string[];
  readonly #connection: () => PgConnection;
  #ready: Promise<void> | undefined;

  constructor(table: string, connection: () => PgConnection) {
    if (!NAME.test(table)) {
      throw new ConfigurationError(`DROMEDARY_POSTGRES_TABLE "${table}" is not a table name: use letters, digits and _ (optionally schema.table), e.g. dromedary_leases`);
    }
    this.#connection = connection;
    const parts = table.split('.');
    const t = parts.map(quoteIdent).join('.');
    const seq = [...parts.slice(0, -1), `${parts.at(-1)}_token`].map(quoteIdent).join('.');
    this.channel = table.replace('.', '_');
    this.#create = [
      `CREATE TABLE IF NOT EXISTS ${t} (lock text PRIMARY KEY, holder text NOT NULL, instance text NOT NULL, token bigint NOT NULL, expires timestamptz NOT NULL, state jsonb)`,
      `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS state jsonb`,
      `CREATE SEQUENCE IF NOT EXISTS ${seq}`,
    ];
    const lease = `clock_timestamp() + $4::float8 * interval '1 millisecond'`;
    // The statement's snapshot still shows the row as it was before the upsert: when the take
    // fails, that is the holder to wait for and how long its lease has left by the server's clock.
    this.take = `WITH won AS (
        INSERT INTO ${t} AS l (lock, holder, instance, token, expires) VALUES ($1, $2, $3, nextval('${seq.replace(/'/g, "''")}'), ${lease})
        ON CONFLICT (lock) DO UPDATE SET holder = EXCLUDED.holder, instance = EXCLUDED.instance, token = EXCLUDED.token, expires = EXCLUDED.expires
        WHERE l.holder = '' OR l.expires <= clock_timestamp() OR l.instance = EXCLUDED.instance
        RETURNING token)
      SELECT (SELECT token FROM won)::text AS won, c.holder,
        CASE WHEN c.expires > clock_timestamp() THEN EXTRACT(EPOCH FROM (c.expires - clock_timestamp())) * 1000 ELSE 0 END::float8 AS remaining
      FROM (SELECT 1) AS one LEFT JOIN ${t} AS c ON c.lock = $1`;
    this.renew = `UPDATE ${t} SET expires = clock_timestamp() + $4::float8 * interval '1 millisecond' WHERE lock = $1 AND instance = $2 AND token = $3 RETURNING token`;
    this.release = `WITH r AS (UPDATE ${t} SET holder = '', instance = '', expires = '-infinity' WHERE lock = $1 AND instance = $2 AND token = $3 RETURNING lock)
      SELECT pg_notify($4, lock) FROM r`;
    this.readState = `SELECT state::text AS state FROM ${t} WHERE lock = $1`;
    // Only the row still carrying this process's term takes the write; it renews the lease as a renew does.
    this.writeState = `UPDATE ${t} SET state = $4::jsonb, expires = clock_timestamp() + $5::float8 * interval '1 millisecond' WHERE lock = $1 AND instance = $2 AND token = $3 RETURNING token`;
  }

  /** Creates the table and sequence once; members starting together may race, which is harmless. */
  ready(): Promise<void> {
    this.#ready ??= (async () => {
      for (const statement of this.#create) {
        try {
          await this.#connection().query(statement);
        } catch (err) {
          // Two members creating at once: one gets unique_violation (23505), duplicate_table (42P07) or duplicate_column (42701).
          const code = (err as { code?: string }).code;
          if (code !== '23505' && code !== '42P07' && code !== '42701') throw err;
        }
      }
    })();
    this.#ready.catch(() => (this.#ready = undefined));
    return this.#ready;
  }
}
