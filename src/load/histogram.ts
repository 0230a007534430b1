// A latency histogram with fixed memory (HDR-style log-linear buckets): values in microseconds
// from 1 µs to ~4.6 h, relative error ≤ 1/2^SUB_BITS (≈ 0.8 %) on every percentile. Recording is
// O(1) and allocates nothing; memory is one Float64Array whatever the number of samples, so a
// 100k-UE run costs what a 10-UE run costs. Histograms from several processes merge exactly.

const LIN = 256; // exact (1 µs wide) buckets below 256 µs
const SUB = 128; // then 128 buckets per power of two: relative width 1/128
const OCTAVES = 27; // 2^8 … 2^35 µs (≈ 9.5 h); larger values land in the top bucket
const BUCKETS = LIN + OCTAVES * SUB;

/** Index of the bucket holding v (µs, ≥ 0). */
function indexOf(v: number): number {
  if (v < LIN) return Math.floor(v);
  let e = Math.floor(Math.log2(v));
  if (2 ** e > v)
    e--; // guard log2 rounding at exact powers
  else if (2 ** (e + 1) <= v) e++;
  if (e - 8 >= OCTAVES) return BUCKETS - 1;
  const sub = Math.floor(v / 2 ** (e - 7)) - SUB;
  return LIN + (e - 8) * SUB + sub;
}

/** The upper edge of bucket i (what a percentile reports: never below the true value). */
function upperOf(i: number): number {
  if (i < LIN) return i + 1;
  const e = 8 + Math.floor((i - LIN) / SUB);
  const sub = (i - LIN) % SUB;
  return (SUB + sub + 1) * 2 ** (e - 7);
}

export interface HistogramJson {
  readonly count: number;
  readonly sum_us: number;
  readonly max_us: number;
  /** Sparse buckets [index, count]: what `merge` needs to combine runs exactly. */
  readonly buckets: readonly (readonly [number, number])[];
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #max = 0;

  /** Records one value in milliseconds (fractions kept to the microsecond). */
  recordMs(ms: number): void {
    this.recordUs(ms * 1000);
  }

  recordUs(us: number): void {
    if (!(us >= 0)) us = 0;
    this.#counts[indexOf(us)]!++;
    this.#count++;
    this.#sum += us;
    if (us > this.#max) this.#max = us;
  }

  get count(): number {
    return this.#count;
  }

  /** The value (ms) at or below which a fraction q (0..1) of the samples lie; 0 when empty. */
  percentileMs(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(upperOf(i), this.#max) / 1000;
    }
    return this.#max / 1000;
  }

  get maxMs(): number {
    return this.#max / 1000;
  }

  get meanMs(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count / 1000;
  }

  /** Adds another histogram's samples (same bucket layout: exact). */
  add(other: Histogram | HistogramJson): void {
    if (other instanceof Histogram) {
      for (let i = 0; i < BUCKETS; i++) this.#counts[i]! += other.#counts[i]!;
      this.#count += other.#count;
      this.#sum += other.#sum;
      this.#max = Math.max(this.#max, other.#max);
      return;
    }
    for (const [i, c] of other.buckets) {
      if (!Number.isInteger(i) || i < 0 || i >= BUCKETS || !(c >= 0)) throw new RangeError(`histogram bucket ${i}: out of range`);
      this.#counts[i]! += c;
    }
    this.#count += other.count;
    this.#sum += other.sum_us;
    this.#max = Math.max(this.#max, other.max_us);
  }

  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#sum = 0;
    this.#max = 0;
  }

  toJSON(): HistogramJson {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.#counts[i]) buckets.push([i, this.#counts[i]!]);
    return { count: this.#count, sum_us: Math.round(this.#sum), max_us: Math.round(this.#max), buckets };
  }

  static fromJSON(j: HistogramJson): Histogram {
    const h = new Histogram();
    h.add(j);
    return h;
  }
}

/** Exposed for tests: bucket index and upper edge. */
export const __TESTS = { indexOf, upperOf, BUCKETS };
