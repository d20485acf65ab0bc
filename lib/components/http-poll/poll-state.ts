import type { JsonValue } from '../../spi/leader-state.ts';
import { buildUrl } from '../http/target.ts';
import type { HttpPollEndpoint, Validators } from './http-poll-component.ts';

/**
 * What a poller under master: keeps in its lock's leader state, so a new leader continues from the
 * last completed item: `{ cursor, validators: { etag, lastModified } }`. The validators are stored
 * without their URL, which may hold a secret (a bot token in the path): they belong to the URL of the
 * saved cursor, and are stored only when the next poll would send them.
 */
export interface PollState {
  cursor: number | undefined;
  validators: Validators | undefined;
}

/** The URL of a poll at `cursor`: the target URL with the cursor parameter set, when there is one. */
export function pollUrl(endpoint: HttpPollEndpoint, cursor: number | undefined): string {
  const { target, options } = endpoint;
  return buildUrl(target.base, target.query, cursor !== undefined && options.cursorParam !== undefined ? { name: options.cursorParam, value: String(cursor) } : undefined);
}

export function encodePollState(endpoint: HttpPollEndpoint, state: PollState): JsonValue {
  const value: { [key: string]: JsonValue } = {};
  if (state.cursor !== undefined) value.cursor = state.cursor;
  const v = state.validators;
  if (v && v.url === pollUrl(endpoint, state.cursor)) {
    const validators: { [key: string]: JsonValue } = {};
    if (v.etag !== undefined) validators.etag = v.etag;
    if (v.lastModified !== undefined) validators.lastModified = v.lastModified;
    value.validators = validators;
  }
  return value;
}

/** The state a previous leader saved, or why it cannot be used (then the poller starts from the URL). */
export function decodePollState(endpoint: HttpPollEndpoint, saved: JsonValue): PollState | string {
  if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) return `expected an object, got ${JSON.stringify(saved)}`;
  const { cursor, validators } = saved;
  if (cursor !== undefined && (typeof cursor !== 'number' || !Number.isFinite(cursor))) return `the cursor ${JSON.stringify(cursor)} is not a number`;
  const state: PollState = { cursor, validators: undefined };
  if (validators !== undefined) {
    if (validators === null || typeof validators !== 'object' || Array.isArray(validators)) return `the validators ${JSON.stringify(validators)} are not an object`;
    const { etag, lastModified } = validators;
    if ((etag !== undefined && typeof etag !== 'string') || (lastModified !== undefined && typeof lastModified !== 'string')) {
      return `the validators ${JSON.stringify(validators)} are not strings`;
    }
    state.validators = { url: pollUrl(endpoint, cursor), etag, lastModified };
  }
  return state;
}

/**
 * The cursor after the first `done` items of a batch: one above the highest id done, but never past
 * an id not done yet (a server that returns items out of order must send that one again).
 */
export function partialCursor(ids: readonly number[], done: number): number | undefined {
  if (done <= 0 || ids.length === 0) return undefined;
  const next = Math.max(...ids.slice(0, done)) + 1;
  const rest = ids.slice(done);
  return rest.length === 0 ? next : Math.min(next, Math.min(...rest));
}
