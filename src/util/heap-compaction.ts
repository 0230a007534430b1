// The edge of burst-compaction.ts: samples a count of new registrations on a Clock and, when the
// detector says a burst has ended, runs one compacting full GC. V8 compacts only the pages it
// judges worth it; '--compact-on-every-full-gc' switched on around a single gc() makes that one
// collection move every live object together, so the old-space pages a burst's dead transactions
// left behind go back to the OS. The flag is switched off again at once (left on, every later full
// GC would pay for a compaction). gc is reached through forced-gc.ts. Then, where the caller gives
// one (the native addon's glibc malloc_trim), the C heap is trimmed: the burst's datagrams, V8's
// GC helper threads and libuv leave freed chunks in malloc arenas that free() does not give back
// (at 20k UEs ~1.2 KB per UE of RSS, more than all of V8's committed heap beyond the live one).
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { forcedGc } from './forced-gc.ts';
import {
  BurstDetector,
  DEFAULT_BURST_COMPACTION,
  DEFAULT_FRAGMENTATION,
  FragmentationTrigger,
  type BurstCompactionPolicy,
  type FragmentationPolicy,
} from './burst-compaction.ts';
import type { Clock } from './clock.ts';

/** What one compaction did: old space committed and RSS before and after, and what it cost. */
export interface CompactionReport {
  readonly oldSpaceBefore: number;
  readonly oldSpaceAfter: number;
  readonly oldSpaceUsed: number;
  readonly rssBefore: number;
  /**
   * RSS after: right after the GC it may even be higher (the evacuated pages are unmapped by a V8
   * background task, and compaction first takes pages to move objects into); `startBurstCompaction`
   * reads it again `rssSettleMs` later.
   */
  readonly rssAfter: number;
  /** CPU of this thread and the GC helpers during the call (process.cpuUsage), ms. */
  readonly cpuMs: number;
  /** Wall time the event loop stood still, ms (the GC and the trim). */
  readonly pauseMs: number;
  /** The malloc trim after the GC: undefined when none was given (no native addon). */
  readonly trim?: TrimReport;
}

/** What the malloc trim after the GC did: RSS around it, and whether the C library released anything (or the error it threw). */
export type TrimReport = { readonly released: boolean; readonly rssBefore: number; readonly rssAfter: number } | { readonly error: string };

/** The trim, best-effort: a failure is reported, never thrown (the compaction has done its work by then). */
function trimNow(trim: () => boolean): TrimReport {
  const rssBefore = process.memoryUsage.rss();
  try {
    const released = trim();
    return { released, rssBefore, rssAfter: process.memoryUsage.rss() };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function oldSpace(): { size: number; used: number } {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'old_space') return { size: s.space_size, used: s.space_used_size };
  return { size: 0, used: 0 };
}

/** One compacting full GC now, then `trim` if given; undefined when this process cannot reach gc. */
export function compactHeapNow(trim?: () => boolean): CompactionReport | undefined {
  const gc = forcedGc();
  if (!gc) return undefined;
  const before = oldSpace();
  const rssBefore = process.memoryUsage.rss();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
  const trimmed = trim && trimNow(trim);
  const pauseMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const after = oldSpace();
  return {
    oldSpaceBefore: before.size,
    oldSpaceAfter: after.size,
    oldSpaceUsed: after.used,
    rssBefore,
    rssAfter: process.memoryUsage.rss(),
    cpuMs: (cpu.user + cpu.system) / 1000,
    pauseMs,
    ...(trimmed && { trim: trimmed }),
  };
}

/** How `startBurstCompaction` samples and what it calls. */
export interface BurstCompactionOptions {
  readonly clock: Clock;
  /** A monotonic count of new registrations (e.g. 'registered' events so far). */
  readonly count: () => number;
  readonly policy?: BurstCompactionPolicy;
  /** Sampling interval, ms (default 1000). */
  readonly sampleMs?: number;
  /** Called `rssSettleMs` after each compaction, with the RSS read then and what set it off (a log line). */
  readonly onCompacted?: (r: CompactionReport, newRegistrations: number, reason: CompactionReason) => void;
  /** The second trigger, old space committed far beyond the live size in a process never quiet (default DEFAULT_FRAGMENTATION; false: off). */
  readonly fragmentation?: FragmentationPolicy | false;
  /** Old space committed and used now (tests give a fake). */
  readonly oldSpace?: () => { size: number; used: number };
  /** How long after the GC the RSS is read for `onCompacted` (default 5000 ms). */
  readonly rssSettleMs?: number;
  /** The process's CPU so far, ms, for the policy's quietCpuShare (default process.cpuUsage(); tests give a fake). */
  readonly cpuMs?: () => number;
  /** The RSS now (tests give a fake). */
  readonly rss?: () => number;
  /** Called once if gc cannot be reached (the feature then stops). */
  readonly onUnavailable?: () => void;
  /** The malloc trim run right after the compaction's GC (the native addon's; absent: none). */
  readonly mallocTrim?: () => boolean;
  /** The compaction itself (tests give a fake; default compactHeapNow with `mallocTrim`). */
  readonly compact?: () => CompactionReport | undefined;
}

/** Why a compaction ran: a burst of new registrations had ended, or old space stayed fragmented under steady traffic. */
export type CompactionReason = 'burst' | 'fragmentation';

/** Samples the count (and old space) every `sampleMs` on the clock (unref'd timer) and compacts after each burst or when fragmented; returns the stopper. */
export function startBurstCompaction(o: BurstCompactionOptions): () => void {
  const detector = new BurstDetector(o.policy ?? DEFAULT_BURST_COMPACTION);
  const fragmentation = o.fragmentation === false ? undefined : new FragmentationTrigger(o.fragmentation ?? DEFAULT_FRAGMENTATION);
  const space = o.oldSpace ?? oldSpace;
  const every = o.sampleMs ?? 1000;
  const compact = o.compact ?? (() => compactHeapNow(o.mallocTrim));
  const rss = o.rss ?? (() => process.memoryUsage.rss());
  const cpuMs =
    o.cpuMs ??
    ((): number => {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1000;
    });
  let cancel: (() => void) | undefined;
  let cancelReport: (() => void) | undefined;
  const tick = (): void => {
    cancel = undefined;
    const count = o.count();
    const burst = detector.newSince(count);
    const now = o.clock.now();
    let reason: CompactionReason | undefined = detector.observe(now, count, cpuMs()) ? 'burst' : undefined;
    if (fragmentation) {
      // Sampled every tick, so that its window is full of recent samples whichever trigger fires.
      const heap = space();
      if (fragmentation.observe(now, heap.size, heap.used)) reason ??= 'fragmentation';
    }
    if (reason !== undefined) {
      const r = compact();
      if (!r) return o.onUnavailable?.();
      const why = reason;
      cancelReport?.();
      cancelReport = o.clock.setTimer(
        o.rssSettleMs ?? 5000,
        () => {
          cancelReport = undefined;
          o.onCompacted?.({ ...r, rssAfter: rss() }, burst, why);
        },
        { unref: true },
      );
    }
    cancel = o.clock.setTimer(every, tick, { unref: true });
  };
  cancel = o.clock.setTimer(every, tick, { unref: true });
  return () => {
    cancel?.();
    cancelReport?.();
    cancel = cancelReport = undefined;
  };
}
