// A process that builds a lab and then ends badly, for the lifecycle tests of the automatic
// teardown: argv[2] = prefix, argv[3] = 'wait' (until a signal) | 'throw' | 'reject' | 'exit'.
// Prints `built NS,NS,… PID` (PID = a child it left running in ue0) before it misbehaves.
// With argv[2] = 'availability' it prints labAvailability() as JSON instead (the non-root test).
import { buildNatLab, labAvailability } from '../index.ts';

const [prefix, mode] = process.argv.slice(2) as [string, string];
if (prefix === 'availability') {
  const a = labAvailability();
  let error = '';
  try {
    await buildNatLab();
  } catch (e) {
    error = `${(e as Error).name}: ${(e as Error).message}`;
  }
  process.stdout.write(`${JSON.stringify({ ...a, error })}\n`);
} else {
  const lab = await buildNatLab({ prefix, ues: 1 });
  const sleeper = lab.spawn(lab.ue[0]!.ns, ['sleep', '600']);
  process.stdout.write(`built ${lab.namespaces.join(',')} ${sleeper.pid}\n`);
  if (mode === 'throw') setTimeout(() => {
    throw new Error('boom (expected by the test)');
  }, 50);
  else if (mode === 'reject') setTimeout(() => void Promise.reject(new Error('unhandled (expected by the test)')), 50);
  else if (mode === 'exit') setTimeout(() => process.exit(3), 50);
  else setInterval(() => {}, 1_000); // 'wait': until the test signals us
}
