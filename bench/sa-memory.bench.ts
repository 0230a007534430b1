// Memory of an installed, idle SA set (issue 9 §2): N registrations' SA sets (4 SAs each) installed
// on one userspace backend the way the P-CSCF (src/pcscf/register.ts + registrations.ts) and the UE
// (src/ue/sa-table.ts, many UEs on one backend in `imsec load`) do it — SaSlots per registration,
// createSaSet, installTemporary, one protected REGISTER in and one 200 OK out, promote — then a
// forced GC and heap / RSS / off-heap bytes per set. The same is measured for a baseline commit's
// src/ (extracted with `git archive` under .bench-base/) in the same run, each (code, role) in a
// process of its own, and printed as a ratio. Both sides are bundled by esbuild the same way
// (bench/sa-memory-child.ts) and run compiled, as dist/ runs.
//
//   npm run bench:sa-memory [-- --n 20000] [--base <commit>] [--json] [--snapshot] [--cpu]
//                           [--roles pcscf,ue] [--burst-kb 12 [--window 32000]] [--flag-sets 'none|--single-threaded-gc']
//                           [--final-gc last-resort|compact] [--new-only]
//
// --snapshot also writes a heap snapshot per process and prints the largest constructors
// (self bytes per set), to see where the bytes go. --cpu also measures CPU µs per protected round trip
// (a REGISTER in, a 200 OK out) over one set, and round-robin over 4,000 sets (past the transform and
// CBC context caches): the per-packet cost must not grow with the memory savings.
//
// --burst-kb K makes the sets as a registration burst does (issue 9 §2, RSS against live heap): each
// registration also leaves ~K KB of transaction-shaped objects alive for the next --window
// registrations (a transaction's 32 s at the burst's rate), promoted among the sets' objects; then
// they all die and RSS is read after forced GCs — the old-space fragmentation a burst leaves. It
// also prints the burst's CPU, wall time and GC pauses. --flag-sets runs everything once per set of
// V8/Node flags ('|' between sets, 'none' for none), e.g. to see what --compact-on-every-full-gc or
// --single-threaded-gc do to RSS and CPU. --final-gc last-resort runs V8's memory-reducing
// collection once before the figures, --final-gc compact one collection with compaction switched on
// for it alone (v8.setFlagsFromString around it); the JSON has its CPU ms.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOldAndNew } from './baseline-bundles.ts';
import type { Figures } from './sa-memory-child.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const flag = (name: string): boolean => argv.includes(`--${name}`);
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');

/**
 * The baseline by default: main at the start of the second session on issue 9 (the first session's
 * base, 184dc93, had none of its SA-memory work, but also no util/timer-heap.ts, which the child imports).
 */
const DEFAULT_BASE = '373d33e';

await parent();

async function parent(): Promise<void> {
  const n = Number(arg('n', '20000'));
  const base = arg('base', DEFAULT_BASE);
  const roles = arg('roles', 'pcscf,ue').split(',') as ('pcscf' | 'ue')[];
  const flagSets = arg('flag-sets', 'none')
    .split('|')
    .map((f) => f.trim());
  const childArgs = ['--burst-kb', arg('burst-kb', '0'), '--window', arg('window', '32000'), '--final-gc', arg('final-gc', 'regular')];
  const json = flag('json');
  const { sha, oldBundle, newBundle } = await bundleOldAndNew(join(here, 'sa-memory-child.ts'), base);
  const run = (bundleFile: string, role: string, flags: string): Figures => {
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', ...(flags === 'none' ? [] : flags.split(/\s+/)), bundleFile, '--role', role, '--n', String(n), ...childArgs]
        .concat(flag('snapshot') ? ['--snapshot'] : [])
        .concat(flag('cpu') ? ['--cpu'] : []),
      { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    if (r.status !== 0) throw new Error(`child ${bundleFile} ${role} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
  };
  const out: Record<string, unknown>[] = [];
  for (const flags of flagSets)
    for (const role of roles) {
      const now = run(newBundle, role, flags);
      // --new-only: the new code alone (e.g. to compare flag sets); the "old" columns repeat the new.
      const old = flag('new-only') ? now : run(oldBundle, role, flags);
      const row = {
        role,
        flags,
        n,
        base: sha.slice(0, 9),
        heap_old: Math.round(old.heapPerSet),
        heap_new: Math.round(now.heapPerSet),
        heap_ratio: round2(now.heapPerSet / old.heapPerSet),
        rss_old: Math.round(old.rssPerSet),
        rss_new: Math.round(now.rssPerSet),
        rss_ratio: round2(now.rssPerSet / old.rssPerSet),
        offheap_old: Math.round(old.externalPerSet),
        offheap_new: Math.round(now.externalPerSet),
        final_gc_ms_old: Math.round(old.finalGcMs),
        final_gc_ms_new: Math.round(now.finalGcMs),
        setup_us_old: round2(old.setupUs),
        setup_us_new: round2(now.setupUs),
        old_committed_old: Math.round(old.oldCommittedPerSet),
        old_committed_new: Math.round(now.oldCommittedPerSet),
        ...(old.burst &&
          now.burst && {
            burst_cpu_ms_old: Math.round(old.burst.cpuMs),
            burst_cpu_ms_new: Math.round(now.burst.cpuMs),
            burst_wall_ms_old: Math.round(old.burst.wallMs),
            burst_wall_ms_new: Math.round(now.burst.wallMs),
            gc_pause_ms_old: Math.round(old.burst.gcPauseMs),
            gc_pause_ms_new: Math.round(now.burst.gcPauseMs),
            peak_rss_per_set_old: Math.round(old.burst.peakRssPerSet),
            peak_rss_per_set_new: Math.round(now.burst.peakRssPerSet),
            transient_per_reg: Math.round(now.burst.garbagePerReg),
          }),
        ...(old.cpu &&
          now.cpu && {
            cpu_us_hot_old: round2(old.cpu.hotUs),
            cpu_us_hot_new: round2(now.cpu.hotUs),
            cpu_us_cold_old: round2(old.cpu.coldUs),
            cpu_us_cold_new: round2(now.cpu.coldUs),
          }),
      };
      out.push(row);
      if (!json) {
        console.log(
          `${role.padEnd(5)} N=${n}${flags === 'none' ? '' : ` [${flags}]`}  heap B/set ${row.heap_old} -> ${row.heap_new} (x${row.heap_ratio})  ` +
            `RSS B/set ${row.rss_old} -> ${row.rss_new} (x${row.rss_ratio})  off-heap B/set ${row.offheap_old} -> ${row.offheap_new}  ` +
            `old space committed B/set ${row.old_committed_old} -> ${row.old_committed_new}  RSS outside V8's heap B/set ${Math.round(old.rssOutsideHeapPerSet)} -> ${Math.round(now.rssOutsideHeapPerSet)}`,
        );
        console.log(
          `      CPU µs per registration's SA work (build, install, REGISTER in, promote, 200 OK out): ${row.setup_us_old} -> ${row.setup_us_new}`,
        );
        if (old.burst && now.burst)
          console.log(
            `      burst (${Math.round(now.burst.garbagePerReg)} B transient per registration): CPU ms ${Math.round(old.burst.cpuMs)} -> ${Math.round(now.burst.cpuMs)}, ` +
              `wall ms ${Math.round(old.burst.wallMs)} -> ${Math.round(now.burst.wallMs)}, GC pauses ms ${Math.round(old.burst.gcPauseMs)} -> ${Math.round(now.burst.gcPauseMs)}, ` +
              `peak RSS B/set ${Math.round(old.burst.peakRssPerSet)} -> ${Math.round(now.burst.peakRssPerSet)}`,
          );
        if (old.cpu && now.cpu)
          console.log(
            `      CPU µs per round trip: one set ${old.cpu.hotUs.toFixed(2)} -> ${now.cpu.hotUs.toFixed(2)} (x${round2(now.cpu.hotUs / old.cpu.hotUs)}), ` +
              `4,000 sets round-robin ${old.cpu.coldUs.toFixed(2)} -> ${now.cpu.coldUs.toFixed(2)} (x${round2(now.cpu.coldUs / old.cpu.coldUs)})`,
          );
        for (const [label, f] of [
          ['old', old],
          ['new', now],
        ] as const) {
          if (!f.top) continue;
          console.log(`  ${label}: largest by self size (bytes per set, objects per set)`);
          for (const t of f.top)
            console.log(`    ${t.bytesPerSet.toFixed(0).padStart(6)}  ${(t.count / n).toFixed(2).padStart(6)}  ${t.what}`);
        }
      }
    }
  if (json) console.log(JSON.stringify(out));
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
