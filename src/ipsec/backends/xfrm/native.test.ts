import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mallocTrimFunction, nativeAvailable } from './native.ts';

// glibc's version when this Node runs on glibc (the addon then has malloc_trim).
const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;

test('the native addon trims the C heap (glibc malloc_trim) and says whether it released anything', (t) => {
  if (!nativeAvailable()) return t.skip('native addon not built (node scripts/build-native.mjs)');
  const trim = mallocTrimFunction();
  if (!glibc) {
    assert.equal(trim, undefined, 'no glibc: no malloc_trim');
    return;
  }
  assert.ok(trim, `glibc ${glibc}: the addon has mallocTrim (rebuild it: node scripts/build-native.mjs)`);
  assert.equal(typeof trim(), 'boolean');
  assert.equal(typeof trim(), 'boolean', 'callable again');
});
