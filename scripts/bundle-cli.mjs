// The CLI's start-up bundle (issue 14: `imsec aka vector` within 150 ms): dist/cli/imsec.js is
// dist/cli/main.js and dist/cli/commands.js with commander inlined, nothing else. Loading commander
// through Node's CommonJS loader (its files, the loader itself, the ESM/CJS bridge) was the largest
// single start-up cost. Every other module stays external, loaded from the per-module build as
// before, so there is one copy of each (the error classes that exit codes test with `instanceof`
// included) and the command groups stay lazy.
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const ENTRY_CHAIN = new Set(['main.js', 'commands.js']);

/** Writes `dist`/cli/imsec.js from `dist`/cli/main.js. */
export async function bundleCli(dist) {
  const { build } = await import(createRequire(import.meta.url).resolve('esbuild'));
  const cliDir = resolve(dist, 'cli');
  await build({
    entryPoints: [join(cliDir, 'main.js')],
    outfile: join(cliDir, 'imsec.js'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    legalComments: 'inline',
    // commander is CommonJS and require()s Node built-ins; an ES module has no `require` of its own.
    banner: {
      js: "import { createRequire as imsecCreateRequire } from 'node:module';\nconst require = imsecCreateRequire(import.meta.url);",
    },
    plugins: [
      {
        name: 'only-the-entry-chain',
        setup(b) {
          b.onResolve({ filter: /^\.\.?\// }, (a) => {
            if (a.kind === 'entry-point' || a.resolveDir.includes('node_modules')) return undefined;
            if (a.resolveDir === cliDir && a.kind === 'import-statement' && ENTRY_CHAIN.has(a.path.slice(2))) return undefined;
            return { path: a.path, external: true };
          });
        },
      },
    ],
  });
}
