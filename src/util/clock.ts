// Time as an injected dependency: the transaction layer, the network functions and every IPsec
// backend read the time and set timers only through a Clock (no Date.now default anywhere), so the
// SA sets' expiresAt and the kernel's hard lifetimes are on one scale. `systemClock` uses
// setTimeout; `ManualClock` is virtual time for tests.
import { guard } from './guard.ts';

/** Time and timers, injected so that protocol code runs in virtual time in tests (`FakeClock`) and on the real clock in production. */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences matter). */
  now(): number;
  /**
   * Calls fn once after ms milliseconds; returns a function that cancels it (idempotent).
   * `unref`: the timer alone does not keep the process alive (housekeeping such as keepalives).
   */
  setTimer(ms: number, fn: () => void, opts?: { readonly unref?: boolean }): () => void;
}

/** The real clock: `performance.now()` and `setTimeout`, each timer callback inside an exception boundary. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn, opts) {
    // A timer callback is an edge like a socket's: a bug in it is contained, the process goes on.
    const t = setTimeout(guard('timer', fn), Math.max(0, ms));
    if (opts?.unref) t.unref();
    return () => clearTimeout(t);
  },
};

interface Scheduled {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Virtual time: nothing fires until advance(); due timers fire in (due time, creation) order. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private queue: Scheduled[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const entry: Scheduled = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.queue.push(entry);
    return () => {
      this.queue = this.queue.filter((e) => e !== entry);
    };
  }

  /** Moves time forward by ms, firing every timer due on the way (including ones set while firing). */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      let next: Scheduled | undefined;
      for (const e of this.queue) if (e.at <= target && (!next || e.at < next.at || (e.at === next.at && e.seq < next.seq))) next = e;
      if (!next) break;
      this.queue = this.queue.filter((e) => e !== next);
      this.t = next.at;
      next.fn();
    }
    this.t = target;
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.queue.length;
  }
}
