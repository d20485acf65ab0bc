#!/usr/bin/env node
// The dromedary command. Plain JavaScript, so any `node` can start it; it needs Node >= 22.19 to run
// routes, and re-launches itself on the Node 24 from the `node` npm package when an older Node started it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
  const candidates = [join(process.cwd(), 'node_modules', 'node', 'bin', 'node'), join(packageRoot, 'node_modules', 'node', 'bin', 'node')];
  const newer = candidates.find((c) => existsSync(c));
  if (!newer || process.env.DROMEDARY_REEXEC) {
    process.stderr.write(
      `dromedary needs Node.js >= 22.19 (Node 24 LTS recommended); this is Node ${process.versions.node}.\n` +
        'Install Node 24, or add the "node" npm package (npm install --save-dev node@24) and run dromedary through npm scripts.\n',
    );
    process.exit(1);
  }
  const { relaunch } = await import('./relaunch.mjs');
  process.exit(await relaunch(newer, [fileURLToPath(import.meta.url), ...process.argv.slice(2)]));
} else {
  if (process.env.DROMEDARY_LIFELINE_FD) (await import('./relaunch.mjs')).watchLifeline();
  const { runCli } = await import('./run-cli.mjs');
  // Exit explicitly: a route's leftover socket or timer must not keep a stopped process alive.
  process.exit(await runCli(process.argv.slice(2)));
}
