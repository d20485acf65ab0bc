import { ConfigurationError } from '../errors.ts';

/** Longest lock name: with a Lease prefix and a hash suffix it stays a valid Kubernetes name, and it is a short file name. */
export const MAX_LOCK_NAME_LENGTH = 128;

const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Why `lock` is not a plain name, or undefined when it is one: letters, digits, `.`, `_` and `-`,
 * starting with a letter or a digit, at most MAX_LOCK_NAME_LENGTH characters.
 *
 * A lock name names a record in a store, and the file store makes it a folder name: `..`, `.` or a
 * name with `/` would put records outside the cluster folder (or in the folder itself), where other
 * users' files live. So every backend refuses anything that is not a plain name, rather than each
 * store escaping names its own way.
 */
export function lockNameProblem(lock: string): string | undefined {
  if (lock.length <= MAX_LOCK_NAME_LENGTH && PLAIN_NAME.test(lock)) return undefined;
  const shown = JSON.stringify(lock.length > MAX_LOCK_NAME_LENGTH ? `${lock.slice(0, 40)}…` : lock);
  const why = lock.length > MAX_LOCK_NAME_LENGTH ? `is longer than ${MAX_LOCK_NAME_LENGTH} characters` : 'is not a plain name';
  return (
    `the lock name ${shown} ${why}: a lock name is letters, digits, '.', '_' and '-', starting with a letter or a digit, ` +
    `at most ${MAX_LOCK_NAME_LENGTH} characters (e.g. lock1, orders.poller)`
  );
}

/** Throws a ConfigurationError that says what a lock name may be, when `lock` is not a plain name. */
export function assertLockName(lock: string): void {
  const problem = lockNameProblem(lock);
  if (problem !== undefined) throw new ConfigurationError(problem);
}
