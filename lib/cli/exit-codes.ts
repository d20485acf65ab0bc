import { ConfigurationError, DromedaryError, ResolveEndpointError, RouteBuildError } from '../errors.ts';

/**
 * The exit code of a --replicas member whose start-up failed on its configuration (a bad route file, URI or
 * option): starting it again cannot help, so the supervisor stops instead of restarting it (sysexits' EX_CONFIG).
 */
export const CONFIGURATION_ERROR_EXIT = 78;

const CONFIGURATION_CODES = new Set(['ROUTE_FILE', 'NO_ROUTES', 'ROUTES_NOT_FOUND']);

/** Whether a start-up error comes from what the user wrote, not from the moment (a busy port, an API down). */
export function isConfigurationError(err: unknown): boolean {
  return (
    err instanceof ConfigurationError ||
    err instanceof RouteBuildError ||
    err instanceof ResolveEndpointError ||
    (err instanceof DromedaryError && CONFIGURATION_CODES.has(err.code))
  );
}
