// SIGUSR2 → one `stats` JSON line on stderr: RSS and heap after a forced garbage collection, and the
// CPU used so far (read before that collection). For benchmarks (npm run bench:load measures RSS per
// registered UE and CPU per registration of each process this way); costs nothing until the signal arrives.
import { getHeapSpaceStatistics } from 'node:v8';
import { forcedGc } from '../util/forced-gc.ts';

/** Per V8 heap space, bytes committed and used: tells pages V8 keeps after a GC (fragmentation, a grown young generation) apart from live objects. */
function heapSpaces(): Record<string, { size: number; used: number }> {
  const out: Record<string, { size: number; used: number }> = {};
  for (const s of getHeapSpaceStatistics()) if (s.space_size > 0) out[s.space_name] = { size: s.space_size, used: s.space_used_size };
  return out;
}

/** Installs the handler; `extra` adds figures of the process (live SA sets, registrations, …). Returns the uninstaller. */
export function statsOnSignal(name: string, extra: () => Record<string, unknown> = () => ({})): () => void {
  const handler = (): void => {
    // CPU first: the forced GC below is the measurement's, not the process's work (at 100k UEs two
    // full GCs of a 300 MB heap cost ~0.6 s of CPU, which a benchmark would count as registrations').
    const cpu = process.cpuUsage();
    const gc = forcedGc();
    // Two passes: the first may only schedule finalisation of what it found. Timed: a full collection
    // of a large heap stops the process, and a benchmark wants to know for how long.
    const t0 = performance.now();
    gc?.();
    gc?.();
    const gcMs = performance.now() - t0;
    const m = process.memoryUsage();
    process.stderr.write(
      JSON.stringify({
        event: 'stats',
        process: name,
        pid: process.pid,
        gc: gc !== undefined,
        gc_ms: Math.round(gcMs),
        rss: m.rss,
        heap_used: m.heapUsed,
        heap_total: m.heapTotal,
        external: m.external,
        array_buffers: m.arrayBuffers,
        heap_spaces: heapSpaces(),
        cpu_user_ms: cpu.user / 1000,
        cpu_system_ms: cpu.system / 1000,
        ...extra(),
      }) + '\n',
    );
  };
  process.on('SIGUSR2', handler);
  return () => process.off('SIGUSR2', handler);
}
