// V8's gc(), for the few places that must ask for a collection (the stats line of a benchmark, the
// compaction after a burst, `imsec load`'s memory figures): the global one under --expose-gc, else
// --expose-gc switched on at run time and the function taken from a fresh context. Looked up once.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: (() => void) | null | undefined;

/** A full garbage collection function, or undefined when this runtime cannot give one. */
export function forcedGc(): (() => void) | undefined {
  if (gcFn !== undefined) return gcFn ?? undefined;
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return (gcFn = g);
  try {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  } catch {
    gcFn = null;
  }
  return gcFn ?? undefined;
}
