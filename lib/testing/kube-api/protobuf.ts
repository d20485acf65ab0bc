/**
 * Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), which
 * kubectl's typed clients send for built-in kinds (`kubectl create configmap`). A body is the magic
 * `k8s\0` and a runtime.Unknown message {typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4};
 * `raw` holds the object, whose field numbers come from k8s.io/api's generated.proto. They are
 * decoded into the JSON shape the resource types already read, so validation and errors stay one.
 */
import { formatMicroTime } from './microtime.ts';

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export class ProtobufDecodeError extends Error {}

interface Field {
  number: number;
  wire: number;
  /** The varint value (wire type 0). */
  varint?: bigint;
  /** The bytes (wire type 2). */
  bytes?: Buffer;
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= buf.length || shift > 63n) throw new ProtobufDecodeError('truncated varint');
      const b = buf[at++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (at < buf.length) {
    const key = varint();
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) out.push({ number, wire, varint: varint() });
    else if (wire === 2) {
      const length = Number(varint());
      if (at + length > buf.length) throw new ProtobufDecodeError('truncated field');
      out.push({ number, wire, bytes: buf.subarray(at, at + length) });
      at += length;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new ProtobufDecodeError(`unsupported wire type ${wire}`);
  }
  return out;
}

const text = (f: Field): string => f.bytes?.toString('utf8') ?? '';
const int = (f: Field): number => Number(BigInt.asIntN(64, f.varint ?? 0n));

function map(entries: Field[], value: (f: Field) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of entries) {
    const parts = fields(e.bytes ?? Buffer.alloc(0));
    const key = parts.find((p) => p.number === 1);
    const val = parts.find((p) => p.number === 2);
    out[key ? text(key) : ''] = val ? value(val) : '';
  }
  return out;
}

function microTime(f: Field): string {
  const parts = fields(f.bytes ?? Buffer.alloc(0));
  const seconds = parts.find((p) => p.number === 1);
  const nanos = parts.find((p) => p.number === 2);
  const micros = Math.floor((nanos ? int(nanos) : 0) / 1000);
  return formatMicroTime({ ms: (seconds ? int(seconds) : 0) * 1000 + Math.floor(micros / 1000), micros: micros % 1000 });
}

function objectMeta(buf: Buffer): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  const all = fields(buf);
  const names: Record<number, string> = { 1: 'name', 2: 'generateName', 3: 'namespace', 5: 'uid', 6: 'resourceVersion' };
  for (const f of all) if (names[f.number] && text(f) !== '') meta[names[f.number]!] = text(f);
  const labels = all.filter((f) => f.number === 11);
  const annotations = all.filter((f) => f.number === 12);
  const finalizers = all.filter((f) => f.number === 14);
  if (labels.length > 0) meta.labels = map(labels, text);
  if (annotations.length > 0) meta.annotations = map(annotations, text);
  if (finalizers.length > 0) meta.finalizers = finalizers.map(text);
  return meta;
}

type KindDecoder = (buf: Buffer) => Record<string, unknown>;

const DECODERS: Record<string, KindDecoder> = {
  'v1/ConfigMap': (buf) => {
    const all = fields(buf);
    const out: Record<string, unknown> = {};
    const meta = all.find((f) => f.number === 1);
    out.metadata = meta ? objectMeta(meta.bytes!) : {};
    const data = all.filter((f) => f.number === 2);
    const binary = all.filter((f) => f.number === 3);
    const immutable = all.find((f) => f.number === 4);
    if (data.length > 0) out.data = map(data, text);
    if (binary.length > 0) out.binaryData = map(binary, (f) => (f.bytes ?? Buffer.alloc(0)).toString('base64'));
    if (immutable) out.immutable = immutable.varint !== 0n;
    return out;
  },
  'coordination.k8s.io/v1/Lease': (buf) => {
    const all = fields(buf);
    const meta = all.find((f) => f.number === 1);
    const specField = all.find((f) => f.number === 2);
    const spec: Record<string, unknown> = {};
    for (const f of specField ? fields(specField.bytes!) : []) {
      if (f.number === 1) spec.holderIdentity = text(f);
      else if (f.number === 2) spec.leaseDurationSeconds = int(f);
      else if (f.number === 3) spec.acquireTime = microTime(f);
      else if (f.number === 4) spec.renewTime = microTime(f);
      else if (f.number === 5) spec.leaseTransitions = int(f);
      else if (f.number === 6) spec.strategy = text(f);
      else if (f.number === 7) spec.preferredHolder = text(f);
    }
    return { metadata: meta ? objectMeta(meta.bytes!) : {}, spec };
  },
  'v1/ServiceAccount': (buf) => {
    const all = fields(buf);
    const meta = all.find((f) => f.number === 1);
    const out: Record<string, unknown> = { metadata: meta ? objectMeta(meta.bytes!) : {} };
    const secrets = all.filter((f) => f.number === 2).map((f) => strings(f.bytes!, { 1: 'kind', 2: 'namespace', 3: 'name', 5: 'apiVersion' }));
    const pulls = all.filter((f) => f.number === 3).map((f) => strings(f.bytes!, { 1: 'name' }));
    const automount = all.find((f) => f.number === 4);
    if (secrets.length > 0) out.secrets = secrets;
    if (pulls.length > 0) out.imagePullSecrets = pulls;
    if (automount) out.automountServiceAccountToken = automount.varint !== 0n;
    return out;
  },
  'rbac.authorization.k8s.io/v1/Role': (buf) => {
    const all = fields(buf);
    const meta = all.find((f) => f.number === 1);
    const names: Record<number, string> = { 1: 'verbs', 2: 'apiGroups', 3: 'resources', 4: 'resourceNames', 5: 'nonResourceURLs' };
    const rules = all
      .filter((f) => f.number === 2)
      .map((f) => {
        const rule: Record<string, string[]> = {};
        for (const part of fields(f.bytes!)) if (names[part.number]) (rule[names[part.number]!] ??= []).push(text(part));
        return rule;
      });
    return { metadata: meta ? objectMeta(meta.bytes!) : {}, rules };
  },
  'rbac.authorization.k8s.io/v1/RoleBinding': (buf) => {
    const all = fields(buf);
    const meta = all.find((f) => f.number === 1);
    const subjects = all.filter((f) => f.number === 2).map((f) => strings(f.bytes!, { 1: 'kind', 2: 'apiGroup', 3: 'name', 4: 'namespace' }));
    const ref = all.find((f) => f.number === 3);
    const out: Record<string, unknown> = { metadata: meta ? objectMeta(meta.bytes!) : {} };
    if (subjects.length > 0) out.subjects = subjects;
    if (ref) out.roleRef = strings(ref.bytes!, { 1: 'apiGroup', 2: 'kind', 3: 'name' });
    return out;
  },
};

/** A message of optional strings, by field number, as JSON (empty strings omitted, as Go's omitempty). */
function strings(buf: Buffer, names: Record<number, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fields(buf)) if (names[f.number] && text(f) !== '') out[names[f.number]!] = text(f);
  return out;
}

/** The kinds whose protobuf bodies this server reads. */
export const PROTOBUF_KINDS = Object.keys(DECODERS).map((k) => k.slice(k.lastIndexOf('/') + 1));

/**
 * Decodes a protobuf request body into the JSON object a client would have sent, checking that it
 * holds `expected` (`v1/ConfigMap`). Throws ProtobufDecodeError with the reason otherwise.
 */
export function decodeProtobufBody(body: Buffer, expected: { apiVersion: string; kind: string }): Record<string, unknown> {
  if (!body.subarray(0, 4).equals(MAGIC)) throw new ProtobufDecodeError('the body does not start with the Kubernetes protobuf prefix "k8s\\x00"');
  const unknown = fields(body.subarray(4));
  const typeMeta = unknown.find((f) => f.number === 1);
  const raw = unknown.find((f) => f.number === 2);
  const tm = fields(typeMeta?.bytes ?? Buffer.alloc(0));
  const apiVersion = text(tm.find((f) => f.number === 1) ?? { number: 1, wire: 2 });
  const kind = text(tm.find((f) => f.number === 2) ?? { number: 2, wire: 2 });
  if (apiVersion !== expected.apiVersion || kind !== expected.kind) {
    throw new ProtobufDecodeError(`the body holds ${kind || 'no kind'} (${apiVersion || 'no apiVersion'}), not ${expected.kind} (${expected.apiVersion})`);
  }
  const decoder = DECODERS[`${apiVersion}/${kind}`];
  if (!decoder) throw new ProtobufDecodeError(`this test server reads protobuf bodies of ${PROTOBUF_KINDS.join(' and ')} only; send ${kind} as application/json`);
  return { apiVersion, kind, ...decoder(raw?.bytes ?? Buffer.alloc(0)) };
}
