// When to compact the heap once after a registration burst (issue 9 §2). A burst leaves V8's old
// space committed far beyond what stays live: the burst's transactions and messages were promoted,
// then died, and the pages they shared with long-lived registrations cannot be given back (100k
// UEs: 767 MB committed, 306 MB used after a forced GC). One compacting collection once the burst's
// garbage is dead moves the live objects together and returns the rest; it stops the process for a
// moment, so it runs only after a burst (many new registrations since the last one), once the rate
// of new ones has fallen (a quiet window: the burst's transactions, Timer J = 32 s, have ended),
// and never more often than `minIntervalMs`. Pure: the caller samples a monotonic count of new
// registrations and the time; heap-compaction.ts makes the call.

/** The thresholds of the trigger (milliseconds on the caller's clock). */
export interface BurstCompactionPolicy {
  /** New registrations since the last compaction (or start) that make a burst. */
  readonly minNew: number;
  /** How long the rate must have stayed low before compacting (past Timer J: the burst's transactions are gone). */
  readonly quietMs: number;
  /** At most this many new registrations within the quiet window still count as quiet (the steady trickle of a live network). */
  readonly quietMax: number;
  /** Never two compactions closer than this. */
  readonly minIntervalMs: number;
  /**
   * At most this share of one core's time spent by the process within the quiet window (CPU ms
   * sampled with the counts). Refreshes without a new challenge are not new registrations, but a
   * network refreshing 100k UEs every minute keeps the process busy, and a pause of seconds then
   * drops datagrams and makes refreshes late. Unset: not checked.
   */
  readonly quietCpuShare?: number;
}

/**
 * 5,000 new registrations, then at most 1 per second for 30 s, at most once per 10 minutes. 30 s:
 * the burst's transactions are over but for those of its last 2 s (Timer J = 32 s), which the
 * compaction moves and an ordinary GC frees later (a few thousand small records at 1,000/s); and
 * it has run by the time a benchmark takes its figures 34 s after the burst (npm run bench:load).
 */
export const DEFAULT_BURST_COMPACTION: BurstCompactionPolicy = {
  minNew: 5_000,
  quietMs: 30_000,
  quietMax: 30,
  minIntervalMs: 600_000,
  quietCpuShare: 0.25,
};

/**
 * Decides, sample by sample, when a burst of registrations has ended. Samples are (time, count of
 * new registrations so far); the window of the last `quietMs` is kept as a FIFO of samples (its
 * length is quietMs / the sampling interval, whatever the number of registrations).
 */
export class BurstDetector {
  #times: number[] = [];
  #counts: number[] = [];
  #cpu: number[] = [];
  #head = 0;
  /** The count at the last compaction (or at the first sample). */
  #base: number | undefined;
  #lastAt: number | undefined;

  constructor(readonly policy: BurstCompactionPolicy = DEFAULT_BURST_COMPACTION) {}

  /** One sample (`cpuMs`: the process's CPU so far); true when the heap should be compacted now (the detector then counts from here). */
  observe(now: number, count: number, cpuMs = 0): boolean {
    const p = this.policy;
    this.#base ??= count;
    this.#times.push(now);
    this.#counts.push(count);
    this.#cpu.push(cpuMs);
    // The oldest sample still at or before the window's start is the reference: drop older ones.
    while (this.#head + 1 < this.#times.length && this.#times[this.#head + 1]! <= now - p.quietMs) this.#head++;
    if (this.#head > 64 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#counts = this.#counts.slice(this.#head);
      this.#cpu = this.#cpu.slice(this.#head);
      this.#head = 0;
    }
    if (count - this.#base < p.minNew) return false;
    // The window must be fully observed: a reference sample at least quietMs old.
    const refAt = this.#times[this.#head]!;
    if (now - refAt < p.quietMs) return false;
    if (count - this.#counts[this.#head]! > p.quietMax) return false;
    if (p.quietCpuShare !== undefined && cpuMs - this.#cpu[this.#head]! > p.quietCpuShare * (now - refAt)) return false;
    if (this.#lastAt !== undefined && now - this.#lastAt < p.minIntervalMs) return false;
    this.#lastAt = now;
    this.#base = count;
    return true;
  }

  /** New registrations in `count` since the last compaction (or the first sample). */
  newSince(count: number): number {
    return count - (this.#base ?? count);
  }

  /** Samples kept (bounded by the window, not by the number of registrations). */
  get kept(): number {
    return this.#times.length - this.#head;
  }
}

/** The thresholds of the fragmentation trigger (bytes; milliseconds on the caller's clock). */
export interface FragmentationPolicy {
  /** Old space committed beyond the live estimate that is worth a pause to give back. */
  readonly minWasteBytes: number;
  /** And committed at least this many times the live estimate (a large heap that is mostly live is left alone). */
  readonly minRatio: number;
  /** The live estimate is the least old-space use seen over this many samples (one lies after a full GC). */
  readonly windowSamples: number;
  /** Never two fragmentation compactions closer than this. */
  readonly minIntervalMs: number;
}

/**
 * 128 MiB and twice the live size, the live size being the least use over 60 one-second samples, at
 * most once per 10 minutes. A P-CSCF with 100k UEs refreshing every minute never goes quiet, and its
 * old space stays at ~630 MB committed for ~265 MB live (2026-12-05, expiry 120 s): refreshed bindings
 * and transactions promoted, then dead, among pages that stay partly live. At 10k the whole old space
 * is ~40 MB: never.
 */
export const DEFAULT_FRAGMENTATION: FragmentationPolicy = {
  minWasteBytes: 128 * 1024 * 1024,
  minRatio: 2,
  windowSamples: 60,
  minIntervalMs: 600_000,
};

/**
 * The second reason to compact, for a process that is never quiet: old space committed far beyond
 * what is live, and no longer growing (a burst still under way grows it: that one waits for the
 * burst trigger), whatever the traffic. Samples are (time, old space committed, old space used); the
 * used figure includes garbage not yet collected, so the least of the last `windowSamples` stands
 * for the live size (rings of that many numbers: bounded, whatever the number of registrations).
 */
export class FragmentationTrigger {
  readonly #used: number[] = [];
  readonly #committed: number[] = [];
  #next = 0;
  #lastAt: number | undefined;

  constructor(readonly policy: FragmentationPolicy = DEFAULT_FRAGMENTATION) {}

  /** One sample; true when the heap should be compacted now. */
  observe(now: number, committed: number, used: number): boolean {
    const p = this.policy;
    this.#used[this.#next] = used;
    this.#committed[this.#next] = committed;
    this.#next = (this.#next + 1) % p.windowSamples;
    if (this.#used.length < p.windowSamples) return false;
    // Full ring: the oldest sample is the next to be overwritten.
    if (committed > this.#committed[this.#next]!) return false;
    let live = Infinity;
    for (const u of this.#used) if (u < live) live = u;
    if (committed - live < p.minWasteBytes || committed < p.minRatio * live) return false;
    if (this.#lastAt !== undefined && now - this.#lastAt < p.minIntervalMs) return false;
    this.#lastAt = now;
    // The samples before the compaction say nothing about the heap after it.
    this.#used.length = 0;
    this.#committed.length = 0;
    this.#next = 0;
    return true;
  }
}
