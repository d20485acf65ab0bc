import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const PROJECT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs npm (the one on PATH, as a user would) in `cwd`; throws with npm's output when it fails. */
export async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run('npm', args, {
      cwd,
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_loglevel: 'error' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** `npm pack` of this project (its prepare script builds dist/), into `dir`; resolves with the tarball's path. */
export async function packProject(dir: string): Promise<string> {
  const out = await npm(['pack', '--json', '--pack-destination', dir], PROJECT);
  const [info] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
  return join(dir, info!.filename);
}

/**
 * A fresh app folder (ESM package.json) with the tarball and the given extra packages installed from the
 * npm cache that installing this project filled (the registry only for what the cache lacks).
 */
export async function installedApp(tarball: string, extra: string[] = []): Promise<string> {
  const app = await mkdtemp(join(tmpdir(), 'dromedary-app-'));
  await writeFile(join(app, 'package.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`);
  await mkdir(join(app, 'routes'));
  await npm(['install', tarball, ...extra, '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock'], app);
  return app;
}

/** `name@version` of a package this project has installed, to install the same one into an app. */
export async function installedVersion(name: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(PROJECT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return `${name}@${pkg.version}`;
}
