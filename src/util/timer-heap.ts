// One timer for many (issue 9 §2: no Node timer per UE or per registration). imsec load gives each Ue this Clock: its
// expiry timer, its SA sets' lifetimes and its SIP transactions' timers (E, F, K) all go into one
// binary min-heap ordered by (due time, creation), driven by a single setTimeout armed at the
// earliest entry. A Node Timeout per timer costs ~250 octets with its closures and the timer lists'
// bookkeeping; an entry here is one small object.
// - TimerHeap: pure (time comes in as an argument); O(log n) add and pop; cancel is O(1) and lazy:
//   the entry drops its callback at once (so nothing it closed over is kept), the empty entry is
//   skipped when it surfaces, and the heap is rebuilt without them once they are the majority.
// - HeapClock: the Clock on top of it (performance.now(), one unref'd setTimeout). Unref'd: the
//   load engine's own tick (the P-CSCF's sockets) keeps the process alive while it needs its timers.
import type { Clock } from './clock.ts';
import { containFault } from './guard.ts';

interface Entry {
  readonly at: number;
  readonly seq: number;
  fn: (() => void) | undefined;
}

/** A scheduled timer, as TimerHeap.schedule() returns it (opaque: give it to cancel()). */
export interface TimerEntry {
  readonly at: number;
}

const before = (a: Entry, b: Entry): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/** A min-heap of callbacks by (due time, insertion order). Not safe for concurrent use. */
export class TimerHeap {
  #h: Entry[] = [];
  #seq = 0;
  #live = 0;

  /** Timers added and neither fired nor cancelled. */
  get size(): number {
    return this.#live;
  }

  /** The earliest due time among live timers (cancelled heads are dropped first); undefined when none. */
  nextAt(): number | undefined {
    this.#dropDeadHead();
    return this.#h[0]?.at;
  }

  /** Adds `fn` due at `at`; returns its cancel function (idempotent; a no-op once it fired). */
  add(at: number, fn: () => void): () => void {
    const e = this.schedule(at, fn);
    return () => this.cancel(e);
  }

  /** Adds `fn` due at `at`; returns the entry to give to cancel() (no closure made here). */
  schedule(at: number, fn: () => void): TimerEntry {
    const e: Entry = { at, seq: this.#seq++, fn };
    this.#h.push(e);
    this.#up(this.#h.length - 1);
    this.#live++;
    return e;
  }

  /** Cancels the entry schedule() returned (idempotent; a no-op once it fired). */
  cancel(entry: TimerEntry): void {
    const e = entry as Entry;
    if (e.fn === undefined) return;
    e.fn = undefined;
    this.#live--;
    // Rebuild once cancelled entries dominate: memory stays bounded by the live timers.
    if (this.#h.length > 1024 && this.#live * 2 < this.#h.length) this.#rebuild();
  }

  /**
   * Removes and returns the callback of the earliest live timer due at or before `now`, or
   * undefined. The caller runs it (it may add or cancel timers).
   */
  popDue(now: number): (() => void) | undefined {
    this.#dropDeadHead();
    const top = this.#h[0];
    if (!top || top.at > now) return undefined;
    this.#pop();
    const fn = top.fn!;
    top.fn = undefined;
    this.#live--;
    return fn;
  }

  #dropDeadHead(): void {
    while (this.#h.length > 0 && this.#h[0]!.fn === undefined) this.#pop();
  }

  #pop(): void {
    const h = this.#h;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.#down(0);
    }
  }

  #rebuild(): void {
    this.#h = this.#h.filter((e) => e.fn !== undefined);
    for (let i = (this.#h.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #up(i: number): void {
    const h = this.#h;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  #down(i: number): void {
    const h = this.#h;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(h[c + 1]!, h[c]!)) c++;
      if (!before(h[c]!, e)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}

/** Each callback is an edge like a socket's: a bug in one is contained (util/guard.ts), the others run. */
function runContained(fn: () => unknown): void {
  try {
    const r = fn();
    if (r instanceof Promise) r.catch((e: unknown) => containFault('timer', e));
  } catch (e) {
    containFault('timer', e);
  }
}

/** A Clock whose timers share one TimerHeap and one setTimeout (see the header). */
export class HeapClock implements Clock {
  readonly #heap = new TimerHeap();
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Infinity;
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Timers pending (for tests and the end-of-run check). */
  get pending(): number {
    return this.#heap.size;
  }

  /** Whether a Node timer is set (false once nothing is pending). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  now(): number {
    return this.#now();
  }

  setTimer(ms: number, fn: () => void): () => void {
    const at = this.#now() + Math.max(0, ms);
    const e = this.#heap.schedule(at, fn);
    if (at < this.#armedAt) this.#arm();
    // One closure per timer (every UE has a few): it holds the entry, the heap does the rest.
    return () => this.#cancel(e);
  }

  #cancel(e: TimerEntry): void {
    this.#heap.cancel(e);
    if (this.#heap.size === 0) this.#disarm();
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    const now = this.#now();
    for (let fn = this.#heap.popDue(now); fn; fn = this.#heap.popDue(now)) runContained(fn);
    this.#arm();
  };

  #arm(): void {
    const at = this.#heap.nextAt();
    if (at === undefined) return this.#disarm();
    if (this.#timer && at >= this.#armedAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - this.#now()));
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }
}
