// Preloaded by `run-tests.mjs --record` into every test-file process (node's runner passes its
// --import flags on): appends the file's wall time and CPU time (its own and its waited-for
// descendants', e.g. the CLI processes and QEMU it ran: /proc/self/stat) to $IMSEC_TEST_TIMES.
import { appendFileSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

const file = process.argv[1];
const out = process.env.IMSEC_TEST_TIMES;
// NODE_TEST_CONTEXT: set in the runner's child processes only (not in the runner itself).
if (out && process.env.NODE_TEST_CONTEXT && file?.endsWith('.test.ts')) {
  process.on('exit', (code) => {
    let cpu = 0;
    try {
      // Fields after "(comm) ": utime, stime, cutime, cstime are the 12th to 15th, in clock ticks (100 Hz).
      const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
      cpu = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
    } catch {
      /* not Linux: wall time only */
    }
    const row = { file: relative(process.cwd(), file), ms: Math.round(performance.now()), cpu, code: code ?? process.exitCode ?? 0 };
    appendFileSync(out, `${JSON.stringify(row)}\n`);
  });
}
