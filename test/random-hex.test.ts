import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomHex } from '../lib/random-hex.ts';

const run = promisify(execFile);

describe('randomHex', () => {
  it('gives two hex digits per byte', () => {
    for (const bytes of [1, 4, 6]) expect(randomHex(bytes)).to.match(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
  });

  it('does not repeat across draws (10,000 draws of 6 bytes all differ) and uses every digit', () => {
    const draws = Array.from({ length: 10_000 }, () => randomHex(6));
    expect(new Set(draws).size).to.equal(draws.length);
    expect(new Set(draws.join('')).size).to.equal(16);
  });

  it('draws differently in each process, so instance ids and temporary file names of two members differ', async () => {
    const module = new URL('../lib/random-hex.ts', import.meta.url).href;
    const script = `import { randomHex } from ${JSON.stringify(module)}; console.log(randomHex(8));`;
    const draws = await Promise.all(
      [1, 2, 3].map(async () => (await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 })).stdout.trim()),
    );
    for (const draw of draws) expect(draw).to.match(/^[0-9a-f]{16}$/);
    expect(new Set(draws).size).to.equal(3);
  });
});
