// The test runner proper, started by run-tests.mjs (with --import tsx, which node's runner passes on
// to each test process): node:test's run() on the files in the order given, two at a time, with the
// reporter `node --test` would pick (spec on a terminal, TAP otherwise). Not `node --test FILES`:
// Node 20 sorts that list by path, which would undo run-tests.mjs's longest-first order.
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';

const files = process.argv.slice(2);
const stream = run({ files, concurrency: 2 });
stream.on('test:fail', () => (process.exitCode = 1));
stream.compose(process.stdout.isTTY ? new spec() : tap).pipe(process.stdout);
