#!/usr/bin/env node
// Builds the tiny N-API addon of the xfrm backend (native/imsec_native.c) into
// native/build/Release/imsec_native.node with the node-gyp that npm bundles, against the local
// Node headers (no download). Linux only. Without a compiler, python3 or node-gyp it prints one
// line and exits 0: the xfrm backend then says plainly that the addon is missing.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const out = join(nativeDir, 'build', 'Release', 'imsec_native.node');
const skip = (why) => {
  console.log(`build-native: skipped (${why}); the xfrm IPsec backend will be unavailable`);
  process.exit(0);
};

if (process.platform !== 'linux') skip(`platform ${process.platform}: XFRM is Linux only`);
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
if (!has('cc') && !has('gcc')) skip('no C compiler (cc/gcc)');
if (!has('make')) skip('no make');
if (!has('python3')) skip('no python3 (node-gyp needs it)');

function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return bundled;
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
}
const gyp = findNodeGyp();
if (!gyp) skip('node-gyp not found (it comes with npm)');

// Local headers: <prefix>/include/node/node_api.h beside this node binary. Without them node-gyp
// would try to download them; refuse instead (builds must work offline).
const prefix = join(dirname(process.execPath), '..');
if (!existsSync(join(prefix, 'include', 'node', 'node_api.h'))) skip(`no Node headers under ${prefix}/include/node`);

const args = [gyp, 'rebuild', `--nodedir=${prefix}`, '--directory', nativeDir, '--loglevel=error'];
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status !== 0 || !existsSync(out)) {
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  console.log(`build-native: build failed (exit ${r.status}); the xfrm IPsec backend will be unavailable\n${tail}`);
  process.exit(0);
}
console.log(`build-native: built ${out.slice(root.length + 1)}`);
