import { RouteDefinition } from './route-definition.ts';
import { userCallSite } from './callsite.ts';

/**
 * Route files may call `from(...)` at top level. Those definitions wait here until the CLI (or a
 * program) takes them. The list lives on globalThis so that a route file importing a second copy
 * of the package still reaches the same list.
 */
const KEY = Symbol.for('dromedary.pendingRoutes');
type Holder = { [KEY]?: RouteDefinition[] };

function pending(): RouteDefinition[] {
  const holder = globalThis as Holder;
  return (holder[KEY] ??= []);
}

export function from(uri: string): RouteDefinition {
  const route = new RouteDefinition(uri, userCallSite());
  pending().push(route);
  return route;
}

/** Removes and returns the routes defined with the top-level from() since the last call. */
export function takePendingRoutes(): RouteDefinition[] {
  return pending().splice(0);
}
