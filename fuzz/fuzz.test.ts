// A short pass of every fuzz target in the test suite (issue 10 §6), with a fixed seed so CI is
// reproducible; `npm run fuzz` runs the long one. FUZZ_RUNS raises the count here too.
import { test } from 'node:test';
import fc from 'fast-check';
import { TARGETS } from './targets.ts';

const SEED = 20261204;
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 150);

for (const t of TARGETS) {
  test(`fuzz ${t.name}: ${RUNS} inputs, seed ${SEED}`, () => {
    fc.assert(t.property(), { numRuns: RUNS, seed: SEED });
  });
}
