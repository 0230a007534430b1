#!/usr/bin/env node
// Runs every *.test.ts under src/, test/ and fuzz/ with node's own test runner (through tsx).
// Node 20's --test does not glob .ts files itself, so we list them here.
// Usage: node scripts/run-tests.mjs [--record] [substring-filter ...]
//
// Order: longest file first (longest-processing-time-first onto the runner's 2 slots). run-files.mjs
// starts files in the order given (node:test's run(); `node --test` would sort them by path), so a long VM file that starts last keeps one slot busy alone
// at the end; started first, it overlaps the many short files. The durations come from
// scripts/test-durations.json (wall seconds of each file in a full run, written by --record);
// a file not in it is placed by a heuristic (a VM file under test/kernel/ as long, else short).
// --record: each test process appends its wall and CPU time (scripts/test-times.mjs, preloaded),
// and the files that ran and passed update scripts/test-durations.json.
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const DURATIONS = new URL('./test-durations.json', import.meta.url);
const TIMES_PRELOAD = new URL('./test-times.mjs', import.meta.url).pathname;

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function readDurations() {
  try {
    return JSON.parse(readFileSync(DURATIONS, 'utf8')).seconds ?? {};
  } catch {
    return {};
  }
}

/** Expected seconds of a file: recorded, else a guess (a VM boot under TCG takes minutes). */
function expected(file, table) {
  if (typeof table[file] === 'number') return table[file];
  return file.startsWith('test/kernel/') ? 120 : 3;
}

const args = process.argv.slice(2);
const record = args.includes('--record');
const filters = args.filter((a) => a !== '--record');
const table = readDurations();
const files = [...walk('src', []), ...walk('test', []), ...walk('fuzz', [])]
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
  .sort((a, b) => expected(b, table) - expected(a, table)); // stable: ties stay alphabetical
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const env = { ...process.env };
let timesDir;
const preload = [];
if (record) {
  timesDir = mkdtempSync(join(tmpdir(), 'imsec-test-times-'));
  env.IMSEC_TEST_TIMES = join(timesDir, 'times.jsonl');
  appendFileSync(env.IMSEC_TEST_TIMES, '');
  preload.push('--import', TIMES_PRELOAD);
}
const t0 = Date.now();
const RUN_FILES = new URL('./run-files.mjs', import.meta.url).pathname;
const r = spawnSync(process.execPath, ['--import', 'tsx', ...preload, RUN_FILES, ...files], {
  stdio: 'inherit',
  env,
});
if (record) {
  const rows = readFileSync(env.IMSEC_TEST_TIMES, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  rmSync(timesDir, { recursive: true, force: true });
  const seconds = { ...table };
  for (const row of rows) if (row.code === 0) seconds[row.file] = Math.round(row.ms / 100) / 10;
  const sorted = Object.fromEntries(Object.entries(seconds).sort(([a], [b]) => (a < b ? -1 : 1)));
  const note = 'Wall seconds per test file in a full run (node scripts/run-tests.mjs --record); run-tests.mjs starts the longest first.';
  writeFileSync(DURATIONS, `${JSON.stringify({ note, seconds: sorted }, null, 2)}\n`);
  rows.sort((a, b) => b.ms - a.ms);
  console.error(`run-tests: ${((Date.now() - t0) / 1000).toFixed(1)} s in all; the longest files (wall s, CPU s incl. children):`);
  for (const row of rows.slice(0, 12))
    console.error(`  ${(row.ms / 1000).toFixed(1).padStart(6)} ${(row.cpu / 1000).toFixed(1).padStart(6)}  ${row.file}`);
}
process.exit(r.status ?? 1);
