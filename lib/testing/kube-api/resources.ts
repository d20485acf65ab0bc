/**
 * The served resource types (Lease, ConfigMap, Pod): how a request body is decoded (400s), what
 * validation rejects (422s), which update strategy applies, and which fields a fieldSelector sees.
 * Stored objects are plain JSON without kind/apiVersion, as list items are served.
 */
import { type FieldError, type GroupResource, badRequest, invalid } from './status.ts';
import { RFC3339_MICRO, TimeParseError, formatMicroTime, parseMicroTime } from './microtime.ts';

export interface ObjectMeta {
  name: string;
  generateName?: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: unknown[];
  finalizers?: string[];
}

/** A stored object: metadata plus the type's own top-level fields (spec, data, status, …). */
export interface KubeObject {
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** What decoding a request body yields: metadata as sent (all optional) and the type's fields. */
export interface DecodedObject {
  metadata: Partial<ObjectMeta> & { resourceVersion?: string; uid?: string };
  [field: string]: unknown;
}

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly listKind: string;
  readonly plural: string;
  readonly gr: GroupResource;
  /** PUT to a missing object creates it (Lease) instead of 404 (ConfigMap, Pod). */
  readonly allowCreateOnUpdate: boolean;
  /** PUT without metadata.resourceVersion is last-write-wins (ConfigMap, Pod) instead of 422 (Lease). */
  readonly allowUnconditionalUpdate: boolean;
  /** Has a status subresource; writes to the main resource keep the old status. */
  readonly hasStatus: boolean;
  /** DELETE answers with the deleted object rather than a Success Status (Pod). */
  readonly returnDeletedObject: boolean;
  /** Field names allowed in a fieldSelector, and the error text for any other. */
  readonly selectableFields: readonly string[];
  readonly shortNames: readonly string[];
  readonly verbs: readonly string[];
  fieldSelectorError(field: string): string;
  /** Body → object; throws 400 for undecodable input and collects unknown-field warnings. */
  decode(body: unknown, warnings: string[]): DecodedObject;
  /** Field errors for a create or an update (old given), empty when valid. */
  validate(obj: KubeObject, old?: KubeObject): FieldError[];
  fieldValues(obj: KubeObject): Record<string, string>;
  /** Adjusts a new object before it is stored (Pod: status is reset by the API). */
  prepareForCreate?(obj: KubeObject): void;
  /** Canonical field order for output. */
  order(obj: KubeObject): KubeObject;
}

type Checker = (value: unknown, path: string) => unknown;

class DecodeError extends Error {}

function goType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

function mismatch(v: unknown, struct: string, path: string, goTarget: string): never {
  const shown = typeof v === 'number' ? `number ${v}` : goType(v);
  throw new DecodeError(`json: cannot unmarshal ${shown} into Go struct field ${struct}.${path} of type ${goTarget}`);
}

const str =
  (struct: string): Checker =>
  (v, path) =>
    typeof v === 'string' ? v : mismatch(v, struct, path, 'string');
const int32 =
  (struct: string): Checker =>
  (v, path) =>
    typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? v : mismatch(v, struct, path, 'int32');
const bool =
  (struct: string): Checker =>
  (v, path) =>
    typeof v === 'boolean' ? v : mismatch(v, struct, path, 'bool');
const stringMap =
  (struct: string): Checker =>
  (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) mismatch(v, struct, path, 'map[string]string');
    for (const val of Object.values(v as object)) if (typeof val !== 'string') mismatch(val, struct, path, 'string');
    return v;
  };
const array =
  (struct: string, goTarget: string): Checker =>
  (v, path) =>
    Array.isArray(v) ? v : mismatch(v, struct, path, goTarget);
const object =
  (struct: string, goTarget: string): Checker =>
  (v, path) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? v : mismatch(v, struct, path, goTarget);
const microTime =
  (struct: string): Checker =>
  (v, path) => {
    if (typeof v !== 'string') return mismatch(v, struct, path, 'string');
    try {
      return formatMicroTime(parseMicroTime(v));
    } catch (err) {
      if (err instanceof TimeParseError) throw new DecodeError(err.message);
      throw err;
    }
  };
const passthrough: Checker = (v) => v;

const META_FIELDS: Record<string, Checker> = {
  name: str('ObjectMeta'),
  generateName: str('ObjectMeta'),
  namespace: str('ObjectMeta'),
  selfLink: str('ObjectMeta'),
  uid: str('ObjectMeta'),
  resourceVersion: str('ObjectMeta'),
  generation: passthrough,
  creationTimestamp: passthrough,
  deletionTimestamp: passthrough,
  deletionGracePeriodSeconds: passthrough,
  labels: stringMap('ObjectMeta'),
  annotations: stringMap('ObjectMeta'),
  ownerReferences: array('ObjectMeta', '[]v1.OwnerReference'),
  finalizers: array('ObjectMeta', '[]string'),
  managedFields: passthrough,
};

const META_ORDER = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
];

/** Copies known fields, JSON null meaning unset; unknown fields are dropped with a warning (fieldValidation=Warn). */
function decodeFields(
  input: Record<string, unknown>,
  known: Record<string, Checker>,
  prefix: string,
  warnings: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    const check = known[k];
    if (!check) {
      warnings.push(`unknown field "${prefix}${k}"`);
      continue;
    }
    if (v === null) continue;
    out[k] = check(v, `${prefix}${k}`);
  }
  return out;
}

function ordered<T extends Record<string, unknown>>(obj: T, order: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const k of order) if (obj[k] !== undefined) out[k] = obj[k];
  for (const k of Object.keys(obj)) if (!(k in out) && obj[k] !== undefined) out[k] = obj[k];
  return out as T;
}

interface TypeSpec {
  group: string;
  version: string;
  kind: string;
  plural: string;
  shortNames: string[];
  allowCreateOnUpdate: boolean;
  allowUnconditionalUpdate: boolean;
  hasStatus: boolean;
  returnDeletedObject: boolean;
  selectableFields: string[];
  fieldSelectorError: (field: string) => string;
  topLevel: Record<string, Checker>;
  topOrder: string[];
  /** Nested decoders for top-level objects whose fields are checked one by one. */
  nested?: Record<string, { struct: string; fields: Record<string, Checker>; order: string[] }>;
  validate(obj: KubeObject, old?: KubeObject): FieldError[];
  fieldValues?(obj: KubeObject): Record<string, string>;
  prepareForCreate?(obj: KubeObject): void;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function validateMeta(obj: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const name = obj.metadata.name;
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    errors.push({
      type: 'FieldValueInvalid',
      field: 'metadata.name',
      value: name,
      detail:
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    });
  }
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    const slash = k.indexOf('/');
    const keyName = slash >= 0 ? k.slice(slash + 1) : k;
    const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
    if (keyName.length > 63 || !LABEL_NAME.test(keyName) || (prefix !== undefined && !DNS1123_SUBDOMAIN.test(prefix))) {
      errors.push({
        type: 'FieldValueInvalid',
        field: 'metadata.labels',
        value: k,
        detail: "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
      });
    }
    if (v.length > 63 || (v !== '' && !LABEL_NAME.test(v))) {
      errors.push({
        type: 'FieldValueInvalid',
        field: 'metadata.labels',
        value: v,
        detail: "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
      });
    }
  }
  return errors;
}

const metaOnlySelector = (field: string): string =>
  `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`;

const LEASE_SPEC: Record<string, Checker> = {
  holderIdentity: str('LeaseSpec'),
  leaseDurationSeconds: int32('LeaseSpec'),
  acquireTime: microTime('LeaseSpec'),
  renewTime: microTime('LeaseSpec'),
  leaseTransitions: int32('LeaseSpec'),
  strategy: str('LeaseSpec'),
  preferredHolder: str('LeaseSpec'),
};

const LEASE: TypeSpec = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  shortNames: [],
  allowCreateOnUpdate: true,
  allowUnconditionalUpdate: false,
  hasStatus: false,
  returnDeletedObject: false,
  selectableFields: ['metadata.name', 'metadata.namespace'],
  fieldSelectorError: metaOnlySelector,
  topLevel: { metadata: passthrough, spec: object('Lease', 'v1.LeaseSpec') },
  topOrder: ['metadata', 'spec'],
  nested: {
    spec: {
      struct: 'LeaseSpec',
      fields: LEASE_SPEC,
      order: ['holderIdentity', 'leaseDurationSeconds', 'acquireTime', 'renewTime', 'leaseTransitions', 'strategy', 'preferredHolder'],
    },
  },
  validate(obj) {
    const errors = validateMeta(obj);
    const spec = (obj.spec ?? {}) as Record<string, unknown>;
    if (typeof spec.leaseDurationSeconds === 'number' && spec.leaseDurationSeconds <= 0) {
      errors.push({ type: 'FieldValueInvalid', field: 'spec.leaseDurationSeconds', value: spec.leaseDurationSeconds, detail: 'must be greater than 0' });
    }
    if (typeof spec.leaseTransitions === 'number' && spec.leaseTransitions < 0) {
      errors.push({ type: 'FieldValueInvalid', field: 'spec.leaseTransitions', value: spec.leaseTransitions, detail: 'must be greater than or equal to 0' });
    }
    if (spec.preferredHolder && !spec.strategy) {
      errors.push({ type: 'FieldValueForbidden', field: 'spec.preferredHolder', detail: 'may only be specified if `strategy` is defined' });
    }
    return errors;
  },
};

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

const CONFIGMAP: TypeSpec = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  shortNames: ['cm'],
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  hasStatus: false,
  returnDeletedObject: false,
  selectableFields: ['metadata.name', 'metadata.namespace'],
  fieldSelectorError: metaOnlySelector,
  topLevel: {
    metadata: passthrough,
    immutable: bool('ConfigMap'),
    data: stringMap('ConfigMap'),
    binaryData: stringMap('ConfigMap'),
  },
  topOrder: ['metadata', 'immutable', 'data', 'binaryData'],
  validate(obj, old) {
    const errors = validateMeta(obj);
    for (const field of ['data', 'binaryData'] as const) {
      for (const key of Object.keys((obj[field] ?? {}) as object)) {
        if (key.length > 253 || !CONFIG_KEY.test(key)) {
          errors.push({
            type: 'FieldValueInvalid',
            field: `${field}[${key}]`,
            value: key,
            detail: "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
          });
        }
      }
    }
    if (old && old.immutable === true) {
      if (obj.immutable !== true) errors.push({ type: 'FieldValueForbidden', field: 'immutable', detail: 'field is immutable when `immutable` is set' });
      if (JSON.stringify(obj.data ?? {}) !== JSON.stringify(old.data ?? {}))
        errors.push({ type: 'FieldValueForbidden', field: 'data', detail: 'field is immutable when `immutable` is set' });
    }
    return errors;
  },
};

const POD_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.schedulerName',
  'spec.serviceAccountName',
  'spec.hostNetwork',
  'status.phase',
  'status.podIP',
  'status.nominatedNodeName',
];

const POD: TypeSpec = {
  group: '',
  version: 'v1',
  kind: 'Pod',
  plural: 'pods',
  shortNames: ['po'],
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  hasStatus: true,
  returnDeletedObject: true,
  selectableFields: POD_FIELDS,
  fieldSelectorError: (field) => `field label not supported: ${field}`,
  topLevel: { metadata: passthrough, spec: object('Pod', 'v1.PodSpec'), status: object('Pod', 'v1.PodStatus') },
  topOrder: ['metadata', 'spec', 'status'],
  validate(obj) {
    const errors = validateMeta(obj);
    const containers = (obj.spec as { containers?: unknown } | undefined)?.containers;
    if (!Array.isArray(containers) || containers.length === 0) {
      errors.push({ type: 'FieldValueRequired', field: 'spec.containers', detail: '' });
    } else {
      containers.forEach((c, i) => {
        const name = (c as { name?: unknown } | null)?.name;
        if (typeof name !== 'string' || name === '') errors.push({ type: 'FieldValueRequired', field: `spec.containers[${i}].name`, detail: '' });
        const image = (c as { image?: unknown } | null)?.image;
        if (typeof image !== 'string' || image === '') errors.push({ type: 'FieldValueRequired', field: `spec.containers[${i}].image`, detail: '' });
      });
    }
    return errors;
  },
  fieldValues(obj) {
    const spec = (obj.spec ?? {}) as Record<string, unknown>;
    const status = (obj.status ?? {}) as Record<string, unknown>;
    const s = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
    return {
      'metadata.name': obj.metadata.name,
      'metadata.namespace': obj.metadata.namespace,
      'spec.nodeName': s(spec.nodeName),
      'spec.restartPolicy': s(spec.restartPolicy),
      'spec.schedulerName': s(spec.schedulerName),
      'spec.serviceAccountName': s(spec.serviceAccountName),
      'spec.hostNetwork': s(spec.hostNetwork ?? false),
      'status.phase': s(status.phase),
      'status.podIP': s(status.podIP),
      'status.nominatedNodeName': s(status.nominatedNodeName),
    };
  },
  prepareForCreate(obj) {
    // The API resets status on create; only the kubelet (here: setPodStatus or the status subresource) moves it.
    obj.status = { phase: 'Pending', qosClass: 'BestEffort' };
  },
};

/** A list whose items must be objects, each checked by `item` (its index in the field path). */
const objectList =
  (struct: string, goTarget: string, item: (v: Record<string, unknown>, path: string) => void): Checker =>
  (v, path) => {
    if (!Array.isArray(v)) mismatch(v, struct, path, goTarget);
    (v as unknown[]).forEach((entry, i) => {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) mismatch(entry, struct, `${path}[${i}]`, goTarget.replace(/^\[\]/, ''));
      item(entry as Record<string, unknown>, `${path}[${i}]`);
    });
    return v;
  };
const stringsIn = (struct: string, entry: Record<string, unknown>, fields: readonly string[], path: string): void => {
  for (const f of fields) {
    const v = entry[f];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v)) mismatch(v, struct, `${path}.${f}`, '[]string');
    for (const s of v as unknown[]) if (typeof s !== 'string') mismatch(s, struct, `${path}.${f}`, 'string');
  }
};
const stringIn = (struct: string, entry: Record<string, unknown>, fields: readonly string[], path: string): void => {
  for (const f of fields) if (entry[f] !== undefined && entry[f] !== null && typeof entry[f] !== 'string') mismatch(entry[f], struct, `${path}.${f}`, 'string');
};

const SERVICEACCOUNT: TypeSpec = {
  group: '',
  version: 'v1',
  kind: 'ServiceAccount',
  plural: 'serviceaccounts',
  shortNames: ['sa'],
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  hasStatus: false,
  returnDeletedObject: true,
  selectableFields: ['metadata.name', 'metadata.namespace'],
  fieldSelectorError: metaOnlySelector,
  topLevel: {
    metadata: passthrough,
    secrets: array('ServiceAccount', '[]v1.ObjectReference'),
    imagePullSecrets: array('ServiceAccount', '[]v1.LocalObjectReference'),
    automountServiceAccountToken: bool('ServiceAccount'),
  },
  topOrder: ['metadata', 'secrets', 'imagePullSecrets', 'automountServiceAccountToken'],
  validate: (obj) => validateMeta(obj),
};

const POLICY_RULES = objectList('Role', '[]v1.PolicyRule', (rule, path) => stringsIn('PolicyRule', rule, ['verbs', 'apiGroups', 'resources', 'resourceNames', 'nonResourceURLs'], path));

const ROLE: TypeSpec = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'Role',
  plural: 'roles',
  shortNames: [],
  allowCreateOnUpdate: true,
  allowUnconditionalUpdate: true,
  hasStatus: false,
  returnDeletedObject: false,
  selectableFields: ['metadata.name', 'metadata.namespace'],
  fieldSelectorError: metaOnlySelector,
  topLevel: { metadata: passthrough, rules: POLICY_RULES },
  topOrder: ['metadata', 'rules'],
  validate(obj) {
    const errors = validateMeta(obj);
    const rules = (obj.rules ?? []) as { verbs?: string[]; apiGroups?: string[]; resources?: string[]; nonResourceURLs?: string[] }[];
    rules.forEach((rule, i) => {
      if (!rule.verbs || rule.verbs.length === 0) {
        errors.push({ type: 'FieldValueRequired', field: `rules[${i}].verbs`, detail: 'verbs must contain at least one value' });
      }
      if (rule.nonResourceURLs && rule.nonResourceURLs.length > 0) {
        errors.push({ type: 'FieldValueInvalid', field: `rules[${i}].nonResourceURLs`, value: rule.nonResourceURLs, detail: 'namespaced rules cannot apply to non-resource URLs' });
      }
      if (!rule.apiGroups || rule.apiGroups.length === 0) {
        errors.push({ type: 'FieldValueRequired', field: `rules[${i}].apiGroups`, detail: 'resource rules must supply at least one api group' });
      }
      if (!rule.resources || rule.resources.length === 0) {
        errors.push({ type: 'FieldValueRequired', field: `rules[${i}].resources`, detail: 'resource rules must supply at least one resource' });
      }
    });
    return errors;
  },
};

const ROLEBINDING: TypeSpec = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'RoleBinding',
  plural: 'rolebindings',
  shortNames: [],
  allowCreateOnUpdate: true,
  allowUnconditionalUpdate: true,
  hasStatus: false,
  returnDeletedObject: false,
  selectableFields: ['metadata.name', 'metadata.namespace'],
  fieldSelectorError: metaOnlySelector,
  topLevel: {
    metadata: passthrough,
    subjects: objectList('RoleBinding', '[]v1.Subject', (subject, path) => stringIn('Subject', subject, ['kind', 'apiGroup', 'name', 'namespace'], path)),
    roleRef: (v, path) => {
      const ref = object('RoleBinding', 'v1.RoleRef')(v, path) as Record<string, unknown>;
      stringIn('RoleRef', ref, ['apiGroup', 'kind', 'name'], path);
      return ref;
    },
  },
  topOrder: ['metadata', 'subjects', 'roleRef'],
  validate(obj, old) {
    const errors = validateMeta(obj);
    const ref = (obj.roleRef ?? {}) as { apiGroup?: string; kind?: string; name?: string };
    if (ref.apiGroup !== 'rbac.authorization.k8s.io') {
      errors.push({ type: 'FieldValueNotSupported', field: 'roleRef.apiGroup', value: ref.apiGroup ?? '', detail: 'supported values: "rbac.authorization.k8s.io"' });
    }
    if (ref.kind !== 'Role' && ref.kind !== 'ClusterRole') {
      errors.push({ type: 'FieldValueNotSupported', field: 'roleRef.kind', value: ref.kind ?? '', detail: 'supported values: "Role", "ClusterRole"' });
    }
    if (!ref.name) errors.push({ type: 'FieldValueRequired', field: 'roleRef.name', detail: '' });
    ((obj.subjects ?? []) as { kind?: string; name?: string }[]).forEach((subject, i) => {
      if (!subject.name) errors.push({ type: 'FieldValueRequired', field: `subjects[${i}].name`, detail: '' });
      if (!['ServiceAccount', 'User', 'Group'].includes(subject.kind ?? '')) {
        errors.push({ type: 'FieldValueNotSupported', field: `subjects[${i}].kind`, value: subject.kind ?? '', detail: 'supported values: "ServiceAccount", "User", "Group"' });
      }
    });
    if (old && JSON.stringify(old.roleRef) !== JSON.stringify(obj.roleRef)) {
      errors.push({ type: 'FieldValueInvalid', field: 'roleRef', value: obj.roleRef, detail: 'cannot change roleRef' });
    }
    return errors;
  },
};

function makeType(spec: TypeSpec): ResourceType {
  const apiVersion = spec.group ? `${spec.group}/${spec.version}` : spec.version;
  const gr = { group: spec.group, resource: spec.plural };
  const cannotHandle = (msg: string): never => {
    throw badRequest(`${spec.kind} in version "${spec.version}" cannot be handled as a ${spec.kind}: ${msg}`);
  };
  return {
    group: spec.group,
    version: spec.version,
    apiVersion,
    kind: spec.kind,
    listKind: `${spec.kind}List`,
    plural: spec.plural,
    gr,
    allowCreateOnUpdate: spec.allowCreateOnUpdate,
    allowUnconditionalUpdate: spec.allowUnconditionalUpdate,
    hasStatus: spec.hasStatus,
    returnDeletedObject: spec.returnDeletedObject,
    selectableFields: spec.selectableFields,
    shortNames: spec.shortNames,
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    fieldSelectorError: spec.fieldSelectorError,
    decode(body, warnings) {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        cannotHandle(`json: cannot unmarshal ${goType(body)} into Go value of type ${spec.group || 'core'}.${spec.kind}`);
      }
      const input = body as Record<string, unknown>;
      if (input.apiVersion !== undefined && input.apiVersion !== apiVersion && input.apiVersion !== '') {
        throw badRequest(`the API version in the data (${String(input.apiVersion)}) does not match the expected API version (${apiVersion})`);
      }
      if (input.kind !== undefined && input.kind !== spec.kind && input.kind !== '') {
        throw badRequest(`the kind in the data (${String(input.kind)}) does not match the expected kind (${spec.kind})`);
      }
      try {
        const { apiVersion: _a, kind: _k, ...rest } = input;
        const top = decodeFields(rest, spec.topLevel, '', warnings);
        const meta = top.metadata === undefined ? {} : object(spec.kind, 'v1.ObjectMeta')(top.metadata, 'metadata');
        top.metadata = decodeFields(meta as Record<string, unknown>, META_FIELDS, 'metadata.', warnings);
        delete (top.metadata as Record<string, unknown>).managedFields;
        for (const [field, nested] of Object.entries(spec.nested ?? {})) {
          if (top[field] !== undefined) top[field] = decodeFields(top[field] as Record<string, unknown>, nested.fields, `${field}.`, warnings);
        }
        return top as DecodedObject;
      } catch (err) {
        if (err instanceof DecodeError) return cannotHandle(err.message);
        throw err;
      }
    },
    validate: spec.validate,
    fieldValues(obj) {
      return spec.fieldValues ? spec.fieldValues(obj) : { 'metadata.name': obj.metadata.name, 'metadata.namespace': obj.metadata.namespace };
    },
    prepareForCreate: spec.prepareForCreate,
    order(obj) {
      const out = ordered(obj as Record<string, unknown>, spec.topOrder) as KubeObject;
      out.metadata = ordered(obj.metadata as unknown as Record<string, unknown>, META_ORDER) as unknown as ObjectMeta;
      for (const [field, nested] of Object.entries(spec.nested ?? {})) {
        if (out[field] !== undefined) out[field] = ordered(out[field] as Record<string, unknown>, nested.order);
      }
      return out;
    },
  };
}

export const LEASES = makeType(LEASE);
export const CONFIGMAPS = makeType(CONFIGMAP);
export const PODS = makeType(POD);
export const SERVICEACCOUNTS = makeType(SERVICEACCOUNT);
export const ROLES = makeType(ROLE);
export const ROLEBINDINGS = makeType(ROLEBINDING);
export const RESOURCE_TYPES: readonly ResourceType[] = [LEASES, CONFIGMAPS, PODS, SERVICEACCOUNTS, ROLES, ROLEBINDINGS];

/** Validation failure as a 422 naming the Kind (`Lease.coordination.k8s.io "x" is invalid: …`). */
export function invalidObject(type: ResourceType, name: string, errors: FieldError[]) {
  return invalid({ group: type.group, kind: type.kind }, name, errors);
}

export { RFC3339_MICRO };
