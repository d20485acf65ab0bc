import { relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// The DSL is entered from more than lib/dsl (lib/index.ts, Context.onException): any frame in lib is ours, not the user's.
const LIB_DIR = fileURLToPath(new URL('..', import.meta.url));

/**
 * Where the user's code called the DSL, as `routes/hello.ts:3`, so build errors and duplicate-id
 * errors point at the line to fix. Costs a stack capture, once per route definition.
 */
export function userCallSite(): string | undefined {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const frame of stack) {
    const match = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):(\d+):(\d+)\)?\s*$/.exec(frame.trim());
    if (!match) continue;
    const file = match[1]!.startsWith('file://') ? fileURLToPath(match[1]!) : match[1]!;
    if (file.startsWith(LIB_DIR) || file.includes(`${sep}node_modules${sep}tsx${sep}`)) continue;
    if (file.startsWith('node:') || file.includes(`${sep}node_modules${sep}mocha${sep}`)) continue;
    const shown = relative(process.cwd(), file);
    return `${shown.startsWith('..') ? file : shown}:${match[2]}`;
  }
  return undefined;
}
