// What scripts/build.mjs checks before it stamps dist/ as shippable:
// - no test file or fixture got in (a production module importing a test helper would pull it in);
// - every relative import of the emitted JavaScript names a file that exists in dist/ (so the
//   `.ts` → `.js` rewrite happened and nothing is missing);
// - every bare import is a Node built-in other than node:test, or a package of `dependencies` /
//   `optionalDependencies`: the installed package has no devDependencies (tsx, fast-check, …).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

// `from` only in an import/export statement at the start of a line: inlined third-party code
// (dist/cli/imsec.js) has messages like "remove … from '.command()'".
const SPECIFIER =
  /(?:^(?:import|export)\b[^;'"]*?\bfrom\s*|\bimport\s*\(\s*|^import\s+|\brequire\s*\(\s*|\bcreateRequire\([^)]*\)\s*\(\s*)(['"])([^'"\n]+)\1/gm;

function files(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

/** The problems found in `dist` (default `root`/dist), one line each; empty when it can ship. */
export function checkDist(root, dist = join(root, 'dist')) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]);
  const builtins = new Set(builtinModules);
  const problems = [];
  for (const f of files(dist)) {
    const rel = join('dist', relative(dist, f));
    // Test-only helpers in src/ are *.test.*, testdata/, and _fake-*, _test-*, _world (ARCHITECTURE.md "Tests").
    if (/\.test\.|(^|\/)testdata\/|(^|\/)_(fake-|test-|world\.)/.test(rel)) problems.push(`${rel}: a test file or fixture`);
    if (!f.endsWith('.js')) continue;
    // Without comments: doc examples quote `import … from 'imsec/…'`.
    const text = readFileSync(f, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = m[2];
      if (spec.startsWith('.')) {
        if (!existsSync(resolve(dirname(f), spec))) problems.push(`${rel}: imports ${spec}, which is not in dist/`);
      } else if (spec.startsWith('node:') || builtins.has(spec.split('/')[0])) {
        if (spec === 'node:test') problems.push(`${rel}: imports node:test`);
      } else {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!allowed.has(name)) problems.push(`${rel}: imports ${spec}, not a dependency of the package`);
      }
    }
  }
  return problems;
}
