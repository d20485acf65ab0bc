export {
  KubeApiServer,
  startKubeApiServer,
  type KubeApiServerOptions,
  type TokenSpec,
  type RequestRecord,
  type Verb,
  type PodSpecInput,
  type PodStatusInput,
} from './server.ts';
export { FaultControl } from './faults.ts';
export { type Rule } from './rbac.ts';
export { kubeconfigYaml, type KubeconfigOptions } from './kubeconfig.ts';
export { runKubeApiCommand, type KubeApiCommandOptions } from './command.ts';
export { LEASES, CONFIGMAPS, PODS, SERVICEACCOUNTS, ROLES, ROLEBINDINGS, type ResourceType, type KubeObject, type ObjectMeta } from './resources.ts';
export { ObjectStore, type StoreEvent } from './store.ts';
export { parseLabelSelector, matchesLabels, parseFieldSelector, SelectorError, type Requirement } from './selectors.ts';
export { formatMicroTime, parseMicroTime } from './microtime.ts';
export type { Status } from './status.ts';
