// Issue 14: "the public entry points have doc comments that an editor shows". Every export of every
// `exports` entry of package.json (what `import … from 'imsec/…'` offers) carries a /** */ comment,
// read the way an editor reads it: through the TypeScript checker, following re-exports to the
// declaration. A new undocumented export fails here with its name and file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

type ExportTarget = string | { types?: string; default?: string; import?: string };

/** package.json `exports` → the source file each entry is built from (dist/x.js → src/x.ts). */
function entrySources(): [entry: string, source: string][] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, ExportTarget> };
  return Object.entries(pkg.exports)
    .filter(([entry]) => entry !== './package.json')
    .map(([entry, t]) => {
      const js = (typeof t === 'string' ? t : (t.default ?? t.import)) ?? '';
      assert.ok(js?.startsWith('./dist/') && js.endsWith('.js'), `${entry}: a dist/ .js target`);
      return [entry, join(ROOT, js.replace('./dist/', 'src/').replace(/\.js$/, '.ts'))];
    });
}

test('every export of the package entry points has a doc comment', () => {
  const entries = entrySources();
  assert.ok(entries.length >= 8, 'the entry points were found');
  const program = ts.createProgram(
    entries.map(([, f]) => f),
    {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true,
      noEmit: true,
      strict: true,
      skipLibCheck: true,
    },
  );
  const checker = program.getTypeChecker();
  const missing: string[] = [];
  let exported = 0;
  for (const [entry, file] of entries) {
    const sf = program.getSourceFile(file);
    assert.ok(sf, `${entry}: ${file} exists`);
    const moduleSymbol = checker.getSymbolAtLocation(sf);
    assert.ok(moduleSymbol, `${entry}: a module`);
    for (const s of checker.getExportsOfModule(moduleSymbol)) {
      exported++;
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      if (ts.displayPartsToString(target.getDocumentationComment(checker)).trim() !== '') continue;
      const decl = target.declarations?.[0];
      const where = decl ? relative(ROOT, decl.getSourceFile().fileName) : '?';
      missing.push(`imsec${entry.slice(1)}: ${s.name} (${where})`);
    }
  }
  assert.ok(exported > 300, `the exports were read (${exported})`);
  assert.deepEqual(missing, [], `exports without a /** */ comment:\n  ${missing.join('\n  ')}`);
});
