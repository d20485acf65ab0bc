/**
 * The Kubernetes client the backend loads (with `await import()`, only when chosen): client-node's
 * kubeconfig handling and authenticators, with a small REST transport in place of its generated
 * clients (which cost about 60 MB and half a second to load). The names match client-node's.
 */
export { KubeConfig } from './kubeconfig.ts';
export { CoordinationV1Api, CoreV1Api, V1MicroTime } from './apis.ts';
export { Watch } from './watch.ts';
export { ApiError, KubeTransport } from './transport.ts';
