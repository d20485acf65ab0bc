/**
 * Test aids for dromedary users (`dromedary/testing`).
 *
 * The Kubernetes API test server serves Leases, ConfigMaps, Pods, ServiceAccounts, Roles and
 * RoleBindings on 127.0.0.1 (plain HTTP, or HTTPS with `tls: true`), faithfully enough for
 * @kubernetes/client-node and kubectl, so singleton routes can be tested without a cluster:
 *
 * ```ts
 * import { startKubeApiServer } from 'dromedary/testing';
 * const api = await startKubeApiServer({ namespace: 'demo', tokens: { 'pod-a': {}, 'pod-b': {} } });
 * await api.writeKubeconfig('/tmp/kubeconfig-a', { token: 'pod-a' }); // KUBECONFIG for member a
 * api.createPod({ name: 'pod-a', labels: { app: 'demo' } });          // Running and Ready
 * api.faults('pod-a').blackhole();                                     // partition member a
 * api.getLease('my-lock')?.spec;                                       // inspect the election
 * await api.close();
 * ```
 */
export * from './kube-api/index.ts';
