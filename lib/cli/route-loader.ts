import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DromedaryError } from '../errors.ts';
import { RouteBuilder, type RouteDefinition } from '../dsl/route-definition.ts';
import { discardPendingDeclarations, takePendingErrorHandling, takePendingRoutes } from '../dsl/global-routes.ts';
import type { Context } from '../engine/context.ts';
import type { ClusterService } from '../cluster/cluster-service.ts';

/** The second argument of a route file's default-exported function. */
export interface RouteFileEnvironment {
  context: Context;
  cluster: ClusterService;
}

const ROUTE_FILE = /\.(ts|mts|js|mjs)$/;

/** A route file that could not be loaded: the message names the file, the line and the cause. */
export class RouteFileError extends DromedaryError {
  readonly file: string;

  constructor(file: string, line: string | undefined, cause: unknown) {
    const reason = cause instanceof Error ? `${cause.name === 'Error' ? '' : `${cause.name}: `}${firstLine(cause.message)}` : String(cause);
    super('ROUTE_FILE', `Failed to load route file ${file}${line ? `:${line}` : ''}: ${reason}`, { cause });
    this.file = file;
  }
}

function firstLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines[0] ?? text;
}

/** Every route file under the given files and folders, in a stable (sorted) order. */
export async function discoverRouteFiles(paths: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const p of paths) {
    const absolute = resolve(p);
    const info = await stat(absolute).catch(() => undefined);
    if (!info) throw new DromedaryError('ROUTES_NOT_FOUND', `Routes path not found: ${p}. Pass a folder or file of routes, e.g. dromedary run routes`);
    if (info.isFile()) found.push(absolute);
    else found.push(...(await walk(absolute)));
  }
  return [...new Set(found)];
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('_') || entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(full)));
    else if (ROUTE_FILE.test(entry.name) && !/\.d\.m?ts$/.test(entry.name)) files.push(full);
  }
  return files;
}

/**
 * The query that asks the CLI's load hook (bin/run-cli.mjs) for a TypeScript file's text as JavaScript,
 * unstripped. Without the hook (tests under tsx) the file loads the usual way.
 */
const AS_JAVASCRIPT = '?as-javascript';

/**
 * A TypeScript route file with no TypeScript syntax in it (routes/hello.ts) is loaded as the JavaScript it
 * is, so Node's type stripper (amaro, about 17 MB of WebAssembly) is loaded only for files that need it.
 * When the file does not parse as JavaScript, nothing of it has run (modules are parsed and linked before
 * any code runs), and it is imported again, through Node's type stripping.
 */
async function importRouteFile(file: string): Promise<unknown> {
  const url = pathToFileURL(file).href;
  if (!/\.m?ts$/.test(file)) return import(url);
  try {
    return await import(`${url}${AS_JAVASCRIPT}`);
  } catch (err) {
    if (!(err instanceof SyntaxError && /compileSourceTextModule/.test(err.stack ?? ''))) throw err;
    discardPendingDeclarations();
    return import(url);
  }
}

/**
 * Imports each file and collects its routes: those it defined with the top-level `from(...)`, and
 * those its default-exported function adds to the builder it is given.
 */
export async function loadRouteFiles(files: readonly string[], environment: RouteFileEnvironment): Promise<RouteDefinition[]> {
  const routes: RouteDefinition[] = [];
  for (const file of files) {
    const shown = relative(process.cwd(), file) || file;
    discardPendingDeclarations();
    try {
      const module = (await importRouteFile(file)) as { default?: unknown };
      routes.push(...takePendingRoutes());
      // Top-level errorHandler()/onException()/onCompletion() apply to the whole context, as context.onException() does.
      environment.context.errorHandling.adopt(takePendingErrorHandling());
      if (typeof module.default === 'function') {
        const builder = new RouteBuilder();
        await (module.default as (b: RouteBuilder, e: RouteFileEnvironment) => unknown)(builder, environment);
        routes.push(...builder.routes);
      }
    } catch (err) {
      discardPendingDeclarations();
      throw new RouteFileError(shown, lineIn(err, file), withHint(err, file));
    }
  }
  return routes;
}

const TYPE_STRIPPING = "TypeScript route files run with Node's type stripping";

/** The fix for the errors a route file written for a compiling loader (tsx, ts-node) meets under Node's type stripping. */
function withHint(err: unknown, file: string): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const typeScript = /\.m?ts$/.test(file);
  let hint: string | undefined;
  if ((code === 'MODULE_NOT_FOUND' && /'dromedary(\/[^']*)?'/.test(err.message)) || /Cannot use import statement outside a module/.test(err.message)) {
    hint = 'Route files are ES modules: add "type": "module" to the nearest package.json, or name the file .mts or .mjs';
  } else if (code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX') {
    hint = `${TYPE_STRIPPING}, which takes erasable syntax only: replace enums and namespaces with const objects, and constructor parameter properties with fields (tsc's erasableSyntaxOnly checks this)`;
  } else if (typeScript && err.name === 'SyntaxError' && /does not provide an export named '([^']+)'/.test(err.message)) {
    const name = /does not provide an export named '([^']+)'/.exec(err.message)![1];
    hint = `If ${name} is a type, import it with \`import type { ${name} }\` or \`import { type ${name} }\`: ${TYPE_STRIPPING}, which keeps every import not marked as a type (tsc's verbatimModuleSyntax checks this)`;
  }
  if (hint === undefined) return err;
  const hinted = new Error(`${err.message.split('\n')[0]}. ${hint}`);
  hinted.name = err.name;
  hinted.stack = err.stack;
  return hinted;
}

/** The line in `file` where the error arose: from the first stack frame (or syntax error report) in that file. */
function lineIn(err: unknown, file: string): string | undefined {
  const text = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match =
    new RegExp(`${escaped}:(\\d+)(?::(\\d+))?`).exec(text) ?? new RegExp(`${escaped.replace(/^\\\//, 'file:///')}(?:\\?[^:\\s]*)?:(\\d+)`).exec(text);
  return match ? `${match[1]}${match[2] ? `:${match[2]}` : ''}` : undefined;
}
