/**
 * The OpenAPI v3 documents kubectl reads before `create -f`, `apply -f` and `replace -f`: the root
 * (/openapi/v3) lists one document per group version, and each document's PATCH operations say
 * which kind they serve and that the server validates fields itself (the `fieldValidation` query
 * parameter). kubectl then sends `fieldValidation=Strict` and leaves validation to the server
 * instead of downloading schemas ("failed to download openapi" without these documents).
 *
 * The PATCH operations list no strategic-merge content type, as a real server does for custom
 * resources: kubectl's client-side apply then computes its strategic merge patch from the types it
 * has built in, so no full schema has to be served.
 */
import { createHash } from 'node:crypto';
import { RESOURCE_TYPES, type ResourceType } from './resources.ts';

/** `api/v1` or `apis/<group>/<version>`: the key of a group version in the root document. */
function gvPath(t: ResourceType): string {
  return t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`;
}

function schemaName(t: ResourceType): string {
  return t.group ? `io.k8s.api.${t.group.split('.')[0]}.${t.version}.${t.kind}` : `io.k8s.api.core.${t.version}.${t.kind}`;
}

const QUERY_PARAMETERS = ['dryRun', 'fieldManager', 'fieldValidation', 'force', 'pretty'].map((name) => ({
  name,
  in: 'query',
  schema: { type: name === 'force' ? 'boolean' : 'string', uniqueItems: true },
}));

function operations(t: ResourceType) {
  const gvk = { group: t.group, version: t.version, kind: t.kind };
  const ref = { $ref: `#/components/schemas/${schemaName(t)}` };
  const body = (types: readonly string[]) => ({ required: true, content: Object.fromEntries(types.map((c) => [c, { schema: ref }])) });
  const ok = { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } };
  const op = (action: string, verb: string, extra: Record<string, unknown> = {}) => ({
    operationId: `${verb}${t.kind}`,
    responses: ok,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
    parameters: QUERY_PARAMETERS,
    ...extra,
  });
  const base = `/${gvPath(t)}/namespaces/{namespace}/${t.plural}`;
  const pathParams = (named: boolean) => [
    ...(named ? [{ name: 'name', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } }] : []),
    { name: 'namespace', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } },
  ];
  return {
    [base]: {
      get: op('list', 'list'),
      post: op('post', 'create', { requestBody: body(['application/json']) }),
      parameters: pathParams(false),
    },
    [`${base}/{name}`]: {
      get: op('get', 'read'),
      put: op('put', 'replace', { requestBody: body(['application/json']) }),
      patch: op('patch', 'patch', { requestBody: body(['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml']) }),
      delete: op('delete', 'delete'),
      parameters: pathParams(true),
    },
  };
}

function schemas(types: readonly ResourceType[]) {
  const out: Record<string, unknown> = {
    'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta': { type: 'object', description: 'Standard object metadata.' },
  };
  for (const t of types) {
    out[schemaName(t)] = {
      type: 'object',
      description: `${t.kind} as this test server stores it.`,
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { allOf: [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }], default: {} },
      },
      'x-kubernetes-group-version-kind': [{ group: t.group, version: t.version, kind: t.kind }],
    };
  }
  return out;
}

/** The document of one group version (`api/v1`, `apis/coordination.k8s.io/v1`), or undefined. */
function groupVersionDocument(path: string): Record<string, unknown> | undefined {
  const types = RESOURCE_TYPES.filter((t) => gvPath(t) === path);
  if (types.length === 0) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.34.0' },
    paths: Object.assign({}, ...types.map(operations)),
    components: { schemas: schemas(types) },
  };
}

const documents = new Map<string, { text: string; hash: string }>();
for (const path of new Set(RESOURCE_TYPES.map(gvPath))) {
  const text = JSON.stringify(groupVersionDocument(path));
  documents.set(path, { text, hash: createHash('sha512').update(text).digest('hex').toUpperCase() });
}

/** GET /openapi/v3: where each group version's document is, with its hash as the real server gives. */
export function openApiV3Root() {
  return {
    paths: Object.fromEntries([...documents].map(([path, d]) => [path, { serverRelativeURL: `/openapi/v3/${path}?hash=${d.hash}` }])),
  };
}

/** The JSON text of `/openapi/v3/<group version path>`, or undefined for an unknown one. */
export function openApiV3Document(path: string): string | undefined {
  return documents.get(path)?.text;
}
