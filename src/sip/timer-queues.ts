// The transaction timers of one layer, as one FIFO per delay. RFC 3261 timers take few distinct values
// (T1·2^n up to T2, T4, 64·T1), and all entries of one delay fall due in the order they were set, so
// each queue needs one clock timer, for its head. A timer is then one small record instead of a
// setTimeout (a Timeout object) plus the closures around it: at a burst of registrations most
// transactions wait out Timer J (32 s), and that is what they cost. A firing timer calls its owner's
// onTimer(name), so setting one allocates no closure. Cancelling marks the record (O(1)); a queue
// with nothing live left stops its clock timer.
import type { Clock } from './clock.ts';
import { containFault } from '../util/guard.ts';

/** What a timer calls when it fires. */
export interface TimerOwner {
  onTimer(name: string): void;
}

/** One timer set through `TimerQueues.set`. */
export interface QueuedTimer {
  /** The owner's name for it (E, F, J, …). */
  readonly name: string;
  readonly due: number;
  /** Cleared when the timer fires or is cancelled. */
  owner: TimerOwner | undefined;
}

interface Entry extends QueuedTimer {
  readonly queue: DelayQueue;
}

class DelayQueue {
  entries: Entry[] = [];
  head = 0;
  live = 0;
  cancelArmed: (() => void) | undefined;

  constructor(private readonly clock: Clock) {}

  push(e: Entry): void {
    this.entries.push(e);
    this.live++;
    if (this.cancelArmed === undefined) this.arm();
  }

  cancel(e: Entry): void {
    if (e.owner === undefined) return;
    e.owner = undefined;
    if (--this.live === 0) this.reset();
  }

  private reset(): void {
    this.cancelArmed?.();
    this.cancelArmed = undefined;
    this.entries = [];
    this.head = 0;
  }

  /** Arms the clock for the first live entry (skipping cancelled ones). */
  private arm(): void {
    while (this.head < this.entries.length && this.entries[this.head]!.owner === undefined) this.head++;
    const first = this.entries[this.head];
    if (first === undefined) return this.reset();
    this.cancelArmed = this.clock.setTimer(first.due - this.clock.now(), () => this.expire());
  }

  private expire(): void {
    this.cancelArmed = undefined;
    const now = this.clock.now();
    // Fire everything due; a firing may set new timers on this queue (they land behind, later).
    while (this.head < this.entries.length) {
      const e = this.entries[this.head]!;
      if (e.owner !== undefined && e.due > now) break;
      this.head++;
      const owner = e.owner;
      if (owner === undefined) continue;
      e.owner = undefined;
      this.live--;
      try {
        owner.onTimer(e.name);
      } catch (err) {
        containFault('sip.timer', err); // one transaction's bug does not stop the others' timers
      }
    }
    if (this.live === 0) return this.reset();
    // Drop the fired prefix now and then (amortised O(1) per entry).
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    if (this.cancelArmed === undefined) this.arm();
  }
}

/** The timers of one transaction layer: `set` returns a record to `cancel`. */
export class TimerQueues {
  readonly #queues = new Map<number, DelayQueue>();

  constructor(private readonly clock: Clock) {}

  /** Calls `owner.onTimer(name)` once after `ms` (> 0) unless cancelled first. */
  set(owner: TimerOwner, name: string, ms: number): QueuedTimer {
    let q = this.#queues.get(ms);
    if (q === undefined) {
      q = new DelayQueue(this.clock);
      this.#queues.set(ms, q);
    }
    // Whole milliseconds (a small integer, not a boxed double); never earlier than asked.
    const e: Entry = { name, due: Math.ceil(this.clock.now() + ms), owner, queue: q };
    q.push(e);
    return e;
  }

  /** Idempotent; nothing happens for a timer that fired already. */
  cancel(t: QueuedTimer): void {
    (t as Entry).queue.cancel(t as Entry);
  }
}
