// `npm run fuzz [-- --runs N] [--seed S] [--target NAME…]`: runs every fuzz target (fuzz/targets.ts)
// with fast-check. The seed is printed first, so a failure is replayed with `--seed S --target T`;
// fast-check prints the shrunk counterexample. N inputs per target: --runs or $FUZZ_RUNS (default
// 10 000); the seed: --seed or $FUZZ_SEED (default: from the clock).
import fc from 'fast-check';
import { TARGETS } from './targets.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const runs = Number(arg('runs') ?? process.env['FUZZ_RUNS'] ?? 10_000);
const seed = Number(arg('seed') ?? process.env['FUZZ_SEED'] ?? Date.now() % 0x7fffffff);
const wanted = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--target' ? [a] : []));
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  process.stderr.write('fuzz: --runs must be a positive integer and --seed an integer\n');
  process.exit(2);
}
const unknown = wanted.filter((w) => !TARGETS.some((t) => t.name === w));
if (unknown.length) {
  process.stderr.write(`fuzz: unknown target ${unknown.join(', ')}; targets: ${TARGETS.map((t) => t.name).join(', ')}\n`);
  process.exit(2);
}

process.stdout.write(`fuzz: seed ${seed}, ${runs} inputs per target (replay: npm run fuzz -- --seed ${seed} --runs ${runs})\n`);
let failed = 0;
for (const t of TARGETS.filter((x) => wanted.length === 0 || wanted.includes(x.name))) {
  const t0 = performance.now();
  try {
    fc.assert(t.property(), { numRuns: runs, seed });
    process.stdout.write(`  ok    ${t.name.padEnd(14)} ${runs} inputs, ${Math.round(performance.now() - t0)} ms\n`);
  } catch (e) {
    failed++;
    process.stdout.write(
      `  FAIL  ${t.name.padEnd(14)} (replay: --seed ${seed} --target ${t.name})\n${e instanceof Error ? e.message : String(e)}\n`,
    );
  }
}
process.exit(failed ? 1 : 0);
