#!/usr/bin/env node
// `npm run build`: compiles src/ to JavaScript + .d.ts (tsconfig.build.json), checks what came out
// (scripts/check-dist.mjs), stamps it, then puts it in place as dist/. Skips the work when dist/ is
// already fresh (scripts/dist-fresh.mjs) unless given --force (prepack forces a clean build).
// The build goes to a temporary folder first, so a bin/imsec.mjs or a test running meanwhile sees
// the old dist/ or the new one, never a half-written one.
import { renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { STAMP, distIsFresh } from './dist-fresh.mjs';
import { checkDist } from './check-dist.mjs';
import { bundleCli } from './bundle-cli.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
if (!force && distIsFresh(root)) {
  console.log('build: dist/ is up to date');
  process.exit(0);
}
const started = new Date();
const out = join(root, `.dist-build-${process.pid}`);
const old = join(root, `.dist-old-${process.pid}`);
const fail = (msg, code = 1) => {
  rmSync(out, { recursive: true, force: true });
  console.error(`build: ${msg}`);
  process.exit(code);
};
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
if (r.status !== 0) fail('tsc failed; dist/ is left as it was', r.status ?? 1);
try {
  await bundleCli(out);
} catch (err) {
  fail(`the CLI start-up bundle failed: ${err.message}`);
}
const problems = checkDist(root, out);
if (problems.length > 0) fail(`the build is not fit to ship; dist/ is left as it was:\n  ${problems.join('\n  ')}`);
// The stamp carries the start time: a source edited during the build makes the result stale.
writeFileSync(join(out, STAMP.slice('dist/'.length)), `${started.toISOString()}\n`);
utimesSync(join(out, STAMP.slice('dist/'.length)), started, started);
try {
  renameSync(join(root, 'dist'), old);
} catch {
  /* no dist/ yet */
}
renameSync(out, join(root, 'dist'));
rmSync(old, { recursive: true, force: true });
console.log('build: dist/ built');
