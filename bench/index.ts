/**
 * `npm run bench [name...]`: runs every benchmark (or the named ones) and prints Markdown tables.
 * Each figure is reported next to a baseline measured in the same run.
 */
const suites: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  engine: () => import('./engine.bench.ts'),
  failover: () => import('./failover.bench.ts'),
  rebalance: () => import('./rebalance.bench.ts'),
  kubernetes: () => import('./kubernetes.bench.ts'),
  eips: () => import('./eips.bench.ts'),
  amqp: () => import('./amqp.bench.ts'),
  startup: () => import('./startup.bench.ts'),
  'leader-state': () => import('./leader-state.bench.ts'),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in suites));
if (unknown.length > 0) {
  console.error(`Unknown benchmark(s): ${unknown.join(', ')}. Available: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
console.log(`# dromedary benchmarks\n\nNode ${process.versions.node}, ${new Date().toISOString()}`);
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  const suite = await suites[name]!();
  await suite.run();
}
process.exit(0);
