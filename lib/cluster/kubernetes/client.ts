import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigurationError, DromedaryError } from '../../errors.ts';
import { SERVICE_ACCOUNT_DIR } from '../config.ts';
import { describeKubeconfigError } from './kubeconfig-error.ts';

/** The @kubernetes/client-node module; imported only when the kubernetes backend is chosen. */
export type K8s = typeof import('@kubernetes/client-node');

export async function loadClientNode(): Promise<K8s> {
  return import('@kubernetes/client-node');
}

/** KUBECONFIG (or ~/.kube/config), else the pod's service account: client-node's loadFromDefault. */
export function loadKubeConfig(k8s: K8s, env: Readonly<Record<string, string | undefined>>): InstanceType<K8s['KubeConfig']> {
  const kc = new k8s.KubeConfig();
  try {
    if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
    else kc.loadFromDefault();
  } catch (err) {
    throw new ConfigurationError(`cannot load the Kubernetes client configuration${env.KUBECONFIG ? ` from KUBECONFIG=${env.KUBECONFIG}` : ' from ~/.kube/config'}: ${describeKubeconfigError(err)}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new ConfigurationError('no Kubernetes cluster configured: set KUBECONFIG, or run inside a pod with a service account');
  }
  return kc;
}

/** The namespace: the service account's, else the kubeconfig context's, else DROMEDARY_NAMESPACE, else default. */
export function resolveNamespace(kc: InstanceType<K8s['KubeConfig']>, env: Readonly<Record<string, string | undefined>>, serviceAccountDir = SERVICE_ACCOUNT_DIR): string {
  const file = join(serviceAccountDir, 'namespace');
  if (existsSync(file)) {
    const ns = readFileSync(file, 'utf8').trim();
    if (ns) return ns;
  }
  const context = kc.getContextObject(kc.getCurrentContext());
  return context?.namespace || env.DROMEDARY_NAMESPACE || env.POD_NAMESPACE || 'default';
}

/**
 * Per-request options that abort the request with the signal: client-node sets no timeout of its
 * own, and a request to an unreachable API server would otherwise hang forever. Its middleware
 * contract is an object whose pre/post return something with toPromise().
 */
export function withSignal(signal: AbortSignal) {
  const resolved = <T>(value: T) => ({ toPromise: () => Promise.resolve(value) });
  return {
    middleware: [
      {
        pre: (context: { setSignal(s: AbortSignal): void }) => {
          context.setSignal(signal);
          return resolved(context);
        },
        post: <T>(response: T) => resolved(response),
      },
    ],
    middlewareMergeStrategy: 'append' as const,
  } as never;
}

/** The status code of a client-node error, or undefined for network errors. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A 403 made readable: which verb on which resource in which namespace, and where the fix is. */
export class KubernetesForbiddenError extends DromedaryError {
  constructor(verb: string, resource: string, namespace: string, detail: string) {
    super(
      'KUBERNETES_FORBIDDEN',
      `Kubernetes refused to ${verb} ${resource} in namespace ${namespace} (403 Forbidden: ${detail}). ` +
        `Grant the pod's service account "${verb}" on "${resource}" with a Role and RoleBinding, as in examples/kubernetes/.`,
    );
  }
}

export function forbiddenDetail(err: unknown): string {
  try {
    return String((JSON.parse(String((err as { body?: unknown }).body)) as { message?: string }).message ?? 'forbidden');
  } catch {
    return 'forbidden';
  }
}
