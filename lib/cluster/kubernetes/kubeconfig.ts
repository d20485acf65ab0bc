import { accessSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { createRequire } from 'node:module';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Cluster, Context, User } from '@kubernetes/client-node';
// client-node's own kubeconfig parsing and its light authenticators, imported one file each: its
// package index (and its config.js) load every generated API and model, about 60 MB of memory.
import { newClusters, newContexts, newUsers } from '@kubernetes/client-node/dist/config_types.js';
import { ExecAuth } from '@kubernetes/client-node/dist/exec_auth.js';
import { FileAuth } from '@kubernetes/client-node/dist/file_auth.js';
import { KubeTransport } from './transport.ts';

const SERVICE_ACCOUNT_ROOT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** client-node's authenticator contract: it sets headers (and for exec, a client certificate) on the options. */
interface Authenticator {
  isAuthProvider(user: User): boolean;
  applyAuthentication(user: User, opts: AuthOptions): Promise<void>;
}

interface AuthOptions {
  headers: Record<string, string>;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** What a request to the current cluster needs: its agent (TLS, proxy, keep-alive) and its headers (credentials). */
export interface RequestTarget {
  agent: HttpAgent;
  headers: Record<string, string>;
}

/**
 * client-node's own dependencies (js-yaml, the proxy agents) are resolved from its folder: the
 * versions it was installed with, wherever the package manager put them.
 */
function clientNodeRequire(): NodeJS.Require {
  return createRequire(createRequire(import.meta.url).resolve('@kubernetes/client-node'));
}

/** One of them that is an ES module, imported by its resolved path. */
async function importFromClientNode<T>(name: string): Promise<T> {
  return (await import(pathToFileURL(clientNodeRequire().resolve(name)).href)) as T;
}

/**
 * A kubeconfig as @kubernetes/client-node's KubeConfig reads and applies it (the same parser, the same
 * authenticators: token, token file, client certificate, basic auth, exec plugins; azure, gcp and oidc
 * auth providers, loaded only when used; proxy-url; tls-server-name; insecure-skip-tls-verify), without
 * its generated API clients. The transport (transport.ts) asks it for each request's agent and headers.
 */
export class KubeConfig {
  clusters: Cluster[] = [];
  users: User[] = [];
  contexts: Context[] = [];
  currentContext = '';
  readonly #exec = new ExecAuth();
  readonly #file = new FileAuth();
  readonly #lazy = new Map<string, Promise<Authenticator>>();
  /** One keep-alive agent per TLS identity, so requests and watches share connections. */
  readonly #agents = new Map<string, HttpAgent>();

  loadFromFile(file: string): void {
    this.loadFromString(readFileSync(file).toString('utf-8'));
    this.#makePathsAbsolute(dirname(file));
  }

  loadFromString(text: string): void {
    // As client-node: an empty file fails here with a TypeError, which kubeconfig-error.ts explains.
    const obj = (clientNodeRequire()('js-yaml') as { load(text: string): unknown }).load(text) as Record<string, unknown>;
    this.clusters = newClusters(obj.clusters);
    this.contexts = newContexts(obj.contexts);
    this.users = newUsers(obj.users);
    this.currentContext = obj['current-context'] as string;
  }

  /**
   * The pod's service account, as client-node's loadFromCluster (the token file re-read every minute),
   * from `serviceAccountDir` and the KUBERNETES_SERVICE_HOST/PORT of `env`.
   */
  loadFromCluster(serviceAccountDir = SERVICE_ACCOUNT_ROOT, env: Readonly<Record<string, string | undefined>> = process.env): void {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
    const serverHost = host && isIPv6(host) ? `[${host}]` : host;
    this.clusters = [{ name: 'inCluster', caFile: join(serviceAccountDir, 'ca.crt'), server: `${scheme}://${serverHost}:${port}`, skipTLSVerify: false }];
    this.users = [{ name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(serviceAccountDir, 'token') } } }];
    let namespace: string | undefined;
    try {
      accessSync(join(serviceAccountDir, 'namespace'));
      namespace = readFileSync(join(serviceAccountDir, 'namespace')).toString('utf-8');
    } catch {
      // no namespace file: the context names none
    }
    this.contexts = [{ cluster: 'inCluster', name: 'inClusterContext', user: 'inClusterUser', ...(namespace !== undefined ? { namespace } : {}) }];
    this.currentContext = 'inClusterContext';
  }

  /** An API client (CoordinationV1Api, CoreV1Api) over this configuration's transport, as client-node's makeApiClient. */
  makeApiClient<T>(api: new (transport: KubeTransport) => T): T {
    if (!this.getCurrentCluster()) throw new Error('No active cluster!');
    return new api(new KubeTransport(this));
  }

  getCurrentContext(): string {
    return this.currentContext;
  }

  getContextObject(name: string): Context | null {
    return this.contexts.find((c) => c.name === name) ?? null;
  }

  getCurrentCluster(): Cluster | null {
    const context = this.getContextObject(this.currentContext);
    return (context && this.clusters.find((c) => c.name === context.cluster)) ?? null;
  }

  getCurrentUser(): User | null {
    const context = this.getContextObject(this.currentContext);
    return (context && this.users.find((u) => u.name === context.user)) ?? null;
  }

  /**
   * The agent and headers for a request to the current cluster, with the credentials applied as
   * client-node applies them: the user's authenticator first, then a static token over it.
   */
  async requestTarget(): Promise<RequestTarget> {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    const user = this.getCurrentUser();
    const opts: AuthOptions = { headers: {} };
    const tls: AgentOptions = {};
    if (user) {
      if (cluster.skipTLSVerify) tls.rejectUnauthorized = false;
      if (cluster.tlsServerName) tls.servername = cluster.tlsServerName;
      const ca = fileOrData(cluster.caFile, cluster.caData);
      if (ca) tls.ca = ca;
      const cert = fileOrData(user.certFile, user.certData);
      if (cert) opts.cert = cert;
      const key = fileOrData(user.keyFile, user.keyData);
      if (key) opts.key = key;
      if (user.impersonateUser) opts.headers['Impersonate-User'] = user.impersonateUser;
      // Basic auth first: a token, from the authenticator or the kubeconfig, wins over it, as in client-node.
      if (user.username) opts.headers.Authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
      const authenticator = await this.#authenticator(user);
      if (authenticator) await authenticator.applyAuthentication(user, opts);
      if (user.token) opts.headers.Authorization = `Bearer ${user.token}`;
    }
    if (opts.cert) tls.cert = opts.cert;
    if (opts.key) tls.key = opts.key;
    return { agent: await this.#agent(cluster, tls), headers: opts.headers };
  }

  /** client-node's order: azure, gcp, exec, token file, oidc; the first that claims the user applies. */
  async #authenticator(user: User): Promise<Authenticator | undefined> {
    const provider = user.authProvider?.name as string | undefined;
    if (provider === 'azure') return this.#load('azure', async () => new (await import('@kubernetes/client-node/dist/azure_auth.js')).AzureAuth());
    if (provider === 'gcp') return this.#load('gcp', async () => new (await import('@kubernetes/client-node/dist/gcp_auth.js')).GoogleCloudPlatformAuth());
    if (this.#exec.isAuthProvider(user)) return this.#exec as Authenticator;
    if (this.#file.isAuthProvider(user)) return this.#file as Authenticator;
    // OIDC pulls in openid-client and client-node's config module (and with it the whole package):
    // only a user who logs in with OIDC pays for it.
    if (provider === 'oidc') return this.#load('oidc', async () => new (await import('@kubernetes/client-node/dist/oidc_auth.js')).OpenIDConnectAuth());
    return undefined;
  }

  #load(name: string, make: () => Promise<unknown>): Promise<Authenticator> {
    let authenticator = this.#lazy.get(name);
    if (!authenticator) {
      authenticator = make() as Promise<Authenticator>;
      this.#lazy.set(name, authenticator);
    }
    return authenticator;
  }

  async #agent(cluster: Cluster, tls: AgentOptions): Promise<HttpAgent> {
    // An exec plugin may hand out a new client certificate: that is a new agent; anything else reuses one.
    const id = `${String(tls.cert ?? '')}\0${String(tls.key ?? '')}`;
    const cached = this.#agents.get(id);
    if (cached) return cached;
    // client-go's TCP keep-alive period, so a dead connection under a quiet watch is found.
    const options = { ...tls, keepAlive: true, keepAliveMsecs: 30_000 };
    let agent: HttpAgent;
    if (cluster.proxyUrl) {
      if (cluster.proxyUrl.startsWith('socks')) {
        const { SocksProxyAgent } = await importFromClientNode<typeof import('socks-proxy-agent')>('socks-proxy-agent');
        agent = new SocksProxyAgent(cluster.proxyUrl, options) as unknown as HttpAgent;
      } else if (cluster.server.startsWith('https') || cluster.server.startsWith('http')) {
        const { HttpsProxyAgent, HttpProxyAgent } = await importFromClientNode<typeof import('hpagent')>('hpagent');
        const Proxy = cluster.server.startsWith('https') ? HttpsProxyAgent : HttpProxyAgent;
        agent = new Proxy({ ...options, proxy: cluster.proxyUrl }) as unknown as HttpAgent;
      } else {
        throw new Error('Unsupported proxy type');
      }
    } else if (cluster.server.startsWith('http:')) {
      if (!cluster.skipTLSVerify) throw new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false');
      agent = new HttpAgent(options);
    } else {
      agent = new HttpsAgent(options);
    }
    this.#agents.set(id, agent);
    return agent;
  }

  #makePathsAbsolute(root: string): void {
    const absolute = (file: string) => (!root || isAbsolute(file) ? file : join(root, file));
    for (const cluster of this.clusters) if (cluster.caFile) cluster.caFile = absolute(cluster.caFile);
    for (const user of this.users) {
      if (user.certFile) user.certFile = absolute(user.certFile);
      if (user.keyFile) user.keyFile = absolute(user.keyFile);
    }
  }
}

function fileOrData(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return undefined;
}
