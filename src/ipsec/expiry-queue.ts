// The SA sets' expiry timers of one Clock, as one binary min-heap of the items themselves (issue 9
// §2: a P-CSCF and `imsec load` hold one set per registration, 100k of them). A timer per set cost
// two closures, their two contexts and the clock's own entry (~300 octets per idle set); here an
// item is an object its owner keeps anyway (sa-slots.ts's SlotEntry) with two small fields: its due
// time and its place in the heap. One clock timer is armed at the earliest due time.
// - set(): O(log n) insert or move; delete(): O(log n) (the place is known: no search, no sweep).
// - The clock timer is moved only when an earlier item arrives; a head that moved later makes the
//   armed timer fire early, find nothing due and re-arm (one such wake-up per firing at most).
// - Due items fire in due-time order (equal due times in no promised order); an owner re-checks
//   that its item is still due when it fires (sa-slots.ts does, as strongSwan's `sa_expired`).
// - Each item's callback is its own boundary (util/guard.ts): one that throws does not stop the rest.
import type { Clock } from '../util/clock.ts';
import { containFault } from '../util/guard.ts';

/** What the queue orders: the owner's object, with its due time (clock ms) and its index in the heap (-1: not queued). */
export interface ExpiryItem {
  at: number;
  pos: number;
}

/** The expiry timers of many items on one Clock timer. Not safe for concurrent use (one event loop owns it). */
export class ExpiryQueue<T extends ExpiryItem> {
  readonly #h: T[] = [];
  readonly #clock: Clock;
  readonly #fire: (item: T) => void;
  #cancel: (() => void) | undefined;
  #armedAt = Infinity;

  /** `fire` is called once per item that fell due (it may set or delete items, this one included). */
  constructor(clock: Clock, fire: (item: T) => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  /** Items queued. */
  get size(): number {
    return this.#h.length;
  }

  /** Whether a clock timer is set (false once the queue is empty). */
  get armed(): boolean {
    return this.#cancel !== undefined;
  }

  /** Queues `item` due at `at` (clock ms), or moves it there if it is queued. */
  set(item: T, at: number): void {
    const h = this.#h;
    if (item.pos < 0) {
      item.at = at;
      item.pos = h.length;
      h.push(item);
      this.#up(item.pos);
    } else {
      const was = item.at;
      item.at = at;
      if (at < was) this.#up(item.pos);
      else this.#down(item.pos);
    }
    if (at < this.#armedAt) this.#arm();
  }

  /** Takes `item` out of the queue (a no-op when it is not queued). */
  delete(item: T): void {
    const i = item.pos;
    if (i < 0) return;
    item.pos = -1;
    const h = this.#h;
    const last = h.pop()!;
    if (last !== item) {
      h[i] = last;
      last.pos = i;
      // The moved item may belong above or below its new place.
      this.#up(i);
      this.#down(last.pos);
    }
    if (h.length === 0) this.#disarm();
  }

  #onTimer = (): void => {
    this.#cancel = undefined;
    this.#armedAt = Infinity;
    const h = this.#h;
    const now = this.#clock.now();
    while (h.length > 0 && h[0]!.at <= now) {
      const item = h[0]!;
      this.delete(item);
      try {
        this.#fire(item);
      } catch (e) {
        containFault('sa-expiry', e);
      }
    }
    this.#arm();
  };

  #arm(): void {
    const head = this.#h[0];
    if (head === undefined) return this.#disarm();
    if (this.#cancel !== undefined && head.at >= this.#armedAt) return;
    this.#cancel?.();
    this.#armedAt = head.at;
    this.#cancel = this.#clock.setTimer(Math.max(0, head.at - this.#clock.now()), this.#onTimer);
  }

  #disarm(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#armedAt = Infinity;
  }

  #up(i: number): void {
    const h = this.#h;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.at <= e.at) break;
      h[i] = parent;
      parent.pos = i;
      i = p;
    }
    h[i] = e;
    e.pos = i;
  }

  #down(i: number): void {
    const h = this.#h;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1]!.at < h[c]!.at) c++;
      const child = h[c]!;
      if (child.at >= e.at) break;
      h[i] = child;
      child.pos = i;
      i = c;
    }
    h[i] = e;
    e.pos = i;
  }
}
