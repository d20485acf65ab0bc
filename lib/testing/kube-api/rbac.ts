/**
 * Token → allowed rules, checked the way the RBAC authorizer matches a PolicyRule: verb, API group,
 * resource (`pods/status` for a subresource), optional resourceNames (never matching a request
 * without a name, such as create or an unfiltered list) and, as a test convenience, namespaces.
 */

export interface Rule {
  /** RBAC verbs: get, list, watch, create, update, patch, delete; `*` for all. */
  verbs: readonly string[];
  /** Plural resources (`leases`, `configmaps`, `pods`, `pods/status`); `*` for all. */
  resources: readonly string[];
  /** API groups (`coordination.k8s.io`, `` for core); all groups when omitted. */
  apiGroups?: readonly string[];
  /** Restricts the rule to these object names, like a Role's resourceNames. */
  resourceNames?: readonly string[];
  /** Restricts the rule to these namespaces (a Role is bound in one namespace); all when omitted. */
  namespaces?: readonly string[];
}

export interface RequestAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  name?: string;
  namespace?: string;
}

const matches = (list: readonly string[] | undefined, value: string): boolean =>
  list === undefined || list.includes('*') || list.includes(value);

export function ruleAllows(rule: Rule, attrs: RequestAttributes): boolean {
  const resource = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  if (!matches(rule.verbs, attrs.verb)) return false;
  if (!matches(rule.apiGroups, attrs.group)) return false;
  if (!matches(rule.resources, resource)) return false;
  if (rule.namespaces !== undefined && (attrs.namespace === undefined || !matches(rule.namespaces, attrs.namespace))) return false;
  if (rule.resourceNames !== undefined && rule.resourceNames.length > 0) {
    if (!attrs.name || !rule.resourceNames.includes(attrs.name)) return false;
  }
  return true;
}

export function rulesAllow(rules: readonly Rule[], attrs: RequestAttributes): boolean {
  return rules.some((r) => ruleAllows(r, attrs));
}
