// CLI start-up benchmark: wall time of whole `imsec` processes against `node -e 0` measured in the
// same run, runs interleaved so a drift of the machine's speed hits every command alike. The
// target (issue 14): `imsec aka vector` (TS 35.208 Test Set 1) within 150 ms wall on the
// development machine; the ratio to bare Node is the figure that travels between machines.
// `npm run bench:startup [-- --runs N] [--json]`. Builds dist/ first when it is stale; the
// "from sources" row is the same command through tsx (what every start cost before dist/).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const runsAt = args.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(args[runsAt + 1]) : 15;
const log = (s) => void (json ? process.stderr : process.stdout).write(`${s}\n`);

const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) process.exit(build.status ?? 1);

const BIN = join(root, 'bin', 'imsec.mjs');
const TS1 = [
  '--k',
  '465b5ce8b199b49faa5f0a2ee238a6bc',
  '--op',
  'cdc202d5123e20f62b6d676ac72cb318',
  '--sqn',
  'ff9bb4d0b607',
  '--amf',
  'b9b9',
  '--rand',
  '23553cbe9637a89d218ae64dae47bf35',
];
const CASES = [
  { name: 'node -e 0 (baseline)', argv: ['-e', '0'], runs: RUNS },
  { name: 'imsec aka vector', argv: [BIN, 'aka', 'vector', ...TS1], runs: RUNS, expect: 'a54211d5e3ba50bf' },
  { name: 'imsec --version', argv: [BIN, '--version'], runs: RUNS },
  { name: 'imsec --help', argv: [BIN, '--help'], runs: RUNS },
  { name: 'imsec pcscf --help', argv: [BIN, 'pcscf', '--help'], runs: RUNS },
  {
    name: 'imsec aka vector, from sources (tsx)',
    argv: [BIN, 'aka', 'vector', ...TS1],
    runs: Math.min(RUNS, 5),
    env: { IMSEC_FROM_SOURCE: '1' },
    expect: 'a54211d5e3ba50bf',
  },
];

function once(c) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, c.argv, { cwd: root, encoding: 'utf8', env: { ...process.env, ...c.env } });
  const ms = performance.now() - t0;
  if (r.status !== 0 || (c.expect && !r.stdout.includes(c.expect))) {
    console.error(`startup bench: ${c.name} failed (exit ${r.status}): ${r.stderr}`);
    process.exit(1);
  }
  return ms;
}

const times = CASES.map(() => []);
for (const c of CASES) once(c); // warm-up: file cache, tsx's cache
for (let i = 0; i < RUNS; i++) CASES.forEach((c, j) => void (i < c.runs && times[j].push(once(c))));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const base = median(times[0]);
const rows = CASES.map((c, j) => ({
  name: c.name,
  runs: times[j].length,
  median_ms: Math.round(median(times[j]) * 10) / 10,
  min_ms: Math.round(Math.min(...times[j]) * 10) / 10,
  ratio_to_node: Math.round((median(times[j]) / base) * 100) / 100,
}));
if (json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
log(`${'command'.padEnd(40)} ${'runs'.padStart(4)} ${'median ms'.padStart(10)} ${'min ms'.padStart(8)} ${'× node'.padStart(7)}`);
for (const r of rows)
  log(
    `${r.name.padEnd(40)} ${String(r.runs).padStart(4)} ${r.median_ms.toFixed(1).padStart(10)} ${r.min_ms.toFixed(1).padStart(8)} ${r.ratio_to_node.toFixed(2).padStart(7)}`,
  );
log('(wall time of whole processes; the machine is shared, so compare ratios, not single figures)');
