import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DromedaryError } from '../errors.ts';
import { parseDuration } from '../uri/duration.ts';
import { maskSecrets } from '../uri/mask.ts';
import { createCliLogger } from './logging.ts';
import { runRoutes } from './run-command.ts';
import { runReplicas } from './replicas.ts';
import { readPropertiesFile } from './properties-file.ts';
import { CLUSTER_KINDS } from '../cluster/config.ts';

export const HELP = `dromedary: Camel-style integration routes for Node.js, with clustered singleton (master:) routes.

Usage:
  dromedary run [paths...] [options]   Run the routes in the given folders or files (default: ./routes)
  dromedary kube-api [--port n] [--namespace ns] [--kubeconfig file]
                                       Start the Kubernetes API test server (leases, configmaps, pods)
                                       and write a kubeconfig for it, until Ctrl-C
  dromedary --help                     Show this help
  dromedary --version                  Show the version

Options for run:
  --log-format text|json      Log format (env DROMEDARY_LOG_FORMAT; default text)
  --log-level <level>         error, warn, info, verbose, debug or silly (env DROMEDARY_LOG_LEVEL; default info)
  --shutdown-timeout <dur>    How long to wait for in-flight exchanges on SIGINT/SIGTERM (default 10s)
  --cluster <kind>            auto, file, kubernetes, etcd, postgres, zookeeper or none (env DROMEDARY_CLUSTER; default auto:
                              kubernetes inside a pod, else file locks under the OS temp folder)
  --etcd-endpoints <urls>     The etcd backend's servers, http://host:2379[,...] (env DROMEDARY_ETCD_ENDPOINTS)
  --postgres-url <url>        The postgres backend's database, postgres://user:pass@host:5432/db (env DROMEDARY_POSTGRES_URL)
  --zookeeper-nodes <list>    The zookeeper backend's servers, host:2181[,...][/chroot] (env DROMEDARY_ZOOKEEPER_NODES)
  --member-id <id>            This member's id (env DROMEDARY_MEMBER_ID; default pod name or host name plus pid)
  --replicas <n>              Run n member processes on this machine, like n pods; lines are prefixed by member id
  --properties <file>         key=value lines: the values of {{name}} placeholders in endpoint URIs
                              ({{env:NAME}} reads the environment without it)
  --health-port <n>           Serve /healthz, /readyz and /leadership on this port (env DROMEDARY_HEALTH_PORT;
                              host DROMEDARY_HEALTH_HOST, default 127.0.0.1; use 0.0.0.0 in a pod)

Cluster environment: DROMEDARY_CLUSTER_ROOT (file backend folder), DROMEDARY_LEASE_DURATION (15s),
DROMEDARY_RENEW_DEADLINE (10s), DROMEDARY_RETRY_PERIOD (2s), DROMEDARY_ETCD_PREFIX (/dromedary/leader/),
DROMEDARY_POSTGRES_TABLE (dromedary_leases).

Route files (.ts, .mts, .js, .mjs; names starting with _ are skipped) either call from() at top level:
  import { from } from 'dromedary';
  from('timer:tick?period=1000').log('Hello World!');
or export a function that receives a route builder:
  export default (r) => { r.from('timer:tick').log('Hello'); };
`;

const runFlags = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  cluster: { type: 'string' },
  'member-id': { type: 'string' },
  'etcd-endpoints': { type: 'string' },
  'postgres-url': { type: 'string' },
  'zookeeper-nodes': { type: 'string' },
  replicas: { type: 'string' },
  port: { type: 'string' },
  'health-port': { type: 'string' },
  properties: { type: 'string' },
  namespace: { type: 'string' },
  kubeconfig: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** The CLI entry point; resolves with the exit code instead of calling process.exit, so tests can call it. */
export async function main(argv: readonly string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: runFlags, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`dromedary: ${(err as Error).message}\nRun dromedary --help for the options.\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.version) {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    out.write(`${pkg.version}\n`);
    return 0;
  }
  if (values.help || command === undefined || command === 'help') {
    out.write(HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (command === 'kube-api') return kubeApi(values, out);
  if (command !== 'run') {
    process.stderr.write(`dromedary: unknown command "${command}". Commands: run, kube-api. Run dromedary --help for usage.\n`);
    return 2;
  }
  let logger;
  try {
    logger = createCliLogger({ format: values['log-format'], level: values['log-level'], stream: out });
  } catch (err) {
    process.stderr.write(`dromedary: ${(err as Error).message}\n`);
    return 2;
  }
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
    const properties = values.properties === undefined ? undefined : await readPropertiesFile(values.properties);
    const code = await runRoutes({
      properties,
      healthPort,
      healthHost: process.env.DROMEDARY_HEALTH_HOST,
      paths: rest.length > 0 ? rest : ['routes'],
      logger,
      shutdownTimeout,
      cluster: { cluster: values.cluster, memberId: values['member-id'], etcdEndpoints: values['etcd-endpoints'], postgresUrl: values['postgres-url'], zookeeperNodes: values['zookeeper-nodes'] },
    });
    await flush(logger);
    return code;
  } catch (err) {
    const message = err instanceof DromedaryError ? err.message : `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`;
    logger.error(`Startup failed: ${maskSecrets(message)}`);
    if (!(err instanceof DromedaryError) || process.env.DROMEDARY_DEBUG) logger.debug(maskSecrets(String((err as Error)?.stack ?? err)));
    await flush(logger);
    return 1;
  }
}

/** `dromedary kube-api`: the Kubernetes API test server until SIGINT/SIGTERM. */
async function kubeApi(values: { port?: string; namespace?: string; kubeconfig?: string }, out: NodeJS.WritableStream): Promise<number> {
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`dromedary: --port "${values.port}" must be a port number from 0 to 65535\n`);
    return 2;
  }
  const { runKubeApiCommand } = await import('../testing/kube-api/command.ts');
  const server = await runKubeApiCommand({ port, namespace: values.namespace, kubeconfigPath: values.kubeconfig, out: (line) => out.write(`${line}\n`) });
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
