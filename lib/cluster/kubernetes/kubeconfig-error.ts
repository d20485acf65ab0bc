import { maskSecrets } from '../../uri/mask.ts';

/**
 * Why a kubeconfig could not be loaded, without any of its content. A YAML error from js-yaml
 * carries a code frame of the lines around the fault, and those lines are where `token:`,
 * `password:` and `client-key-data:` live: only the line, the column and the problem are kept,
 * and quoted or tagged fragments of the file are left out of the problem too.
 */
export function describeKubeconfigError(err: unknown): string {
  const e = err as { name?: unknown; reason?: unknown; mark?: { line?: unknown; column?: unknown }; message?: unknown } | null;
  if (e && typeof e.reason === 'string' && e.mark && typeof e.mark.line === 'number') {
    const column = typeof e.mark.column === 'number' ? `, column ${e.mark.column + 1}` : '';
    return `invalid YAML at line ${e.mark.line + 1}${column}: ${withoutContent(e.reason)}`;
  }
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (err instanceof TypeError && /null|undefined/.test(message)) return 'the file is empty or is not a YAML mapping (expected apiVersion, clusters, users, contexts)';
  // client-node's own errors ("clusters[0].cluster.server is missing", ENOENT) are one line and name
  // no value; keep only the first line in any case, so no code frame can follow.
  return maskSecrets(withoutContent(message.split('\n')[0]!));
}

function withoutContent(text: string): string {
  return text.replace(/"[^"]*"/g, '"…"').replace(/'[^']*'/g, "'…'").replace(/!<[^>]*>/g, '!<…>').slice(0, 200);
}
