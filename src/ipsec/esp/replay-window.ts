// Anti-replay window (RFC 4303 §3.4.3), as a ring of 32-bit words (RFC 6479 layout) so that any
// window size costs O(1) per packet. check() is read-only and runs before the ICV; commit() runs
// only after the ICV verified ("the window moves only for authenticated packets").
//
//        T-W+1                    T          (T = highest authenticated seq, W = window size)
//   ... ──┼───────── window ──────┼──── s > T: new, passes
//   s ≤ T-W: 'outside-window'     bit (s) set: 'replay'
import { DEFAULT_REPLAY_WINDOW, MIN_REPLAY_WINDOW } from '../types.ts';
import { EspError } from './errors.ts';
import { isUint32 } from './wire.ts';

/** What the window says of a sequence number before the ICV is checked. */
export type ReplayVerdict = 'ok' | 'replay' | 'outside-window';

/** Upper bound on the window we accept (memory guard; 2^16 bits = 8 KiB). */
export const MAX_REPLAY_WINDOW = 65536;

/** The RFC 4303 §3.4.3 sliding window: `check` is read-only, `commit` only after the ICV verified. */
export class ReplayWindow {
  readonly size: number;
  #highest = 0; // RFC 4303 §3.4.3: the receive counter starts at 0
  readonly #bits: Uint32Array;

  /**
   * `rejectUpTo`: a window restored after a restart (issue 13 §3): every number up to it counts as
   * received, so nothing the previous process may have accepted passes again (conservative: some
   * never-seen numbers just below it are refused too).
   */
  constructor(size: number = DEFAULT_REPLAY_WINDOW, rejectUpTo = 0) {
    if (!Number.isInteger(size) || size < MIN_REPLAY_WINDOW || size > MAX_REPLAY_WINDOW) {
      throw new EspError('ESP_BAD_INPUT', `replayWindow must be an integer ${MIN_REPLAY_WINDOW}..${MAX_REPLAY_WINDOW}, got ${size}`);
    }
    this.size = size;
    // One spare word: when T advances, whole words are cleared, so the ring must hold the word
    // of T plus every word that still overlaps (T-W, T].
    this.#bits = new Uint32Array(Math.ceil(size / 32) + 1);
    if (!isUint32(rejectUpTo)) throw new EspError('ESP_BAD_INPUT', `rejectUpTo must be 0..2^32-1, got ${rejectUpTo}`);
    if (rejectUpTo > 0) {
      this.#highest = rejectUpTo;
      this.#bits.fill(0xffffffff);
    }
  }

  /** The highest authenticated sequence number so far (0 before the first packet). */
  get highest(): number {
    return this.#highest;
  }

  /** Read-only pre-check (RFC 4303 §3.4.3). Sequence number 0 is never valid with 32-bit numbers. */
  check(seq: number): ReplayVerdict {
    if (!isUint32(seq) || seq === 0) return 'outside-window';
    const t = this.#highest;
    if (seq > t) return 'ok';
    if (t - seq >= this.size) return 'outside-window';
    return this.#test(seq) ? 'replay' : 'ok';
  }

  /** Marks seq as received; call only after its ICV verified and check(seq) said 'ok'. */
  commit(seq: number): void {
    if (this.check(seq) !== 'ok') throw new EspError('ESP_BAD_INPUT', `commit(${seq}) without a passing check`);
    const t = this.#highest;
    if (seq > t) {
      const n = this.#bits.length;
      const from = Math.floor(t / 32) + 1;
      const to = Math.floor(seq / 32);
      if (to - from + 1 >= n) this.#bits.fill(0);
      else for (let w = from; w <= to; w++) this.#bits[w % n] = 0;
      this.#highest = seq;
    }
    const word = Math.floor(seq / 32) % this.#bits.length;
    this.#bits[word] = (this.#bits[word]! | (1 << (seq & 31))) >>> 0;
  }

  #test(seq: number): boolean {
    const word = Math.floor(seq / 32) % this.#bits.length;
    return ((this.#bits[word]! >>> (seq & 31)) & 1) === 1;
  }
}
