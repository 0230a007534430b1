// Anti-replay window (RFC 4303 §3.4.3), as a ring of 16-bit words (RFC 6479 layout) so that any
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

/** Bits per ring word: 16, so that every word is a small integer (a V8 Smi, stored inline in a plain array). */
const WORD_BITS = 16;
const WORD_MASK = 0xffff;

/**
 * The RFC 4303 §3.4.3 sliding window: `check` is read-only, `commit` only after the ICV verified.
 *
 * Memory (issue 9 §2: a P-CSCF holds two inbound SAs per registered UE): the ring is a plain array
 * of 16-bit words made at the first commit (none while the SA is idle; 5 inline integers for the
 * default 64), not a typed array with a buffer object of its own.
 */
export class ReplayWindow {
  readonly size: number;
  #highest = 0; // RFC 4303 §3.4.3: the receive counter starts at 0
  /** The ring (undefined: every bit 0, or every bit 1 when #highest came from rejectUpTo). */
  #bits: number[] | undefined;

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
    if (!isUint32(rejectUpTo)) throw new EspError('ESP_BAD_INPUT', `rejectUpTo must be 0..2^32-1, got ${rejectUpTo}`);
    if (rejectUpTo > 0) {
      this.#highest = rejectUpTo;
      this.#bits = new Array<number>(this.#words()).fill(WORD_MASK);
    }
  }

  /**
   * Ring length. One spare word: when T advances, whole words are cleared, so the ring must hold
   * the word of T plus every word that still overlaps (T-W, T].
   */
  #words(): number {
    return Math.ceil(this.size / WORD_BITS) + 1;
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
    const bits = (this.#bits ??= new Array<number>(this.#words()).fill(0));
    const n = bits.length;
    const t = this.#highest;
    if (seq > t) {
      const from = Math.floor(t / WORD_BITS) + 1;
      const to = Math.floor(seq / WORD_BITS);
      if (to - from + 1 >= n) bits.fill(0);
      else for (let w = from; w <= to; w++) bits[w % n] = 0;
      this.#highest = seq;
    }
    const word = Math.floor(seq / WORD_BITS) % n;
    bits[word] = bits[word]! | (1 << (seq & (WORD_BITS - 1)));
  }

  #test(seq: number): boolean {
    const bits = this.#bits;
    if (!bits) return false; // nothing committed yet (a restored window always has its ring)
    const word = Math.floor(seq / WORD_BITS) % bits.length;
    return ((bits[word]! >> (seq & (WORD_BITS - 1))) & 1) === 1;
  }
}
