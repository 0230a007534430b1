// npm run bench:milenage [-- --n 20000] [-- --base REV] [-- --runs R]: CPU µs per Milenage use, this
// tree against REV (default main) in one run: the HSS's vector (generateVector) and the USIM's AUTN check
// (Usim.respond), with a common K and with a new K per call. Both sides are bundled by esbuild the same
// way (bench/milenage-child.ts) and run compiled, alternating old/new processes R times; the medians and
// the ratio new/old are printed. A benchmark, not a test: on a shared machine the figures are noisy
// (the load average is printed); compare the ratios of one run.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOldAndNew } from './baseline-bundles.ts';
import type { MilenageFigures } from './milenage-child.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1]! : dflt);
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const n = Number(arg('n', '20000'));
const runs = Number(arg('runs', '3'));
const { sha, oldBundle, newBundle } = await bundleOldAndNew(join(here, 'milenage-child.ts'), arg('base', 'main'));

const run = (bundle: string): MilenageFigures => {
  const r = spawnSync(process.execPath, [bundle, '--n', String(n)], { cwd: repo, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child ${bundle} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as MilenageFigures;
};
const olds: MilenageFigures[] = [];
const news: MilenageFigures[] = [];
for (let i = 0; i < runs; i++) {
  olds.push(run(oldBundle));
  news.push(run(newBundle));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out: Record<string, unknown> = { base: sha.slice(0, 9), n, runs, loadavg_1m: +loadavg()[0]!.toFixed(2) };
for (const key of Object.keys(olds[0]!) as (keyof MilenageFigures)[]) {
  const o = median(olds.map((f) => f[key]));
  const m = median(news.map((f) => f[key]));
  out[key] = { old: o, new: m, ratio: +(m / o).toFixed(2) };
}
console.log(JSON.stringify(out, null, 1));
