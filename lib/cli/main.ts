import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DromedaryError } from '../errors.ts';
import { parseDuration } from '../uri/duration.ts';
import { maskSecrets } from '../uri/mask.ts';
import type { createCliLogger } from './logging.ts';

export const HELP = `dromedary: Camel-style integration routes for Node.js, with clustered singleton (master:) routes.

Usage:
  dromedary run [paths...] [options]   Run the routes in the given folders or files (default: ./routes)
  dromedary status [--cluster kind] [--output table|json]
                                       Show each lock in the cluster store: holder, term, acquired and
                                       renewed times, whether the lease holds (same cluster settings as run)
  dromedary kube-api [options]         Start the Kubernetes API test server (leases, configmaps, pods)
                                       and write a kubeconfig for it, until Ctrl-C
  dromedary help [command]             Show this help, or a command's options (also: dromedary <command> --help)
  dromedary --version                  Show the version

Route files (.ts, .mts, .js, .mjs; names starting with _ are skipped) either call from() at top level:
  import { from } from 'dromedary';
  from('timer:tick?period=1000').log('Hello World!');
or export a function that receives a route builder:
  export default (r) => { r.from('timer:tick').log('Hello'); };
TypeScript route files run with Node's type stripping: erasable syntax only, and \`import type\` for types.
`;

export const RUN_HELP = `Usage: dromedary run [paths...] [options]

Runs the route files in the given folders or files (default: ./routes) until SIGINT or SIGTERM, then
stops gracefully: consumers first, in-flight exchanges, producers, and held locks released.

Options:
  --log-format text|json      Log format (env DROMEDARY_LOG_FORMAT; default text)
  --log-level <level>         error, warn, info, verbose, debug, trace or silly (env DROMEDARY_LOG_LEVEL; default info)
  --shutdown-timeout <dur>    How long to wait for in-flight exchanges on SIGINT/SIGTERM (default 10s)
  --cluster <kind>            auto, file, kubernetes, etcd, postgres, zookeeper or none (env DROMEDARY_CLUSTER;
                              default auto: kubernetes inside a pod, else file locks under the OS temp folder)
  --etcd-endpoints <urls>     The etcd backend's servers, http://host:2379[,...] (env DROMEDARY_ETCD_ENDPOINTS)
  --postgres-url <url>        The postgres backend's database, postgres://user:pass@host:5432/db (env DROMEDARY_POSTGRES_URL)
  --zookeeper-nodes <list>    The zookeeper backend's servers, host:2181[,...][/chroot] (env DROMEDARY_ZOOKEEPER_NODES)
  --member-id <id>            This member's id (env DROMEDARY_MEMBER_ID; default pod name or host name plus pid)
  --rebalance                 Spread the leaders of the locks evenly over the live members (env DROMEDARY_REBALANCE=true;
                              file, kubernetes and etcd backends)
  --replicas <n>              Run n member processes on this machine, like n pods; lines are prefixed by member id
  --properties <file>         key=value lines: the values of {{name}} placeholders in endpoint URIs
                              (env DROMEDARY_PROPERTIES; {{env:NAME}} reads the environment without it)
  --health-port <n>           Serve /healthz, /readyz, /leadership, /metrics and the console (/) on this port (env DROMEDARY_HEALTH_PORT;
                              host DROMEDARY_HEALTH_HOST, default 127.0.0.1; use 0.0.0.0 in a pod)
  -h, --help                  Show this help

Cluster environment: DROMEDARY_CLUSTER_ROOT (file backend folder, yours alone; default
<os temp>/dromedary-<uid>/cluster), DROMEDARY_LEASE_DURATION (15s), DROMEDARY_RENEW_DEADLINE (10s),
DROMEDARY_RETRY_PERIOD (2s); timings need a unit. DROMEDARY_ETCD_PREFIX (/dromedary/leader/),
DROMEDARY_POSTGRES_TABLE (dromedary_leases).
`;

export const STATUS_HELP = `Usage: dromedary status [options]

Reads the cluster store that dromedary run would use (the same flags and DROMEDARY_* variables) and
prints each lock: holder, term (fencing token), acquired and renewed times, and whether its lease still
holds. No member needs to be running.

Options:
  --cluster <kind>            auto, file, kubernetes, etcd, postgres or zookeeper (env DROMEDARY_CLUSTER; default auto)
  --etcd-endpoints <urls>     The etcd backend's servers (env DROMEDARY_ETCD_ENDPOINTS; keys under DROMEDARY_ETCD_PREFIX)
  --postgres-url <url>        The postgres backend's database (env DROMEDARY_POSTGRES_URL; table DROMEDARY_POSTGRES_TABLE)
  --zookeeper-nodes <list>    The zookeeper backend's servers, host:2181[,...][/chroot] (env DROMEDARY_ZOOKEEPER_NODES)
  --output table|json         Output format (default table)
  -h, --help                  Show this help
`;

export const KUBE_API_HELP = `Usage: dromedary kube-api [options]

Starts the Kubernetes API test server (leases, configmaps, pods, with watches) on 127.0.0.1 over HTTPS and
writes a kubeconfig (0600) with the bearer token it requires, until SIGINT or SIGTERM. For trying
--cluster kubernetes on one machine, and kubectl against it.

Options:
  --port <n>                  Port to listen on (default: any free port)
  --namespace <ns>            The namespace of the kubeconfig's context (default: default)
  --kubeconfig <file>         Where to write the kubeconfig (default: kubeconfig.dromedary-test.yaml)
  --anonymous                 Accept requests without the token (for tests that want it)
  -h, --help                  Show this help
`;

const helpFlag = { help: { type: 'boolean', short: 'h' } } as const;

const runFlags = {
  ...helpFlag,
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  cluster: { type: 'string' },
  'member-id': { type: 'string' },
  rebalance: { type: 'boolean' },
  'etcd-endpoints': { type: 'string' },
  'postgres-url': { type: 'string' },
  'zookeeper-nodes': { type: 'string' },
  replicas: { type: 'string' },
  'health-port': { type: 'string' },
  properties: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const kubeApiFlags = {
  ...helpFlag,
  port: { type: 'string' },
  namespace: { type: 'string' },
  kubeconfig: { type: 'string' },
  anonymous: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

const statusFlags = {
  ...helpFlag,
  cluster: { type: 'string' },
  'etcd-endpoints': { type: 'string' },
  'postgres-url': { type: 'string' },
  'zookeeper-nodes': { type: 'string' },
  output: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const COMMANDS: Record<string, { flags: ParseArgsConfig['options']; help: string; positionals: boolean }> = {
  run: { flags: runFlags, help: RUN_HELP, positionals: true },
  status: { flags: statusFlags, help: STATUS_HELP, positionals: false },
  'kube-api': { flags: kubeApiFlags, help: KUBE_API_HELP, positionals: false },
};

/** The CLI entry point; resolves with the exit code instead of calling process.exit, so tests can call it. */
export async function main(argv: readonly string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const commandAt = argv.findIndex((a) => !a.startsWith('-'));
  const command = commandAt === -1 ? undefined : argv[commandAt]!;
  const before = commandAt === -1 ? argv : argv.slice(0, commandAt);
  const usage = (message: string) => {
    process.stderr.write(`dromedary: ${message}\n`);
    return 2;
  };
  // Options before the command are the global ones: --help and --version.
  for (const flag of before) {
    if (flag === '--version' || flag === '-v') {
      const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
      out.write(`${pkg.version}\n`);
      return 0;
    }
    if (flag !== '--help' && flag !== '-h') {
      const hint = command === undefined ? '' : `: a command's options go after it (dromedary ${command} ${flag} ...)`;
      return usage(`unknown option ${flag}${hint}. Run dromedary --help for usage.`);
    }
  }
  if (command === undefined) {
    out.write(HELP);
    return before.length > 0 ? 0 : 2;
  }
  if (command === 'help') {
    const topic = argv[commandAt + 1];
    if (topic === undefined) {
      out.write(HELP);
      return 0;
    }
    const known = COMMANDS[topic];
    if (!known) return usage(`unknown command "${topic}". Commands: ${Object.keys(COMMANDS).join(', ')}.`);
    out.write(known.help);
    return 0;
  }
  const spec = COMMANDS[command];
  if (!spec) return usage(`unknown command "${command}". Commands: ${Object.keys(COMMANDS).join(', ')}. Run dromedary --help for usage.`);
  if (before.some((f) => f === '--help' || f === '-h')) {
    out.write(spec.help);
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(commandAt + 1), options: spec.flags, allowPositionals: spec.positionals, strict: true });
  } catch (err) {
    return usage(`${command}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, '.')}\nRun dromedary ${command} --help for its options.`);
  }
  if ((parsed.values as { help?: boolean }).help) {
    out.write(spec.help);
    return 0;
  }
  if (command === 'status') return (await import('./status-command.ts')).statusCommand(parsed.values as import('./status-command.ts').StatusValues, out);
  if (command === 'kube-api') return kubeApi(parsed.values as { port?: string; namespace?: string; kubeconfig?: string; anonymous?: boolean }, out);
  return run(argv, parsed.values as RunValues, parsed.positionals, out);
}

type RunValues = { [K in keyof typeof runFlags]?: (typeof runFlags)[K]['type'] extends 'boolean' ? boolean : string };

/** `dromedary run`. */
async function run(argv: readonly string[], values: RunValues, paths: string[], out: NodeJS.WritableStream): Promise<number> {
  // Loaded here, not at the top: help, --version and kube-api start without the engine and winston; the
  // --replicas supervisor (node:child_process, node:readline) and the properties file reader when asked for.
  const [{ createCliLogger }, { CLUSTER_KINDS }] = await Promise.all([import('./logging.ts'), import('../cluster/config.ts')]);
  let logger;
  try {
    logger = createCliLogger({ format: values['log-format'], level: values['log-level'], stream: out });
  } catch (err) {
    process.stderr.write(`dromedary: ${(err as Error).message}\n`);
    return 2;
  }
  // A closed stdout (`dromedary run | head -2`) stops the process as a signal would: gracefully, releasing its locks.
  const outputClosed = new AbortController();
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    logger.silent = true;
    outputClosed.abort();
  });
  try {
    const shutdownTimeout = values['shutdown-timeout'] === undefined ? undefined : parseDuration(values['shutdown-timeout']);
    if (shutdownTimeout === undefined && values['shutdown-timeout'] !== undefined) {
      throw new DromedaryError('CLI_OPTION', `--shutdown-timeout "${values['shutdown-timeout']}" is not a duration: use e.g. 5s or 500ms`);
    }
    if (values.cluster !== undefined && !(CLUSTER_KINDS as readonly string[]).includes(values.cluster)) {
      throw new DromedaryError('CLI_OPTION', `--cluster "${values.cluster}" is not one of ${CLUSTER_KINDS.join(', ')}`);
    }
    if (values.replicas !== undefined) {
      const count = Number(values.replicas);
      if (!Number.isInteger(count) || count < 1 || count > 64) {
        throw new DromedaryError('CLI_OPTION', `--replicas "${values.replicas}" must be a whole number from 1 to 64`);
      }
      const { runReplicas } = await import('./replicas.ts');
      const code = await runReplicas({
        count,
        args: withoutFlag(withoutFlag(argv.filter((_, i) => i !== argv.indexOf('run')), '--replicas'), '--member-id'),
        memberPrefix: values['member-id'] ?? `r${process.pid}`,
        script: process.argv[1]!,
        logger,
        out,
      });
      await flush(logger);
      return code;
    }
    const healthText = values['health-port'] ?? process.env.DROMEDARY_HEALTH_PORT;
    const healthPort = healthText === undefined || healthText === '' ? undefined : Number(healthText);
    if (healthPort !== undefined && (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535)) {
      throw new DromedaryError('CLI_OPTION', `--health-port "${healthText}" must be a port number from 0 to 65535`);
    }
    const propertiesFile = values.properties ?? (process.env.DROMEDARY_PROPERTIES || undefined);
    const properties = propertiesFile === undefined ? undefined : await (await import('./properties-file.ts')).readPropertiesFile(propertiesFile);
    const { runRoutes } = await import('./run-command.ts');
    const code = await runRoutes({
      properties,
      healthPort,
      healthHost: process.env.DROMEDARY_HEALTH_HOST,
      paths: paths.length > 0 ? paths : ['routes'],
      logger,
      shutdownTimeout,
      cluster: { cluster: values.cluster, memberId: values['member-id'], rebalance: values.rebalance, etcdEndpoints: values['etcd-endpoints'], postgresUrl: values['postgres-url'], zookeeperNodes: values['zookeeper-nodes'] },
      stop: outputClosed.signal,
    });
    await flush(logger);
    return code;
  } catch (err) {
    const message = err instanceof DromedaryError ? err.message : `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`;
    logger.error(`Startup failed: ${maskSecrets(message)}`);
    if (!(err instanceof DromedaryError) || process.env.DROMEDARY_DEBUG) logger.debug(maskSecrets(String((err as Error)?.stack ?? err)));
    await flush(logger);
    if (process.env.DROMEDARY_REPLICA_CHILD === '1') {
      const { CONFIGURATION_ERROR_EXIT, isConfigurationError } = await import('./exit-codes.ts');
      if (isConfigurationError(err)) return CONFIGURATION_ERROR_EXIT;
    }
    return 1;
  }
}

/** `dromedary kube-api`: the Kubernetes API test server until SIGINT/SIGTERM. */
async function kubeApi(values: { port?: string; namespace?: string; kubeconfig?: string; anonymous?: boolean }, out: NodeJS.WritableStream): Promise<number> {
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`dromedary: --port "${values.port}" must be a port number from 0 to 65535\n`);
    return 2;
  }
  const { runKubeApiCommand } = await import('../testing/kube-api/command.ts');
  let server: Awaited<ReturnType<typeof runKubeApiCommand>>;
  try {
    server = await runKubeApiCommand({ port, namespace: values.namespace, kubeconfigPath: values.kubeconfig, anonymous: values.anonymous, out: (line) => out.write(`${line}\n`) });
  } catch (err) {
    const { listenError } = await import('./listen-error.ts');
    const e = err as NodeJS.ErrnoException;
    const known =
      listenError(err, '--port') ??
      (e?.syscall === 'open' || e?.syscall === 'rename' || e?.syscall === 'mkdir'
        ? `--kubeconfig ${values.kubeconfig ?? 'kubeconfig.dromedary-test.yaml'} cannot be written (${e.code}): ${
            e.code === 'ENOENT' ? 'its folder does not exist, create it or choose another path' : 'choose a path this user can write'
          }`
        : undefined);
    if (known === undefined) throw err;
    process.stderr.write(`dromedary: ${typeof known === 'string' ? known : known.message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  return 0;
}

/** The arguments with `--flag value` and `--flag=value` removed. */
function withoutFlag(args: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === flag) i += 1;
    else if (!args[i]!.startsWith(`${flag}=`)) out.push(args[i]!);
  }
  return out;
}

/** Waits until winston has written every line, so exiting right after loses none. */
function flush(logger: ReturnType<typeof createCliLogger>): Promise<void> {
  return new Promise<void>((resolve) => {
    logger.on('finish', () => setImmediate(resolve));
    logger.end();
  });
}
