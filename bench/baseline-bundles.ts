// Old code against new in one run, for the in-process memory benches (bench:sa-memory,
// bench:load-memory): a measuring child is bundled twice by esbuild, once against an older commit's
// src/ (extracted with `git archive` under .bench-base/) and once against this tree's, so that both
// run compiled with plain node (tsx would wrap every closure and skew bytes per object).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The two bundles of `entry` (a bench/*-child.ts file): `oldBundle` against `base`'s src/, `newBundle` against this tree's. */
export async function bundleOldAndNew(entry: string, base: string): Promise<{ sha: string; oldBundle: string; newBundle: string }> {
  const { sha, root: baseRoot } = extractBase(base);
  const name = entry.replace(/^.*\//, '').replace(/-child\.ts$/, '');
  const oldBundle = join(repo, '.bench-base', `${name}-${sha.slice(0, 12)}.mjs`);
  const newBundle = join(repo, '.bench-base', `${name}-head.mjs`);
  await bundleAgainst(entry, baseRoot, oldBundle);
  await bundleAgainst(entry, repo, newBundle);
  return { sha, oldBundle, newBundle };
}

/** `base`'s src/ extracted under .bench-base/<sha> (once): `root` is the folder holding it. */
export function extractBase(base: string): { sha: string; root: string } {
  const sha = execFileSync('git', ['rev-parse', base], { cwd: repo, encoding: 'utf8' }).trim();
  // Under the repository (not /tmp) so the old code resolves node_modules the same way.
  const root = join(repo, '.bench-base', sha.slice(0, 12));
  if (!existsSync(join(root, 'src'))) {
    mkdirSync(root, { recursive: true });
    const tar = execFileSync('git', ['archive', sha, 'src'], { cwd: repo, maxBuffer: 1 << 28 });
    execFileSync('tar', ['-x', '-C', root], { input: tar });
  }
  return { sha, root };
}

/** Bundles `entry` with every import that resolves into this repository's src/ taken from `root`'s instead. */
async function bundleAgainst(entry: string, root: string, outFile: string): Promise<void> {
  const src = join(repo, 'src') + '/';
  const swap: Plugin = {
    name: 'swap-src',
    setup(b) {
      b.onResolve({ filter: /^\./ }, (a) => {
        const p = resolve(a.resolveDir, a.path);
        return root !== repo && p.startsWith(src) ? { path: join(root, 'src', p.slice(src.length)) } : undefined;
      });
    },
  };
  await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outfile: outFile,
    plugins: [swap],
    logLevel: 'error',
  });
}
