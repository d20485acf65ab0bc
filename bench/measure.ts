/** Helpers shared by the benchmarks: medians over runs, and a table printer. */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `fn` `count` times in a row and returns operations per second. */
export async function opsPerSecond(count: number, fn: (i: number) => unknown): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i += 1) {
    const r = fn(i);
    if (r instanceof Promise) await r;
  }
  return count / ((performance.now() - start) / 1000);
}

export interface Row {
  name: string;
  value: string;
  baseline?: string;
  ratio?: string;
  note?: string;
}

export function printTable(title: string, rows: readonly Row[]): void {
  console.log(`\n## ${title}\n`);
  console.log('| measure | dromedary | baseline | ratio | note |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.value} | ${r.baseline ?? ''} | ${r.ratio ?? ''} | ${r.note ?? ''} |`);
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
