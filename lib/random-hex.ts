/**
 * Random hex digits for names that must not repeat but guard nothing: exchange id prefixes, instance ids,
 * temporary file names. Math.random, which V8 seeds from the operating system's entropy in each process,
 * rather than node:crypto: loading node:crypto starts OpenSSL, which a Hello World would otherwise pay
 * for in resident memory (about 1.2 MB, `npm run bench -- startup`) to draw a few unpredictable bytes it
 * does not need. Anything secret (tokens, keys) must still come from node:crypto.
 */
export function randomHex(bytes: number): string {
  let hex = '';
  for (let i = 0; i < bytes; i += 1) hex += Math.floor(Math.random() * 256).toString(16).padStart(2, '0');
  return hex;
}
