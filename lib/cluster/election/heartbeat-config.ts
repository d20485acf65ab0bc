import { ConfigurationError } from '../../errors.ts';

export type Renewals = 'heartbeat' | 'per-lock';

/**
 * DROMEDARY_RENEWALS for the file and Lease backends: `heartbeat` (one heartbeat record per member
 * keeps all its locks alive, see heartbeat-store.ts) or `per-lock` (each lock's record is renewed,
 * client-go's way, for tools that read each lock's renewTime).
 */
export function resolveRenewals(env: Readonly<Record<string, string | undefined>>, fallback: Renewals = DEFAULT_RENEWALS): Renewals {
  const text = (env.DROMEDARY_RENEWALS ?? '').trim().toLowerCase();
  if (text === '') return fallback;
  if (text === 'heartbeat' || text === 'per-lock') return text;
  throw new ConfigurationError(`DROMEDARY_RENEWALS="${env.DROMEDARY_RENEWALS}" is not a renewal mode: use heartbeat (one write per member per renew interval) or per-lock (one per lock)`);
}

export const DEFAULT_RENEWALS: Renewals = 'heartbeat';
