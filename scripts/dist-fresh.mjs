// Whether dist/ (the build of src/, scripts/build.mjs) is up to date with the sources of this
// checkout. Shared by bin/imsec.mjs (run dist when fresh, else the sources through tsx) and
// scripts/build.mjs (skip a build that would change nothing). Fresh means: the stamp written at
// the end of a successful build exists and is not older than any non-test source, tsconfig or
// package.json. The stamp carries the build's *start* time, so an edit made during a build makes
// the result stale.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const STAMP = join('dist', '.build-stamp');
const INPUTS = ['package.json', 'tsconfig.json', 'tsconfig.build.json'];

function newest(dir, acc) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) acc = newest(p, acc);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) acc = Math.max(acc, statSync(p).mtimeMs);
  }
  return acc;
}

/** mtime of the newest build input under `root` (ms). */
export function newestInput(root) {
  let t = newest(join(root, 'src'), 0);
  for (const f of INPUTS) {
    try {
      t = Math.max(t, statSync(join(root, f)).mtimeMs);
    } catch {
      /* an optional input */
    }
  }
  return t;
}

/** True when `root`/dist was built from the sources as they are now. */
export function distIsFresh(root) {
  let stamp;
  try {
    stamp = statSync(join(root, STAMP)).mtimeMs;
  } catch {
    return false;
  }
  return newestInput(root) <= stamp;
}
