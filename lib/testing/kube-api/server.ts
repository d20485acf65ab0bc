/**
 * A Kubernetes API server for tests: Leases, ConfigMaps, Pods, ServiceAccounts, Roles and
 * RoleBindings over node:http (or node:https with a self-signed certificate), faithful enough that
 * @kubernetes/client-node and kubectl cannot tell it from a real apiserver for these calls, plus
 * per-client fault injection, token RBAC (rules per token, or the stored Roles) and a restart that
 * keeps state.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { ConfigurationError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import { apiGroupDocument, apiGroupList, apiResourceList, apiVersions, SERVER_VERSION } from './discovery.ts';
import { type FaultAction, type FaultEvent, FaultControl, combine } from './faults.ts';
import { type TlsIdentity, selfSignedCertificate } from './certificate.ts';
import { type KubeconfigOptions, kubeconfigYaml } from './kubeconfig.ts';
import { openApiV3Document, openApiV3Root } from './openapi.ts';
import { PROTOBUF, ProtobufDecodeError, decodeProtobufBody } from './protobuf.ts';
import { PatchApplyError, PatchDecodeError, applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patch.ts';
import { type Rule, rulesAllow } from './rbac.ts';
import { CONFIGMAPS, type DecodedObject, type KubeObject, LEASES, PODS, RESOURCE_TYPES, ROLEBINDINGS, ROLES, type ResourceType } from './resources.ts';
import {
  type FieldRequirement,
  type Requirement,
  SelectorError,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.ts';
import {
  ApiError,
  type Status,
  badRequest,
  expired,
  forbidden,
  injectedFailure,
  invalid,
  methodNotAllowed,
  notFound,
  pathNotFound,
  requestEntityTooLarge,
  successStatus,
  unauthorized,
  unsupportedMediaType,
} from './status.ts';
import { ObjectStore, type StoreEvent } from './store.ts';

export interface TokenSpec {
  /**
   * The user the token authenticates as. A bare name is a service account in the server's
   * namespace (`system:serviceaccount:<namespace>:<user>`); a name containing `:` is used as is.
   * Defaults to the token itself as the service-account name.
   */
  user?: string;
  /**
   * When set, only these rules are allowed (403 Forbidden otherwise); when absent, everything is.
   * `'roles'`: what the Roles bound to the user by RoleBindings in the server allow, as the RBAC
   * authorizer decides (so a test can apply a Role manifest and run members as its service account).
   */
  rules?: readonly Rule[] | 'roles';
}

export interface KubeApiServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The namespace kubeconfigs point at and service-account users live in. Default `default`. */
  namespace?: string;
  /**
   * Serve HTTPS: `true` makes a self-signed certificate for the host (and localhost), which
   * `kubeconfig()` writes as the cluster's CA. kubectl and other client-go programs send a bearer
   * token only over TLS. Default plain HTTP.
   */
  tls?: boolean | TlsIdentity;
  /** Known bearer tokens. When given, a request with a missing or unknown token gets 401. */
  tokens?: Record<string, TokenSpec>;
  /** Watch events kept for resuming watches; older resourceVersions get 410 Expired. Default 1000. */
  historyLimit?: number;
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK. Default 60000 ms, as the apiserver. */
  bookmarkIntervalMs?: number;
  /** Request records kept for `requests()`. Default 10000. */
  requestLogLimit?: number;
  logger?: Logger;
}

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'discovery';

/** One served request, as `requests()` and the `request` event report it. */
export interface RequestRecord {
  /** Epoch ms when the request arrived. */
  time: number;
  /** The bearer token, or undefined when none was sent. */
  token: string | undefined;
  method: string;
  path: string;
  /** The query string as sent, with its leading `?` ('' when none). */
  query: string;
  verb: Verb;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** HTTP status, or 0 when the connection was dropped or held by a blackhole. */
  status: number;
  /** What injected fault, if any, decided the answer. */
  fault?: 'fail' | 'drop' | 'blackhole';
}

export interface PodSpecInput {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  /** Pending, Running, Succeeded, Failed or Unknown. Default Running. */
  phase?: string;
  /** The Ready condition. Default true when Running. */
  ready?: boolean;
  podIP?: string;
  nodeName?: string;
}

export interface PodStatusInput {
  phase?: string;
  ready?: boolean;
  podIP?: string;
}

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' } as const;
const MAX_BODY = 3 * 1024 * 1024;
/** Server-side apply (`kubectl apply --server-side`): the whole intended object, created when absent. */
const APPLY_PATCH = 'application/apply-patch+yaml';
const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', APPLY_PATCH];
const ALL_CLIENTS = Symbol('all clients');

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

interface WatchState {
  token: string | undefined;
  res: ServerResponse;
  close(): void;
  /** Writes nothing more and never ends the stream (see FaultControl.stallWatches). */
  stall(): void;
}

/** Waits out injected latency, but stops early when the client goes away so no timer outlives the server. */
function sleepUnlessClosed(ms: number, socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    socket.once('close', done);
  });
}

export class KubeApiServer extends EventEmitter {
  readonly store: ObjectStore;
  readonly host: string;
  readonly namespace: string;
  private listenPort: number;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly socketTokens = new WeakMap<Socket, string | undefined>();
  private readonly held = new Set<{ token: string | undefined; socket: Socket }>();
  private readonly watches = new Set<WatchState>();
  private readonly faultControls = new Map<string | typeof ALL_CLIENTS, FaultControl>();
  private tokens: Map<string, TokenSpec> | undefined;
  private readonly bookmarkIntervalMs: number;
  private readonly log: RequestRecord[] = [];
  private readonly requestLogLimit: number;
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly logger: Logger | undefined;
  /** The key and certificate when serving HTTPS; kept across restarts. */
  readonly tls: TlsIdentity | undefined;

  private constructor(options: KubeApiServerOptions) {
    super();
    this.host = options.host ?? '127.0.0.1';
    this.tls = options.tls === true ? selfSignedCertificate([...new Set([this.host, '127.0.0.1', 'localhost'])]) : options.tls || undefined;
    this.listenPort = options.port ?? 0;
    this.namespace = options.namespace ?? 'default';
    this.tokens = options.tokens ? new Map(Object.entries(options.tokens)) : undefined;
    this.store = new ObjectStore({ historyLimit: options.historyLimit });
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;
    this.requestLogLimit = options.requestLogLimit ?? 10_000;
    this.logger = options.logger;
  }

  /** Starts a server; see `startKubeApiServer`. */
  static async start(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    validateOptions(options);
    const server = new KubeApiServer(options);
    await server.listen();
    return server;
  }

  get port(): number {
    return this.listenPort;
  }

  /** `http://127.0.0.1:<port>`, or `https://…` with `tls`. */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.tls ? 'https' : 'http'}://${host}:${this.listenPort}`;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  private async listen(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void this.handle(req, res);
    };
    const server: Server = this.tls
      ? createHttpsServer({ keepAliveTimeout: 30_000, key: this.tls.key, cert: this.tls.cert }, handler)
      : createServer({ keepAliveTimeout: 30_000 }, handler);
    const track = (socket: Socket): void => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    };
    server.on('connection', track);
    // Over TLS, requests arrive on the TLS socket: the one faults look up by token and destroy.
    if (this.tls) server.on('secureConnection', track);
    server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.listenPort = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and destroys every connection (keep-alive, watches, held requests); state is kept. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const w of [...this.watches]) w.close();
    for (const s of this.sockets) s.destroy();
    this.held.clear();
    server.closeAllConnections();
    await closed;
  }

  /** Listens again on the same port after `stop()`. */
  async start(): Promise<void> {
    if (this.server) return;
    await this.listen();
  }

  /** Closes all sockets (watches included) and listens again on the same port, keeping every object. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the server for good. */
  async close(): Promise<void> {
    await this.stop();
    this.removeAllListeners();
  }

  /** Adds or replaces a token (and turns token checking on if it was off). */
  setToken(token: string, spec: TokenSpec = {}): void {
    if (!this.tokens) this.tokens = new Map();
    this.tokens.set(token, spec);
  }

  removeToken(token: string): void {
    this.tokens?.delete(token);
  }

  /** The username a token authenticates as. */
  userFor(token: string | undefined): string {
    if (token === undefined) return 'system:anonymous';
    const user = this.tokens?.get(token)?.user ?? token;
    return user.includes(':') ? user : `system:serviceaccount:${this.namespace}:${user}`;
  }

  /** Fault controls for the client using `token`; without a token, for every client. */
  faults(token?: string): FaultControl {
    const key = token ?? ALL_CLIENTS;
    let control = this.faultControls.get(key);
    if (!control) {
      control = new FaultControl((_c, event) => this.onFaultChange(key, event));
      this.faultControls.set(key, control);
    }
    return control;
  }

  /** Clears every fault of every client. */
  clearFaults(): void {
    for (const c of this.faultControls.values()) c.clear();
  }

  private onFaultChange(key: string | typeof ALL_CLIENTS, event: FaultEvent): void {
    const affects = (token: string | undefined): boolean => key === ALL_CLIENTS || token === key;
    if (event === 'blackhole') return;
    if (event === 'stall-watches') {
      for (const w of this.watches) if (affects(w.token)) w.stall();
      return;
    }
    if (event === 'clear') {
      for (const h of [...this.held]) {
        if (affects(h.token)) {
          this.held.delete(h);
          h.socket.destroy();
        }
      }
      for (const w of [...this.watches]) if (affects(w.token)) w.res.destroy();
      return;
    }
    for (const w of [...this.watches]) if (affects(w.token)) w.res.destroy();
    for (const s of this.sockets) if (affects(this.socketTokens.get(s))) s.destroy();
  }

  private blackholed(token: string | undefined): boolean {
    if (this.faultControls.get(ALL_CLIENTS)?.isBlackholed) return true;
    return token !== undefined && (this.faultControls.get(token)?.isBlackholed ?? false);
  }

  /** Request records, oldest first (bounded by requestLogLimit). */
  requests(filter: { token?: string; verb?: Verb; resource?: string } = {}): RequestRecord[] {
    return this.log.filter(
      (r) =>
        (filter.token === undefined || r.token === filter.token) &&
        (filter.verb === undefined || r.verb === filter.verb) &&
        (filter.resource === undefined || r.resource === filter.resource),
    );
  }

  /** Request counts per token (`''` for none) and verb, since start or the last `resetRequestCounts()`. */
  requestCounts(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [token, verbs] of this.counters) out[token] = Object.fromEntries(verbs);
    return out;
  }

  /** Total requests since start or the last reset, optionally for one token. */
  requestCount(token?: string): number {
    let n = 0;
    for (const [t, verbs] of this.counters) if (token === undefined || t === token) for (const c of verbs.values()) n += c;
    return n;
  }

  resetRequestCounts(): void {
    this.counters.clear();
    this.log.length = 0;
  }

  /** Kubeconfig YAML for this server: its certificate as the CA over HTTPS, `insecure-skip-tls-verify: true` over HTTP. */
  kubeconfig(options: Omit<KubeconfigOptions, 'server'> = {}): string {
    return kubeconfigYaml({ namespace: this.namespace, ...(this.tls ? { caCertificate: this.tls.cert } : {}), ...options, server: this.url });
  }

  /**
   * Writes the kubeconfig readable by its owner only (0600), whatever the umask and even over an
   * existing file: it is written to a new file beside it, then renamed over the path.
   */
  async writeKubeconfig(path: string, options: Omit<KubeconfigOptions, 'server'> = {}): Promise<string> {
    const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
    try {
      await writeFile(temporary, this.kubeconfig(options), { mode: 0o600, flag: 'wx' });
      await chmod(temporary, 0o600);
      await rename(temporary, path);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    return path;
  }

  /**
   * The rules the RoleBindings of a namespace grant a user through their Roles (ClusterRoles are not
   * held here, so a binding to one grants nothing). A service account's subject without a namespace
   * means the binding's own, and service accounts are in the groups system:serviceaccounts,
   * system:serviceaccounts:<namespace> and system:authenticated.
   */
  private rulesFromRoles(user: string, namespace: string | undefined): Rule[] {
    if (namespace === undefined) return [];
    const sa = /^system:serviceaccount:([^:]+):/.exec(user);
    const groups = ['system:authenticated', ...(sa ? ['system:serviceaccounts', `system:serviceaccounts:${sa[1]}`] : [])];
    const rules: Rule[] = [];
    for (const binding of this.store.list(ROLEBINDINGS, namespace)) {
      const subjects = (binding.subjects ?? []) as { kind?: string; name?: string; namespace?: string }[];
      const applies = subjects.some((s) =>
        s.kind === 'ServiceAccount'
          ? user === `system:serviceaccount:${s.namespace || namespace}:${s.name}`
          : s.kind === 'User'
            ? user === s.name
            : s.kind === 'Group' && groups.includes(s.name ?? ''),
      );
      const ref = binding.roleRef as { kind?: string; name?: string } | undefined;
      if (!applies || ref?.kind !== 'Role' || !ref.name) continue;
      const role = this.store.get(ROLES, namespace, ref.name);
      for (const r of (role?.rules ?? []) as { verbs?: string[]; apiGroups?: string[]; resources?: string[]; resourceNames?: string[] }[]) {
        rules.push({ verbs: r.verbs ?? [], apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], resourceNames: r.resourceNames, namespaces: [namespace] });
      }
    }
    return rules;
  }

  // ---- programmatic access to objects ----

  getObject(type: ResourceType, namespace: string, name: string): KubeObject | undefined {
    return this.store.get(type, namespace, name);
  }

  listObjects(type: ResourceType, namespace?: string): KubeObject[] {
    return this.store.list(type, namespace);
  }

  getLease(name: string, namespace = this.namespace): KubeObject | undefined {
    return this.store.get(LEASES, namespace, name);
  }

  getConfigMap(name: string, namespace = this.namespace): KubeObject | undefined {
    return this.store.get(CONFIGMAPS, namespace, name);
  }

  getPod(name: string, namespace = this.namespace): KubeObject | undefined {
    return this.store.get(PODS, namespace, name);
  }

  /** Creates a pod as the scheduler and kubelet would leave it: Running and Ready unless told otherwise. */
  createPod(input: PodSpecInput): KubeObject {
    const namespace = input.namespace ?? this.namespace;
    const body: DecodedObject = {
      metadata: { name: input.name, namespace, ...(input.labels ? { labels: { ...input.labels } } : {}) },
      spec: {
        containers: [{ name: 'app', image: 'dromedary:test' }],
        restartPolicy: 'Always',
        schedulerName: 'default-scheduler',
        ...(input.nodeName ? { nodeName: input.nodeName } : {}),
      },
      status: podStatus(input.phase ?? 'Running', input.ready, input.podIP, undefined),
    };
    return this.store.create(PODS, namespace, body, { keepStatus: true });
  }

  /** Moves a pod's phase and readiness, as the kubelet would through the status subresource. */
  setPodStatus(name: string, status: PodStatusInput, namespace = this.namespace): KubeObject {
    const current = this.store.get(PODS, namespace, name);
    if (!current) throw new ConfigurationError(`setPodStatus: no pod "${name}" in namespace "${namespace}"; create it first with createPod()`);
    const old = (current.status ?? {}) as Record<string, unknown>;
    const phase = status.phase ?? (typeof old.phase === 'string' ? old.phase : 'Running');
    const next = podStatus(phase, status.ready, status.podIP ?? (old.podIP as string | undefined), old);
    return this.store.update(PODS, namespace, name, { metadata: { ...current.metadata }, status: next }, { subresource: 'status' }).object;
  }

  deletePod(name: string, namespace = this.namespace): KubeObject {
    return this.store.delete(PODS, namespace, name);
  }

  // ---- request handling ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const auth = req.headers.authorization;
    const token = auth && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() : undefined;
    this.socketTokens.set(req.socket, token);
    const record: RequestRecord = { time: Date.now(), token, method: req.method ?? 'GET', path: url.pathname, query: url.search, verb: 'discovery', status: 0 };
    let route: Route | undefined;
    try {
      route = this.route(url.pathname);
      if (route) Object.assign(record, this.describe(req.method ?? 'GET', url, route));
    } catch {
      // unroutable paths are answered below, inside the normal error handling
    }
    this.count(record);

    const action = combine(
      [this.faultControls.get(ALL_CLIENTS), token === undefined ? undefined : this.faultControls.get(token)]
        .filter((c): c is FaultControl => c !== undefined)
        .map((c) => c.decide()),
    );
    if (action.kind === 'blackhole') {
      record.fault = 'blackhole';
      const entry = { token, socket: req.socket };
      this.held.add(entry);
      req.socket.once('close', () => this.held.delete(entry));
      this.finish(record);
      return;
    }
    if (action.delayMs > 0) await sleepUnlessClosed(action.delayMs, req.socket);
    if (req.socket.destroyed) return this.finish(record);
    if (action.kind === 'drop') {
      record.fault = 'drop';
      req.socket.destroy();
      return this.finish(record);
    }
    if (action.kind === 'fail') {
      record.fault = 'fail';
      req.resume();
      const status = injectedFailure(action.status);
      const headers: Record<string, string> = action.status === 429 ? { 'Retry-After': '1' } : {};
      this.send(res, action.status, status, [], headers);
      record.status = action.status;
      return this.finish(record);
    }

    try {
      record.status = await this.serve(req, res, url, route, token, record);
    } catch (err) {
      const apiErr = err instanceof ApiError ? err : undefined;
      if (!apiErr) this.logger?.error('kube-api test server: unexpected failure', { error: String(err), path: url.pathname });
      const status = apiErr?.status ?? injectedFailure(500);
      if (!res.headersSent) this.send(res, status.code ?? 500, status);
      else res.destroy();
      record.status = status.code ?? 500;
    }
    this.finish(record);
  }

  private count(record: RequestRecord): void {
    const key = record.token ?? '';
    let verbs = this.counters.get(key);
    if (!verbs) this.counters.set(key, (verbs = new Map()));
    verbs.set(record.verb, (verbs.get(record.verb) ?? 0) + 1);
  }

  private finish(record: RequestRecord): void {
    this.log.push(record);
    if (this.log.length > this.requestLogLimit) this.log.splice(0, this.log.length - this.requestLogLimit);
    this.emit('request', record);
  }

  private send(res: ServerResponse, code: number, body: unknown, warnings: string[] = [], extra: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    const text = `${JSON.stringify(body)}\n`;
    const headers: Record<string, string | string[]> = {
      ...JSON_HEADERS,
      'Audit-Id': randomUUID(),
      'Content-Length': String(Buffer.byteLength(text)),
      ...extra,
    };
    if (warnings.length > 0) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, headers);
    res.end(text);
  }

  /** Maps a path to a resource; undefined for discovery and unknown paths. */
  private route(pathname: string): Route | undefined {
    const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
    let rest: string[];
    let groupVersion: string;
    if (parts[0] === 'api' && parts[1] === 'v1') {
      groupVersion = 'v1';
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 3) {
      groupVersion = `${parts[1]}/${parts[2]}`;
      rest = parts.slice(3);
    } else return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    if (rest.length === 0 || rest.length > 3) return undefined;
    const type = RESOURCE_TYPES.find((t) => t.apiVersion === groupVersion && t.plural === rest[0]);
    if (!type) return undefined;
    if (namespace === undefined && rest.length > 1) return undefined;
    const route: Route = { type, namespace, name: rest[1], subresource: rest[2] };
    return route;
  }

  private describe(method: string, url: URL, route: Route): Partial<RequestRecord> {
    const watch = isTrue(url.searchParams.get('watch'));
    const verb: Verb =
      method === 'GET'
        ? route.name
          ? 'get'
          : watch
            ? 'watch'
            : 'list'
        : method === 'POST'
          ? 'create'
          : method === 'PUT'
            ? 'update'
            : method === 'PATCH'
              ? 'patch'
              : method === 'DELETE'
                ? route.name
                  ? 'delete'
                  : 'deletecollection'
                : 'get';
    const out: Partial<RequestRecord> = { verb, resource: route.type.plural };
    if (route.subresource) out.subresource = route.subresource;
    if (route.namespace) out.namespace = route.namespace;
    if (route.name) out.name = route.name;
    return out;
  }

  private authenticate(token: string | undefined): void {
    if (!this.tokens) return;
    if (token === undefined || !this.tokens.has(token)) throw unauthorized();
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    route: Route | undefined,
    token: string | undefined,
    record: RequestRecord,
  ): Promise<number> {
    this.authenticate(token);
    const method = req.method ?? 'GET';
    if (!route) {
      req.resume();
      const doc = method === 'GET' ? this.discovery(url.pathname) : undefined;
      if (!doc) throw pathNotFound();
      this.send(res, 200, doc);
      return 200;
    }
    const { type, namespace, name, subresource } = route;
    if (subresource !== undefined && !(subresource === 'status' && type.hasStatus)) throw pathNotFound();

    // RBAC: a list/watch narrowed by fieldSelector metadata.name=x is authorized as that name.
    let authzName = name;
    if (!name && (record.verb === 'list' || record.verb === 'watch')) {
      const fs = safeFieldSelector(url.searchParams.get('fieldSelector') ?? '');
      const exact = fs?.find((r) => r.field === 'metadata.name' && r.operator === '=');
      if (exact) authzName = exact.value;
    }
    const granted = token === undefined ? undefined : this.tokens?.get(token)?.rules;
    const rules = granted === 'roles' ? this.rulesFromRoles(this.userFor(token), namespace) : granted;
    if (rules) {
      const attrs = { verb: record.verb, group: type.group, resource: type.plural, subresource, name: authzName, namespace };
      if (!rulesAllow(rules, attrs)) throw forbidden(type.gr, subresource, authzName, this.userFor(token), record.verb, namespace);
    }

    const warnings: string[] = [];
    switch (record.verb) {
      case 'list':
        req.resume();
        this.send(res, 200, this.listResponse(type, namespace, url));
        return 200;
      case 'watch':
        req.resume();
        this.serveWatch(res, type, namespace, url, token);
        return 200;
      case 'get': {
        req.resume();
        const obj = this.store.get(type, namespace!, name!);
        if (!obj) throw notFound(type.gr, name!);
        this.send(res, 200, withKind(type, obj));
        return 200;
      }
      case 'create': {
        if (!namespace) throw methodNotAllowed();
        const decoded = type.decode(await readObjectBody(req, type), warnings);
        fieldValidation(url, type, warnings);
        const created = this.store.create(type, namespace, decoded, { dryRun: dryRun(url) });
        this.send(res, 201, withKind(type, created), warnings);
        return 201;
      }
      case 'update': {
        const decoded = type.decode(await readObjectBody(req, type), warnings);
        fieldValidation(url, type, warnings);
        const { object, created } = this.store.update(type, namespace!, name!, decoded, {
          subresource: subresource === 'status' ? 'status' : undefined,
          dryRun: dryRun(url),
        });
        this.send(res, created ? 201 : 200, withKind(type, object), warnings);
        return created ? 201 : 200;
      }
      case 'patch': {
        const { object, created } = await this.patch(req, url, type, namespace!, name!, subresource, warnings);
        this.send(res, created ? 201 : 200, withKind(type, object), warnings);
        return created ? 201 : 200;
      }
      case 'delete': {
        const body = await readOptionalJson(req);
        const pre = (body as { preconditions?: { resourceVersion?: unknown; uid?: unknown } } | undefined)?.preconditions;
        const deleted = this.store.delete(
          type,
          namespace!,
          name!,
          {
            resourceVersion: typeof pre?.resourceVersion === 'string' ? pre.resourceVersion : undefined,
            uid: typeof pre?.uid === 'string' ? pre.uid : undefined,
          },
          // kubectl sends DeleteOptions in the body, dryRun included.
          { dryRun: dryRun(url) || (Array.isArray((body as { dryRun?: unknown } | undefined)?.dryRun) && ((body as { dryRun: unknown[] }).dryRun.includes('All'))) },
        );
        const answer = type.returnDeletedObject
          ? withKind(type, deleted)
          : successStatus({ name: name!, ...(type.group ? { group: type.group } : {}), kind: type.plural, uid: deleted.metadata.uid });
        this.send(res, 200, answer);
        return 200;
      }
      default:
        req.resume();
        throw methodNotAllowed();
    }
  }

  private discovery(pathname: string): unknown {
    const path = pathname.replace(/\/+$/, '') || '/';
    if (path === '/version') return SERVER_VERSION;
    if (path === '/api') return apiVersions(`${this.host}:${this.listenPort}`);
    if (path === '/apis') return apiGroupList();
    if (path === '/api/v1') return apiResourceList('v1');
    if (path === '/openapi/v3') return openApiV3Root();
    if (path.startsWith('/openapi/v3/')) {
      const text = openApiV3Document(path.slice('/openapi/v3/'.length));
      return text === undefined ? undefined : JSON.parse(text);
    }
    const ns = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
    if (ns) return namespaceObject(decodeURIComponent(ns[1]!));
    if (path === '/healthz' || path === '/readyz' || path === '/livez') return 'ok';
    const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m) return m[2] ? apiResourceList(`${m[1]}/${m[2]}`) : apiGroupDocument(m[1]!);
    return undefined;
  }

  private selectors(type: ResourceType, url: URL): { labels: Requirement[]; fields: FieldRequirement[] } {
    try {
      const labels = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
      const fields = parseFieldSelector(url.searchParams.get('fieldSelector') ?? '');
      for (const f of fields) if (!type.selectableFields.includes(f.field)) throw new SelectorError(type.fieldSelectorError(f.field));
      return { labels, fields };
    } catch (err) {
      if (err instanceof SelectorError) throw badRequest(err.message);
      throw err;
    }
  }

  private matcher(type: ResourceType, namespace: string | undefined, url: URL): (obj: KubeObject) => boolean {
    const { labels, fields } = this.selectors(type, url);
    return (obj) =>
      (namespace === undefined || obj.metadata.namespace === namespace) &&
      matchesLabels(labels, obj.metadata.labels) &&
      matchesFields(fields, type.fieldValues(obj));
  }

  private listResponse(type: ResourceType, namespace: string | undefined, url: URL): unknown {
    const matches = this.matcher(type, namespace, url);
    const all = this.store.list(type, namespace).filter(matches);
    const limitParam = url.searchParams.get('limit');
    const limit = limitParam ? Number(limitParam) : 0;
    const cont = url.searchParams.get('continue');
    let start = 0;
    let rv = String(this.store.resourceVersion);
    if (cont) {
      const token = decodeContinue(cont);
      if (Number(token.rv) < this.store.compactedRevision) {
        throw expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
        );
      }
      start = all.findIndex((o) => `${o.metadata.namespace}/${o.metadata.name}` > token.start);
      if (start < 0) start = all.length;
      rv = token.rv;
    }
    const metadata: Record<string, unknown> = { resourceVersion: rv };
    let items = all.slice(start);
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      const remaining = items.length - limit;
      items = items.slice(0, limit);
      const last = items[items.length - 1]!;
      metadata.continue = encodeContinue(rv, `${last.metadata.namespace}/${last.metadata.name}`);
      if (!url.searchParams.get('labelSelector') && !url.searchParams.get('fieldSelector')) metadata.remainingItemCount = remaining;
    }
    return { kind: type.listKind, apiVersion: type.apiVersion, metadata, items };
  }

  private serveWatch(res: ServerResponse, type: ResourceType, namespace: string | undefined, url: URL, token: string | undefined): void {
    const matches = this.matcher(type, namespace, url);
    const rvParam = url.searchParams.get('resourceVersion') ?? '';
    let from: number | undefined;
    if (rvParam !== '' && rvParam !== '0') {
      if (!/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${rvParam}`);
      from = Number(rvParam);
    }
    const timeoutParam = url.searchParams.get('timeoutSeconds');
    const requested = timeoutParam ? Number(timeoutParam) : 0;
    if (!(requested >= 0)) throw badRequest(`invalid timeoutSeconds: ${timeoutParam}`);
    // As the apiserver: 0 or absent means its default, a random 30–60 minutes.
    const timeoutSeconds = requested > 0 ? requested : 1800 * (1 + Math.random());
    const bookmarks = isTrue(url.searchParams.get('allowWatchBookmarks'));

    res.writeHead(200, { ...JSON_HEADERS, 'Audit-Id': randomUUID(), 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    let stalled = false;
    const write = (type_: string, object: unknown): void => {
      if (stalled || res.destroyed || res.writableEnded || this.blackholed(token)) return;
      res.write(`${JSON.stringify({ type: type_, object })}\n`);
    };

    const backlog = from === undefined ? [] : this.store.eventsSince(from);
    if (backlog === undefined) {
      write('ERROR', expired(`too old resource version: ${from} (${this.store.compactedRevision})`).status satisfies Status);
      res.end();
      return;
    }

    const deliver = (event: StoreEvent): void => {
      if (event.resource !== type) return;
      const now = event.type !== 'DELETED' && matches(event.object);
      const before = event.previous !== undefined && matches(event.previous);
      if (event.type === 'DELETED') {
        if (before) write('DELETED', withKind(type, event.object));
      } else if (now) write(before || event.type === 'ADDED' ? event.type : 'ADDED', withKind(type, event.object));
      else if (before) {
        const gone = structuredClone(event.previous!);
        gone.metadata.resourceVersion = String(event.rv);
        write('DELETED', withKind(type, gone));
      }
    };
    const bookmark = (): void => {
      write('BOOKMARK', {
        kind: type.kind,
        apiVersion: type.apiVersion,
        metadata: { resourceVersion: String(this.store.resourceVersion), creationTimestamp: null },
      });
    };

    let closed = false;
    const timers: NodeJS.Timeout[] = [];
    const state: WatchState = {
      token,
      res,
      close: () => {
        if (closed) return;
        closed = true;
        this.store.off('event', deliver);
        for (const t of timers) clearTimeout(t);
        this.watches.delete(state);
        if (!stalled && !res.writableEnded && !res.destroyed) res.end();
      },
      stall: () => {
        stalled = true;
        state.close();
        // Still destroyed when the server stops, as every socket is.
      },
    };
    this.watches.add(state);
    res.on('close', state.close);
    this.store.on('event', deliver);

    if (from === undefined) for (const obj of this.store.list(type, namespace).filter(matches)) write('ADDED', withKind(type, obj));
    else for (const event of backlog) deliver(event);

    timers.push(
      setTimeout(() => {
        if (bookmarks) bookmark();
        state.close();
      }, timeoutSeconds * 1000),
    );
    if (bookmarks) {
      const interval = setInterval(bookmark, this.bookmarkIntervalMs);
      timers.push(interval);
    }
  }

  private async patch(
    req: IncomingMessage,
    url: URL,
    type: ResourceType,
    namespace: string,
    name: string,
    subresource: string | undefined,
    warnings: string[],
  ): Promise<{ object: KubeObject; created: boolean }> {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!PATCH_TYPES.includes(contentType)) {
      req.resume();
      throw unsupportedMediaType(PATCH_TYPES);
    }
    if (contentType === APPLY_PATCH && !url.searchParams.get('fieldManager')) {
      req.resume();
      throw invalid({ group: 'meta.k8s.io', kind: 'PatchOptions' }, '', [
        { type: 'FieldValueRequired', field: 'fieldManager', detail: 'is required for apply patch' },
      ]);
    }
    const patchDoc = contentType === APPLY_PATCH ? await readApplyConfiguration(req) : await readJson(req);
    const existing = this.store.get(type, namespace, name);
    if (!existing && contentType === APPLY_PATCH && subresource === undefined) {
      // Server-side apply creates what does not exist yet.
      const decoded = type.decode(patchDoc, warnings);
      fieldValidation(url, type, warnings);
      if (decoded.metadata.name === undefined) decoded.metadata.name = name;
      return { object: this.store.create(type, namespace, decoded, { dryRun: dryRun(url) }), created: true };
    }
    if (!existing) throw notFound(type.gr, name);
    const current = withKind(type, existing);
    let patched: unknown;
    try {
      if (contentType === APPLY_PATCH) patched = applyStrategicMergePatch(current, patchDoc, type === PODS);
      else if (contentType === 'application/json-patch+json') patched = applyJsonPatch(current, patchDoc);
      else if (contentType === 'application/merge-patch+json') patched = applyMergePatch(current, patchDoc);
      else patched = applyStrategicMergePatch(current, patchDoc, type === PODS);
    } catch (err) {
      if (err instanceof PatchDecodeError) throw badRequest(err.message);
      if (err instanceof PatchApplyError) {
        throw invalid({ group: type.group, kind: type.kind }, name, [
          { type: 'FieldValueInvalid', field: 'patch', value: contentType, detail: err.message },
        ]);
      }
      throw err;
    }
    const decoded = type.decode(patched, warnings);
    fieldValidation(url, type, warnings);
    // A patch is applied to the current object, so it is conditional only if it sets a resourceVersion itself.
    if (!decoded.metadata.resourceVersion) decoded.metadata.resourceVersion = existing.metadata.resourceVersion;
    if (decoded.metadata.name === undefined) decoded.metadata.name = name;
    const object = this.store.update(type, namespace, name, decoded, {
      subresource: subresource === 'status' ? 'status' : undefined,
      fromPatch: true,
      dryRun: dryRun(url),
    }).object;
    return { object, created: false };
  }
}

/** Starts a Kubernetes API test server on 127.0.0.1 (port 0 unless given). Call `close()` when done. */
export function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  return KubeApiServer.start(options);
}

function validateOptions(options: KubeApiServerOptions): void {
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65535)) {
    throw new ConfigurationError(`kube-api test server: port must be an integer from 0 to 65535, got ${String(options.port)}`);
  }
  if (options.namespace !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(options.namespace)) {
    throw new ConfigurationError(
      `kube-api test server: namespace "${options.namespace}" is not a valid DNS-1123 label; use lower-case letters, digits and '-'`,
    );
  }
  if (options.historyLimit !== undefined && !(Number.isInteger(options.historyLimit) && options.historyLimit > 0)) {
    throw new ConfigurationError(`kube-api test server: historyLimit must be a positive integer, got ${String(options.historyLimit)}`);
  }
}

function podStatus(phase: string, ready: boolean | undefined, podIP: string | undefined, old: Record<string, unknown> | undefined) {
  const isReady = ready ?? phase === 'Running';
  const now = new Date().toISOString().slice(0, 19) + 'Z';
  const oldConditions = Array.isArray(old?.conditions) ? (old.conditions as { type: string; status: string; lastTransitionTime?: string }[]) : [];
  const condition = (type: string, status: boolean) => {
    const value = status ? 'True' : 'False';
    const prev = oldConditions.find((c) => c.type === type);
    return { type, status: value, lastProbeTime: null, lastTransitionTime: prev && prev.status === value ? prev.lastTransitionTime : now };
  };
  const status: Record<string, unknown> = {
    phase,
    conditions: [
      condition('PodScheduled', true),
      condition('Initialized', phase !== 'Pending'),
      condition('ContainersReady', isReady),
      condition('Ready', isReady),
    ],
    qosClass: 'BestEffort',
  };
  if (podIP) status.podIP = podIP;
  if (phase === 'Running' && old?.startTime) status.startTime = old.startTime;
  else if (phase === 'Running') status.startTime = now;
  return status;
}

/** Every namespace exists here; kubectl reads one to word its NotFound errors. */
function namespaceObject(name: string) {
  return {
    kind: 'Namespace',
    apiVersion: 'v1',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

function withKind(type: ResourceType, obj: KubeObject): Record<string, unknown> {
  return { kind: type.kind, apiVersion: type.apiVersion, ...obj };
}

/**
 * A create or update body: JSON, or Kubernetes protobuf for the kinds protobuf.ts reads (kubectl's
 * typed clients send protobuf: `kubectl create configmap`). Anything else gets the apiserver's 415.
 */
async function readObjectBody(req: IncomingMessage, type: ResourceType): Promise<unknown> {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType === PROTOBUF) {
    try {
      return decodeProtobufBody(await readBytes(req), { apiVersion: type.apiVersion, kind: type.kind });
    } catch (err) {
      if (err instanceof ProtobufDecodeError) throw badRequest(`${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: ${err.message}`);
      throw err;
    }
  }
  if (contentType !== '' && contentType !== 'application/json') {
    req.resume();
    throw unsupportedMediaType(['application/json', PROTOBUF]);
  }
  return readJson(req);
}

/**
 * The fieldValidation query parameter: Strict refuses unknown fields (400, as the apiserver's strict
 * decoder), Ignore drops them silently, Warn (the default) drops them with a Warning header.
 */
function fieldValidation(url: URL, type: ResourceType, warnings: string[]): void {
  const directive = url.searchParams.get('fieldValidation') ?? 'Warn';
  if (!['Strict', 'Warn', 'Ignore'].includes(directive)) {
    throw badRequest(`fieldValidation: Unsupported value: "${directive}": supported values: "Ignore", "Strict", "Warn"`);
  }
  if (directive === 'Ignore') warnings.length = 0;
  if (directive === 'Strict' && warnings.length > 0) {
    throw badRequest(`${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: strict decoding error: ${warnings.join(', ')}`);
  }
}

/** `dryRun=All` (kubectl diff, `--dry-run=server`): check everything, write nothing. */
function dryRun(url: URL): boolean {
  const values = url.searchParams.getAll('dryRun');
  for (const v of values) if (v !== 'All') throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
  return values.length > 0;
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

function safeFieldSelector(s: string): FieldRequirement[] | undefined {
  try {
    return parseFieldSelector(s);
  } catch {
    return undefined;
  }
}

async function readBytes(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw requestEntityTooLarge(MAX_BODY);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readBody(req: IncomingMessage): Promise<string> {
  return (await readBytes(req)).toString('utf8');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch (err) {
    const detail = text.trim() === '' ? 'unexpected end of JSON input' : (err as Error).message;
    throw badRequest(`couldn't get version/kind; json parse error: ${detail}`);
  }
}

/**
 * An apply configuration. kubectl sends it as JSON, which is YAML too; this server reads no other YAML,
 * and says so rather than misreading it.
 */
async function readApplyConfiguration(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('error decoding YAML: this test server reads apply configurations written as JSON (the JSON subset of YAML), as kubectl sends them');
  }
}

async function readOptionalJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
}

function encodeContinue(rv: string, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: Number(rv), start })).toString('base64');
}

function decodeContinue(token: string): { rv: string; start: string } {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { v?: string; rv?: number; start?: string };
    if (parsed.v !== 'meta.k8s.io/v1' || typeof parsed.rv !== 'number' || typeof parsed.start !== 'string') throw new Error('bad');
    return { rv: String(parsed.rv), start: parsed.start };
  } catch {
    throw badRequest('continue key is not valid: illegal base64 data at input byte 0');
  }
}
