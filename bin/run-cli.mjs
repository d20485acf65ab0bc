// Starts the CLI on this Node (>= 22.19): the compiled library from dist/ in an installed package, the
// TypeScript sources from lib/ in a source checkout (Node strips their types as it loads them).
import { existsSync, readFileSync } from 'node:fs';
import { findPackageJSON, registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);

/** Where the running copy of dromedary lives: lib/ (.ts) in a checkout, else dist/ (.js). */
function runningCopy() {
  if (existsSync(new URL('lib/cli/main.ts', root))) return { dir: new URL('lib/', root), ext: '.ts' };
  if (existsSync(new URL('dist/cli/main.js', root))) return { dir: new URL('dist/', root), ext: '.js' };
  return undefined;
}

const ROUTE_TS = /\.m?ts$/;
/** Asked for by the route loader (lib/cli/route-loader.ts) to try a TypeScript route file as plain JavaScript. */
const AS_JAVASCRIPT = '?as-javascript';
const TYPE_ARGUMENTS = /[\w$\])]\s*<[^()=;]*>\s*\(/;

/**
 * Route files import `dromedary`: they must get the copy that is running, whose route registry the CLI
 * reads, even from a folder that has no dromedary installed or has another copy. TypeScript route files
 * may also write relative imports the way tsc's bundler-style resolution allows (`./x.js` or `./x` for
 * `./x.ts`); Node needs the file's real name, so those are tried too. Loading .ts is Node's own type
 * stripping, in this thread, with no helper process and nothing written to disk; a route file without
 * TypeScript syntax is first tried as JavaScript, which spares loading the stripper at all.
 */
function loaderHooks(copy) {
  const targets = {
    dromedary: new URL(`index${copy.ext}`, copy.dir).href,
    'dromedary/testing': new URL(`testing/index${copy.ext}`, copy.dir).href,
    'dromedary/package.json': new URL('package.json', root).href,
  };
  return {
    resolve(specifier, context, nextResolve) {
      const target = targets[specifier];
      if (target) return { url: target, shortCircuit: true };
      try {
        return nextResolve(specifier, context);
      } catch (err) {
        const parent = (context.parentURL ?? '').replace(/\?.*$/, '');
        if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !specifier.startsWith('.') || !ROUTE_TS.test(parent) || parent.includes('/node_modules/')) throw err;
        for (const candidate of [specifier.replace(/\.(m?)js$/, '.$1ts'), `${specifier}.ts`, `${specifier}/index.ts`]) {
          if (candidate === specifier) continue;
          try {
            return nextResolve(candidate, context);
          } catch {
            // try the next spelling
          }
        }
        throw err;
      }
    },
    // The file's own text as an ES module: V8 parses it or throws a SyntaxError before any of it runs.
    // Only for an ES module: a .mts file, or a .ts file whose package.json says "type": "module".
    load(url, context, nextLoad) {
      if (!url.endsWith(AS_JAVASCRIPT) || !isModule(url)) return nextLoad(url, context);
      const source = readFileSync(fileURLToPath(url), 'utf8');
      // A TypeScript construct that also parses as JavaScript, with another meaning: type arguments
      // (`get<string>(x)`, `new Map<K, V>(x)` read as comparisons). A file that may hold one is stripped.
      if (TYPE_ARGUMENTS.test(source)) return nextLoad(url, context);
      return { format: 'module', source, shortCircuit: true };
    },
  };
}

/**
 * Under `npx dromedary` npm starts a shell that starts this process, and on SIGTERM npm signals only the
 * shell, which dies and leaves this process running without its parent. Seeing the parent change, stop as
 * on SIGTERM. Only under npm: a process started with nohup or by a shell that exits is meant to outlive it.
 */
function stopWhenNpmGoes() {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, 1000);
  timer.unref();
}

function isModule(url) {
  if (new URL(url).pathname.endsWith('.mts')) return true;
  const pkg = findPackageJSON(url);
  return pkg !== undefined && JSON.parse(readFileSync(pkg, 'utf8')).type === 'module';
}

/** Runs `dromedary <argv>` and resolves with the exit code. */
export async function runCli(argv) {
  const copy = runningCopy();
  if (!copy) {
    process.stderr.write('dromedary: this copy is not built (no dist/): run npm run build in its folder, or install it from npm.\n');
    return 1;
  }
  registerHooks(loaderHooks(copy));
  // (A relaunched process has its lifeline instead, a --replicas member its stdin.)
  const { npm_lifecycle_event, DROMEDARY_REEXEC, DROMEDARY_REPLICA_CHILD } = process.env;
  if (npm_lifecycle_event && !DROMEDARY_REEXEC && !DROMEDARY_REPLICA_CHILD && argv.includes('run')) stopWhenNpmGoes();
  const { main } = await import(new URL(`cli/main${copy.ext}`, copy.dir).href);
  return main(argv);
}
