// The load engine's pacing pieces, pure (time comes in as an argument, in ms):
// - TokenBucket: attempts per second with an optional linear ramp from 0 to the rate;
// - DueQueue: a FIFO of (item, due time) for work whose delay is the same for every item (refreshes
//   at a fixed fraction of one expiry), so the earliest is always at the head: O(1) push and pop;
// - Pool: a set with O(1) add, remove and uniform random pick (MESSAGE targets, churn victims).

/** Tokens accrue at `rate`/s (ramping linearly over `rampMs` from 0); at most `burst` are kept. */
export class TokenBucket {
  readonly rate: number;
  readonly rampMs: number;
  readonly burst: number;
  readonly #start: number;
  #tokens = 0;
  #last: number;

  constructor(o: { rate: number; rampMs?: number; burst?: number; start: number }) {
    if (!(o.rate > 0)) throw new RangeError(`rate must be > 0, got ${o.rate}`);
    this.rate = o.rate;
    this.rampMs = Math.max(0, o.rampMs ?? 0);
    // Default burst: 100 ms worth of tokens (at least two, so a fraction is never lost to the cap), so a late tick catches up a little only.
    this.burst = Math.max(2, o.burst ?? o.rate / 10);
    this.#start = o.start;
    this.#last = o.start;
  }

  /** Tokens earned from the start up to time t (integral of the ramped rate). */
  #earned(t: number): number {
    const x = Math.max(0, t - this.#start);
    const r = this.rate / 1000;
    if (x <= this.rampMs) return this.rampMs === 0 ? r * x : (r * x * x) / (2 * this.rampMs);
    return (r * this.rampMs) / 2 + r * (x - this.rampMs);
  }

  #refill(now: number): void {
    if (now <= this.#last) return;
    this.#tokens = Math.min(this.burst, this.#tokens + this.#earned(now) - this.#earned(this.#last));
    this.#last = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** The rate the ramp has reached at time `now` (per second). */
  currentRate(now: number): number {
    const x = now - this.#start;
    return this.rampMs === 0 || x >= this.rampMs ? this.rate : (this.rate * Math.max(0, x)) / this.rampMs;
  }
}

/** A FIFO of items due at non-decreasing times (the caller pushes in due order). */
export class DueQueue<T> {
  #items: (T | undefined)[] = [];
  #due: number[] = [];
  #head = 0;

  push(item: T, due: number): void {
    this.#items.push(item);
    this.#due.push(due);
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** The head item if it is due at `now`, removed; undefined otherwise. */
  popDue(now: number): T | undefined {
    if (this.#head >= this.#items.length || this.#due[this.#head]! > now) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head] = undefined;
    this.#head++;
    // Compact once the consumed prefix dominates: amortised O(1), memory bounded by the live items.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#due = this.#due.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#due = [];
    this.#head = 0;
  }
}

/** A set with O(1) add / delete / random pick (swap-remove; positions kept in a Map, or in a field of each member). */
/** Where a Pool member's position is kept (undefined: not a member). */
export interface PoolSlot<T> {
  get(x: T): number | undefined;
  set(x: T, i: number | undefined): void;
}

function mapSlot<T>(): PoolSlot<T> {
  const m = new Map<T, number>();
  return { get: (x) => m.get(x), set: (x, i) => (i === undefined ? m.delete(x) : m.set(x, i)) };
}

export class Pool<T> {
  readonly #items: T[] = [];
  readonly #pos: PoolSlot<T>;

  /** `slot`: where each member keeps its position (a field of its own: no Map entry per member); default a Map. */
  constructor(slot?: PoolSlot<T>) {
    this.#pos = slot ?? mapSlot<T>();
  }

  add(x: T): void {
    if (this.#pos.get(x) !== undefined) return;
    this.#pos.set(x, this.#items.length);
    this.#items.push(x);
  }

  delete(x: T): boolean {
    const i = this.#pos.get(x);
    if (i === undefined) return false;
    const last = this.#items.pop()!;
    if (last !== x) {
      this.#items[i] = last;
      this.#pos.set(last, i);
    }
    this.#pos.set(x, undefined);
    return true;
  }

  has(x: T): boolean {
    return this.#pos.get(x) !== undefined;
  }

  get size(): number {
    return this.#items.length;
  }

  /** A uniformly random member (random: [0, 1)), or undefined when empty. */
  pick(random: () => number = Math.random): T | undefined {
    return this.#items.length === 0 ? undefined : this.#items[Math.floor(random() * this.#items.length)];
  }

  values(): readonly T[] {
    return this.#items;
  }
}
