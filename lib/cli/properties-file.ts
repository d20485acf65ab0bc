import { readFile } from 'node:fs/promises';
import { DromedaryError } from '../errors.ts';

/**
 * Reads `--properties <file>`: the `{{name}}` values of endpoint URIs, one `key=value` (or `key: value`)
 * per line, `#` and `!` comment lines, as in a Java .properties file without escapes or continuations.
 * Errors name the file and the line, never a value.
 */
export async function readPropertiesFile(file: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new DromedaryError('CLI_OPTION', `--properties: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? String(err)}); give a file of key=value lines`);
  }
  return parseProperties(text, file);
}

export function parseProperties(text: string, file = 'properties'): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const at = line.search(/[=:]/);
    const key = at === -1 ? '' : line.slice(0, at).trim();
    if (key === '') {
      throw new DromedaryError('CLI_OPTION', `--properties: line ${i + 1} of ${file} is not key=value (comments start with #)`);
    }
    properties[key] = line.slice(at + 1).trim();
  }
  return properties;
}
