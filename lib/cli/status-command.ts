import { ConfigurationError, DromedaryError } from '../errors.ts';
import { maskSecrets } from '../uri/mask.ts';
import { resolveClusterConfig, type ClusterFlags } from '../cluster/config.ts';
import { formatDuration } from '../uri/duration.ts';
import { readLockStatuses, type LockStatus, type StoreStatus } from './lock-records.ts';

export interface StatusOptions {
  cluster?: ClusterFlags;
  /** `table` (default) or `json`. */
  output?: string;
  out: NodeJS.WritableStream;
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * `dromedary status`: every lock in the cluster store, read directly (no member needs to run),
 * with the configuration `dromedary run` would use: holder, term, times and whether the lease holds.
 */
export async function runStatus(options: StatusOptions): Promise<number> {
  const output = (options.output ?? 'table').toLowerCase();
  if (output !== 'table' && output !== 'json') throw new ConfigurationError(`--output "${options.output}" is not a format: use --output table or --output json`);
  const config = resolveClusterConfig({ flags: options.cluster, env: options.env });
  const status = await readLockStatuses(config);
  options.out.write(output === 'json' ? `${JSON.stringify(status, null, 2)}\n` : table(status));
  return 0;
}

/** 13578 → "13.6s"; past a minute, formatDuration's minutes. */
function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : formatDuration(Math.round(ms));
}

function lease(l: LockStatus, liveBy: string | undefined): string {
  if (l.holder === undefined) return 'released';
  if (l.expiresInMs === undefined) {
    if (liveBy === undefined) return l.valid ? 'valid' : 'expired';
    return l.valid ? `valid (holder's ${liveBy} is live)` : `expired (holder's ${liveBy} is not live)`;
  }
  return l.valid ? `valid, ${seconds(l.expiresInMs)} left` : `expired ${seconds(-l.expiresInMs)} ago`;
}

function table(status: StoreStatus): string {
  const header = `Locks in ${status.backend} store ${status.where}\n`;
  if (status.locks.length === 0) return `${header}no locks yet: no member has run a master: route with this configuration\n`;
  const rows = [
    ['LOCK', 'HOLDER', 'TERM', 'ACQUIRED', 'RENEWED', 'LEASE', 'MEMBERS'],
    ...status.locks.map((l) => [
      l.lock,
      l.holder ?? '-',
      l.term === undefined ? '-' : String(l.term),
      l.acquireTime ?? '-',
      l.renewTime ?? '-',
      lease(l, status.liveBy),
      l.members === undefined ? '-' : l.members.join(',') || '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return header + rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export interface StatusValues {
  cluster?: string;
  output?: string;
  'etcd-endpoints'?: string;
  'postgres-url'?: string;
  'zookeeper-nodes'?: string;
}

/** `dromedary status` from parsed CLI arguments: an error is one clear line on stderr and exit code 1. */
export async function statusCommand(values: StatusValues, out: NodeJS.WritableStream): Promise<number> {
  try {
    const cluster = { cluster: values.cluster, etcdEndpoints: values['etcd-endpoints'], postgresUrl: values['postgres-url'], zookeeperNodes: values['zookeeper-nodes'] };
    return await runStatus({ cluster, output: values.output, out });
  } catch (err) {
    const message = err instanceof DromedaryError ? err.message : `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`;
    process.stderr.write(`dromedary status: ${maskSecrets(message)}\n`);
    return 1;
  }
}
