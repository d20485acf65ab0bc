/**
 * A real browser for tests: Debian's chromium, driven by puppeteer-core (which downloads no browser
 * of its own). Installed with apt-get when missing, as the RabbitMQ harness does, with
 * --no-install-recommends (25 packages instead of 130 that would upgrade the init system).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Browser } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';

let installChecked = false;

function ensureInstalled(): void {
  if (installChecked || existsSync(CHROMIUM)) {
    installChecked = true;
    return;
  }
  const isRoot = process.getuid?.() === 0;
  const isDebian = existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
  if (!isRoot || !isDebian) {
    throw new Error(`Chromium is not installed (${CHROMIUM} is missing). Install it with \`sudo apt-get install --no-install-recommends chromium\` (Debian/Ubuntu).`);
  }
  const script = [
    'set -e',
    // As for RabbitMQ: no package's postinst may start a system service on this machine.
    "[ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }",
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }',
  ].join('\n');
  const res = spawnSync('sh', ['-c', script], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
  if (res.status !== 0 || !existsSync(CHROMIUM)) {
    throw new Error(`installing chromium with apt-get failed (exit ${res.status}); install it by hand: apt-get install --no-install-recommends chromium`);
  }
  installChecked = true;
}

/** A headless Chromium; close it (which stops its processes) in an after hook. */
export async function launchChromium(): Promise<Browser> {
  ensureInstalled();
  const { launch } = await import('puppeteer-core');
  return launch({
    executablePath: CHROMIUM,
    headless: true,
    // No sandbox: the tests run as root in a container; no GPU on this machine.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}
