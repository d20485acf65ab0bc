/**
 * Headers a master: route's exchanges carry. Not Camel* names, which the http and amqp producers keep
 * to themselves: the fencing token must travel to the stores and services a route writes to.
 */
export const MasterHeader = {
  /**
   * The fencing token of the leadership term the exchange runs for: strictly greater than every
   * earlier term's token for the same lock. A store that keeps the highest token it has seen per
   * resource refuses a write that carries a lower one, from a leader that was paused or cut off.
   */
  FencingToken: 'DromedaryFencingToken',
} as const;
