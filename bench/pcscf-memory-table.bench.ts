// npm run bench:pcscf-memory-table [-- --n 20000] [--base <commit>] [--runs 2]: heap and RSS per
// registration that the P-CSCF's registration table keeps (issue 9 §2), old code against new in one
// run: bench/pcscf-memory-table-child.ts bundled against --base's src/ and this tree's, each run in
// a process of its own, alternately (old new old new …), and the ratio printed. In-process, without
// sockets: each registration goes through the registration machine on messages parsed as off the
// wire, then into the table (the full picture with a burst and its transactions is npm run
// bench:pcscf-memory). A benchmark, not a test: the machine is shared, RSS figures are noisy; the
// heap figures are steadier.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOldAndNew } from './baseline-bundles.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1]! : dflt);
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
/** Main before this bench's first cuts (the parsed Security-Server, the by-set map, the SaSlots object, per-registration Service-Route lists). */
const DEFAULT_BASE = '03400b0';
const n = arg('n', '20000');
const runs = Number(arg('runs', '2'));
const base = arg('base', DEFAULT_BASE);
const { sha, oldBundle, newBundle } = await bundleOldAndNew(join(here, 'pcscf-memory-table-child.ts'), base);
type Figures = { n: number; heapPerReg: number; rssPerReg: number };
const run = (bundle: string, extra: string[]): Figures => {
  const r = spawnSync(process.execPath, ['--expose-gc', bundle, '--n', n, ...extra], { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`child ${bundle} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
};
const olds: Figures[] = [];
const news: Figures[] = [];
for (let k = 0; k < runs; k++) {
  olds.push(run(oldBundle, []));
  news.push(run(newBundle, []));
}
const mean = (xs: Figures[], f: (x: Figures) => number) => xs.reduce((a, x) => a + f(x), 0) / xs.length;
const heapOld = mean(olds, (x) => x.heapPerReg);
const heapNew = mean(news, (x) => x.heapPerReg);
const rssOld = mean(olds, (x) => x.rssPerReg);
const rssNew = mean(news, (x) => x.rssPerReg);
process.stdout.write(
  JSON.stringify(
    {
      n: Number(n),
      base: sha.slice(0, 9),
      runs,
      note: 'in-process, no sockets; old and new alternate; shared machine: RSS noisy',
      heap_per_reg: { old: Math.round(heapOld), new: Math.round(heapNew), ratio: +(heapNew / heapOld).toFixed(3) },
      rss_per_reg: { old: Math.round(rssOld), new: Math.round(rssNew), ratio: +(rssNew / rssOld).toFixed(3) },
      each: { old: olds.map((x) => Math.round(x.heapPerReg)), new: news.map((x) => Math.round(x.heapPerReg)) },
    },
    null,
    2,
  ) + '\n',
);
