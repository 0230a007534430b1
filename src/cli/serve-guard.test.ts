// The process-level boundary of the long-running commands: an unawaited rejection is contained and
// the process serves on; an exception outside every boundary ends it with EXIT_INTERNAL (70).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const guardUrl = new URL('./serve-guard.ts', import.meta.url).href;
const root = fileURLToPath(new URL('../..', import.meta.url));

function run(body: string) {
  const script = `const { guardProcess } = await import(${JSON.stringify(guardUrl)});\nguardProcess();\n${body}`;
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 20_000,
  });
}

test('an unhandled rejection is reported once, in one line, and the process keeps serving', () => {
  const r = run(`
    Promise.reject(new Error('nobody awaited me'));
    setTimeout(() => { process.stdout.write('still serving\\n'); process.exit(0); }, 100);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /still serving/);
  assert.match(r.stderr, /contained at process\.unhandled-rejection \(#1\): Error: nobody awaited me/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('an exception outside every boundary ends the process with 70 and one line', () => {
  const r = run(`
    setTimeout(() => { throw new TypeError('unguarded bug'); }, 10);
    setTimeout(() => { process.stdout.write('should not get here\\n'); }, 500);
  `);
  assert.equal(r.status, 70, r.stderr);
  assert.doesNotMatch(r.stdout, /should not get here/);
  assert.match(r.stderr, /outside every boundary: exiting.*TypeError: unguarded bug/);
});
