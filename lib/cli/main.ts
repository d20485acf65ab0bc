import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DromedaryError } from '../errors.ts';
import { parseDuration } from '../uri/duration.ts';
import { maskSecrets } from '../uri/mask.ts';
import { createCliLogger } from './logging.ts';
import { runRoutes } from './run-command.ts';

export const HELP = `dromedary: Camel-style integration routes for Node.js, with clustered singleton (master:) routes.

Usage:
  dromedary run [paths...] [options]   Run the routes in the given folders or files (default: ./routes)
  dromedary --help                     Show this help
  dromedary --version                  Show the version

Options for run:
  --log-format text|json      Log format (env DROMEDARY_LOG_FORMAT; default text)
  --log-level <level>         error, warn, info, verbose, debug or silly (env DROMEDARY_LOG_LEVEL; default info)
  --shutdown-timeout <dur>    How long to wait for in-flight exchanges on SIGINT/SIGTERM (default 10s)

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
  if (command !== 'run') {
    process.stderr.write(`dromedary: unknown command "${command}". Commands: run. Run dromedary --help for usage.\n`);
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
    const code = await runRoutes({ paths: rest.length > 0 ? rest : ['routes'], logger, shutdownTimeout });
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

/** Waits until winston has written every line, so exiting right after loses none. */
function flush(logger: ReturnType<typeof createCliLogger>): Promise<void> {
  return new Promise<void>((resolve) => {
    logger.on('finish', () => setImmediate(resolve));
    logger.end();
  });
}
