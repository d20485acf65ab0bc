import { DromedaryError } from '../errors.ts';

/**
 * A server that could not listen, said in terms of the option that chose the port (`flag`), with the fix;
 * undefined for any other error.
 */
export function listenError(err: unknown, flag: string): DromedaryError | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall !== 'listen') return undefined;
  const where = `${e.address ?? ''}:${e.port ?? ''}`;
  const reason =
    e.code === 'EADDRINUSE'
      ? `is in use by another process (${where}): stop that process, or choose another port (0 picks a free one)`
      : e.code === 'EACCES'
        ? `cannot be opened by this user (${where}): ports below 1024 need privileges, choose one from 1024 up (0 picks a free one)`
        : `cannot be listened on (${where}): ${e.code ?? e.message}`;
  return new DromedaryError('CLI_OPTION', `${flag} ${e.port ?? ''} ${reason}`, { cause: err });
}
