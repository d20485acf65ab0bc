/**
 * The three patch formats the apiserver accepts for built-in types: JSON Patch (RFC 6902), JSON
 * Merge Patch (RFC 7386) and strategic merge patch. For Leases and ConfigMaps strategic merge is
 * plain merge (they have no merge-keyed lists); for Pods the lists a test touches (conditions,
 * containers, container statuses) merge by their patchMergeKey.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

/** The patch document itself is malformed (400). */
export class PatchDecodeError extends Error {}
/** The patch is well-formed but cannot be applied to this object (422). */
export class PatchApplyError extends Error {}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchApplyError(`JSON pointer ${JSON.stringify(pointer)} does not start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(arr: Json[], token: string, forAdd: boolean): number {
  if (token === '-' && forAdd) return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new PatchApplyError(`invalid array index: ${token}`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new PatchApplyError(`array index out of bounds: ${i}`);
  return i;
}

function parentOf(doc: Json, path: string[], op: string): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const token of path.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, token, false)]!;
    else if (isObject(cur) && Object.hasOwn(cur, token)) cur = cur[token]!;
    else throw new PatchApplyError(`${op} operation does not apply: doc is missing path: "/${path.join('/')}": missing value`);
  }
  return { parent: cur, key: path[path.length - 1]! };
}

function getAt(doc: Json, path: string[], op: string): Json {
  let cur: Json = doc;
  for (const token of path) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, token, false)]!;
    else if (isObject(cur) && Object.hasOwn(cur, token)) cur = cur[token]!;
    else throw new PatchApplyError(`${op} operation does not apply: doc is missing path: "/${path.join('/')}": missing value`);
  }
  return cur;
}

function addAt(doc: Json, path: string[], value: Json, op: string): Json {
  if (path.length === 0) return value;
  const { parent, key } = parentOf(doc, path, op);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
  else if (isObject(parent)) parent[key] = value;
  else throw new PatchApplyError(`${op} operation does not apply: doc is missing path: "/${path.join('/')}": missing value`);
  return doc;
}

function removeAt(doc: Json, path: string[], op: string): Json {
  const { parent, key } = parentOf(doc, path, op);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
  else if (isObject(parent) && Object.hasOwn(parent, key)) delete parent[key];
  else throw new PatchApplyError(`${op} operation does not apply: doc is missing path: "/${path.join('/')}": missing value`);
  return doc;
}

function deepEqual(a: Json, b: Json): boolean {
  return stableStringify(a) === stableStringify(b);
}

/** JSON with object keys sorted: two semantically equal documents give the same text. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function applyJsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new PatchDecodeError('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = clone(target) as Json;
  for (const raw of patch) {
    if (!isObject(raw) || typeof raw.op !== 'string') throw new PatchDecodeError('Unexpected kind: <nil>');
    const op = raw.op;
    if (typeof raw.path !== 'string') throw new PatchApplyError(`${op} operation does not apply: missing path`);
    const path = parsePointer(raw.path);
    switch (op) {
      case 'add':
        doc = addAt(doc, path, clone(raw.value ?? null), op);
        break;
      case 'remove':
        doc = removeAt(doc, path, op);
        break;
      case 'replace':
        getAt(doc, path, op);
        doc = path.length === 0 ? clone(raw.value ?? null) : addAt(removeAt(doc, path, op), path, clone(raw.value ?? null), op);
        break;
      case 'move':
      case 'copy': {
        if (typeof raw.from !== 'string') throw new PatchApplyError(`${op} operation does not apply: missing from`);
        const from = parsePointer(raw.from);
        const value = clone(getAt(doc, from, op));
        if (op === 'move') doc = removeAt(doc, from, op);
        doc = addAt(doc, path, value, op);
        break;
      }
      case 'test':
        if (!deepEqual(getAt(doc, path, op), raw.value ?? null)) throw new PatchApplyError(`testing value ${raw.path} failed: test failed`);
        break;
      default:
        throw new PatchApplyError(`Unexpected kind: ${op}`);
    }
  }
  return doc;
}

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v) as Json;
  }
  return out;
}

/** patchMergeKey of the merge-keyed lists, by field name (Pod spec and status). */
const MERGE_KEYS: Record<string, string> = {
  conditions: 'type',
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
  ephemeralContainerStatuses: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
};

export function applyStrategicMergePatch(target: unknown, patch: unknown, mergeLists: boolean): unknown {
  if (!mergeLists) return applyMergePatch(target, patch);
  return smp(target, patch);
}

function smp(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const mergeKey = MERGE_KEYS[k];
    const current = out[k];
    if (mergeKey && Array.isArray(v) && Array.isArray(current)) {
      const merged: Json[] = current.map((x) => clone(x));
      for (const item of v) {
        if (!isObject(item) || !(mergeKey in item)) {
          merged.push(clone(item));
          continue;
        }
        const idx = merged.findIndex((m) => isObject(m) && deepEqual(m[mergeKey] ?? null, item[mergeKey] ?? null));
        if (item.$patch === 'delete') {
          if (idx >= 0) merged.splice(idx, 1);
        } else if (idx >= 0) merged[idx] = smp(merged[idx], item) as Json;
        else merged.push(smp({}, item) as Json);
      }
      out[k] = merged;
    } else out[k] = smp(current, v) as Json;
  }
  return out;
}
