/**
 * Test helpers that drive the Kubernetes API test server with the real @kubernetes/client-node.
 * Imported only by tests: the server itself must not depend on the client.
 */
import * as k8s from '@kubernetes/client-node';
import type { KubeApiServer } from '../../lib/testing/index.ts';

export { k8s };

export function kubeConfig(server: KubeApiServer, token?: string, namespace = server.namespace): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(server.kubeconfig({ token, namespace }));
  return kc;
}

export function clients(server: KubeApiServer, token?: string) {
  const kc = kubeConfig(server, token);
  return { kc, coord: kc.makeApiClient(k8s.CoordinationV1Api), core: kc.makeApiClient(k8s.CoreV1Api) };
}

/** Runs a promise expected to fail with an ApiException; returns its code and parsed Status body. */
export async function apiError(p: Promise<unknown>): Promise<{ code: number; body: Record<string, any>; raw: unknown }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      const text = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
      let body: Record<string, any> = {};
      try {
        body = JSON.parse(text);
      } catch {
        body = {};
      }
      return { code: err.code, body, raw: err };
    }
    throw err;
  }
  throw new Error('expected the call to fail with an ApiException, but it succeeded');
}

export interface WatchEvent {
  type: string;
  object: any;
}

/** A running client-node watch collecting its events; `done` settles when the stream ends. */
export async function startWatch(kc: k8s.KubeConfig, path: string, query: Record<string, string | number | boolean | undefined> = {}) {
  const events: WatchEvent[] = [];
  let resolveDone!: (err: unknown) => void;
  const done = new Promise<unknown>((resolve) => (resolveDone = resolve));
  let ended = false;
  const controller = await new k8s.Watch(kc).watch(
    path,
    query,
    (type, object) => events.push({ type, object }),
    (err) => {
      ended = true;
      resolveDone(err);
    },
  );
  return {
    events,
    done,
    get ended() {
      return ended;
    },
    stop: () => controller.abort(),
  };
}

export function lease(name: string, spec: Record<string, unknown> = {}, labels?: Record<string, string>): k8s.V1Lease {
  return { metadata: { name, ...(labels ? { labels } : {}) }, spec: { holderIdentity: 'pod-a', leaseDurationSeconds: 15, ...spec } };
}
