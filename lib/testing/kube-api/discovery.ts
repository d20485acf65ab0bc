/**
 * The discovery documents kubectl reads before it can address a resource (/version, /api, /apis
 * and the per-group-version resource lists). Served as plain application/json, so a client that
 * asks for aggregated discovery first falls back to these legacy documents.
 */
import { RESOURCE_TYPES, type ResourceType } from './resources.ts';

export const SERVER_VERSION = {
  major: '1',
  minor: '34',
  gitVersion: 'v1.34.0-dromedary',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.24.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export function apiVersions(serverAddress: string) {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupVersions() {
  const groups = new Map<string, string>();
  for (const t of RESOURCE_TYPES) if (t.group) groups.set(t.group, t.version);
  return [...groups.entries()];
}

function apiGroup(group: string, version: string) {
  const gv = { groupVersion: `${group}/${version}`, version };
  return { name: group, versions: [gv], preferredVersion: gv };
}

export function apiGroupList() {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groupVersions().map(([g, v]) => apiGroup(g, v)) };
}

export function apiGroupDocument(group: string) {
  const found = groupVersions().find(([g]) => g === group);
  return found ? { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(found[0], found[1]) } : undefined;
}

function resourceEntry(t: ResourceType) {
  const entry: Record<string, unknown> = {
    name: t.plural,
    singularName: t.kind.toLowerCase(),
    namespaced: true,
    kind: t.kind,
    verbs: t.verbs,
  };
  if (t.shortNames.length > 0) entry.shortNames = t.shortNames;
  return entry;
}

/** APIResourceList for `v1` or `group/version`, or undefined for an unknown group version. */
export function apiResourceList(groupVersion: string) {
  const types = RESOURCE_TYPES.filter((t) => t.apiVersion === groupVersion);
  if (types.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of types) {
    resources.push(resourceEntry(t));
    if (t.hasStatus) {
      resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: true, kind: t.kind, verbs: ['get', 'patch', 'update'] });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}
