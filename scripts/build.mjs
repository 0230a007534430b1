#!/usr/bin/env node
// `npm run build`: compiles src/ to JavaScript + .d.ts in dist/ (tsconfig.build.json), checks what
// came out (scripts/check-dist.mjs), then writes dist/.build-stamp. Skips the work when dist/ is
// already fresh (scripts/dist-fresh.mjs) unless given --force (prepack forces a clean build).
import { rmSync, writeFileSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { STAMP, distIsFresh } from './dist-fresh.mjs';
import { checkDist } from './check-dist.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
if (!force && distIsFresh(root)) {
  console.log('build: dist/ is up to date');
  process.exit(0);
}
const started = new Date();
// A clean dist/: no file of a deleted or renamed source survives.
rmSync(join(root, 'dist'), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build: tsc failed; dist/ is incomplete and will not be used');
  process.exit(r.status ?? 1);
}
const problems = checkDist(root);
if (problems.length > 0) {
  console.error(`build: dist/ is not fit to ship:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
writeFileSync(join(root, STAMP), `${started.toISOString()}\n`);
utimesSync(join(root, STAMP), started, started);
console.log('build: dist/ built');
