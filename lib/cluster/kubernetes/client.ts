import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError, DromedaryError } from '../../errors.ts';
import { SERVICE_ACCOUNT_DIR, inKubernetesPod } from '../config.ts';
import { describeKubeconfigError } from './kubeconfig-error.ts';
import type { CallOptions } from './transport.ts';

/**
 * The Kubernetes client (kube-client.ts: client-node's kubeconfig and authentication, a small REST
 * transport); imported only when the kubernetes backend is chosen.
 */
export type K8s = typeof import('./kube-client.ts');

export async function loadKubeClient(): Promise<K8s> {
  return import('./kube-client.ts');
}

/** The former name of loadKubeClient (it loaded all of @kubernetes/client-node). */
export const loadClientNode = loadKubeClient;

/**
 * KUBECONFIG, else ~/.kube/config, else the pod's service account, as client-node's loadFromDefault looks;
 * but where it would fall back to http://localhost:8080 (and fail later with a TLS complaint), this says
 * that no configuration was found and where it looked.
 */
export function loadKubeConfig(
  k8s: K8s,
  env: Readonly<Record<string, string | undefined>>,
  serviceAccountDir = SERVICE_ACCOUNT_DIR,
): InstanceType<K8s['KubeConfig']> {
  const kc = new k8s.KubeConfig();
  const home = env.HOME || env.USERPROFILE || homedir();
  const userFile = join(home, '.kube', 'config');
  const source = env.KUBECONFIG ? `KUBECONFIG=${env.KUBECONFIG}` : existsSync(userFile) ? userFile : undefined;
  try {
    if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
    else if (source) kc.loadFromFile(userFile);
    else if (inKubernetesPod(env, serviceAccountDir)) kc.loadFromCluster(serviceAccountDir, env);
    else {
      throw new ConfigurationError(
        `no Kubernetes client configuration found: KUBECONFIG is not set, ${userFile} does not exist, and this is not a pod with a service account ` +
          `(KUBERNETES_SERVICE_HOST ${env.KUBERNETES_SERVICE_HOST ? 'is set' : 'is not set'}, ${join(serviceAccountDir, 'token')} ${existsSync(join(serviceAccountDir, 'token')) ? 'exists' : 'does not exist'}). ` +
          'Set KUBECONFIG to a kubeconfig file (dromedary kube-api writes one for a local test server), or choose another --cluster',
      );
    }
  } catch (err) {
    if (err instanceof ConfigurationError) throw err;
    throw new ConfigurationError(`cannot load the Kubernetes client configuration${source ? ` from ${source}` : ' of the service account'}: ${describeKubeconfigError(err)}`);
  }
  SOURCES.set(kc, source ?? `the service account in ${serviceAccountDir}`);
  if (!kc.getCurrentCluster()) {
    throw new ConfigurationError(`no Kubernetes cluster configured in ${source ?? 'the service account'}: its current context names no cluster; set one with kubectl config use-context`);
  }
  return kc;
}

/** Where each loaded configuration came from, for errors that must say where the credentials came from. */
const SOURCES = new WeakMap<object, string>();

/** The API server a configuration talks to, and where its credentials come from: for errors that name both. */
export interface ApiTarget {
  server: string;
  credentials: string;
}

export function apiTarget(kc: InstanceType<K8s['KubeConfig']>): ApiTarget {
  const user = kc.getCurrentUser();
  const kind = user?.token || user?.authProvider ? 'token' : user?.certData || user?.certFile ? 'client certificate' : user?.exec ? 'exec plugin' : user?.username ? 'password' : 'no credentials';
  const where = SOURCES.get(kc) ?? 'the client configuration';
  return { server: kc.getCurrentCluster()?.server ?? 'no server', credentials: `the ${kind} of user "${user?.name ?? ''}" in ${where}` };
}

/**
 * A failed API request said plainly: a network or TLS failure names the server and the cause (client-node
 * gives only `fetch failed`), a 401 says the credentials were refused and where they came from.
 * Undefined for other errors (HTTP statuses the caller explains itself).
 */
export function describeApiFailure(err: unknown, target: ApiTarget): string | undefined {
  if (statusOf(err) === 401) {
    return `the Kubernetes API at ${target.server} refused the credentials (401 Unauthorized): ${target.credentials}; the token may be wrong or expired, or belong to another cluster`;
  }
  if (statusOf(err) !== undefined || !(err instanceof Error) || err.name === 'AbortError') return undefined;
  // node:https gives the system or TLS error itself; fetch (client-node) wraps it as the cause of `fetch failed`.
  const own = typeof (err as { code?: unknown }).code === 'string' ? (err as Error & { code?: string }) : undefined;
  const cause = own ?? ((err as { cause?: unknown }).cause as (Error & { code?: string }) | undefined);
  if (!cause || typeof cause !== 'object') return undefined;
  let code = cause.code ?? cause.name;
  let detail = String(cause.message ?? '').split('\n')[0]!.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, '');
  // node:https reports an OpenSSL failure as `write EPROTO …:SSL routines:<function>:<reason>:<file>`:
  // named by its reason, as fetch names it (ERR_SSL_WRONG_VERSION_NUMBER).
  const ssl = code === 'EPROTO' ? /SSL routines:[^:]*:([^:]+):/.exec(detail) : null;
  if (ssl) {
    detail = ssl[1]!;
    code = `ERR_SSL_${detail.toUpperCase().replace(/\W+/g, '_')}`;
  }
  let hint = '';
  if (code === 'ECONNREFUSED') hint = ': nothing listens there; check the server address and port in the kubeconfig';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') hint = ': the host name does not resolve';
  else if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO') hint = ': the server does not speak TLS on that port (a wrong port, or an http:// server)';
  else if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code ?? '')) hint = ": TLS: the server's certificate is not trusted by the kubeconfig's certificate-authority";
  return `cannot reach the Kubernetes API at ${target.server}: ${code}${detail && detail !== code ? ` (${detail})` : ''}${hint}`;
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
 * Per-request options that abort the request with the signal: the transport sets no timeout of its
 * own, and a request to an unreachable API server would otherwise hang forever.
 */
export function withSignal(signal: AbortSignal): CallOptions {
  return { signal };
}

/** The status code of an API error (ours or client-node's), or undefined for network errors. */
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
