import { hostname } from 'node:os';
import { randomHex } from '../../random-hex.ts';

/**
 * A process's instance id: the host name, the pid and a random suffix (client-go recommends host
 * name plus a random part). Member ids are chosen by people and can repeat (two processes given the
 * same DROMEDARY_MEMBER_ID, a second process in one pod, a member restarted under its old id);
 * instance ids never do, so the elector tells processes apart by them. Readable on purpose: an
 * operator who finds two instances under one member id can tell which host and process each is.
 */
export function newInstanceId(): string {
  return `${hostname()}-${process.pid}-${randomHex(4)}`;
}
