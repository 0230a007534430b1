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

/** What openEsp needs of a window: its highest number, the read-only check and the commit (see ReplayWindow). */
export interface AntiReplay {
  readonly highest: number;
  check(seq: number): ReplayVerdict;
  commit(seq: number): void;
}

/**
 * Ring length for a window of `size` bits. One spare word: when T advances, whole words are
 * cleared, so the ring must hold the word of T plus every word that still overlaps (T-W, T].
 */
function ringWords(size: number): number {
  return Math.ceil(size / WORD_BITS) + 1;
}

/** Throws unless `size` is a window size we accept (RFC 4303 §3.4.3: at least 32; memory guard above). */
export function checkReplayWindowSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_REPLAY_WINDOW || size > MAX_REPLAY_WINDOW) {
    throw new EspError('ESP_BAD_INPUT', `replayWindow must be an integer ${MIN_REPLAY_WINDOW}..${MAX_REPLAY_WINDOW}, got ${size}`);
  }
}

/**
 * The ring of a window restored after a restart (issue 13 §3): every number up to its highest
 * counts as received (conservative: some never-seen numbers just below it are refused too).
 */
export function replayRingAllSeen(size: number): number[] {
  return new Array<number>(ringWords(size)).fill(WORD_MASK);
}

/**
 * The window as plain state, for holders that keep it in their own fields (an installed SA, issue 9
 * §2: no window object per SA): `highest` (T), `ring` (undefined: every bit 0). Read-only
 * pre-check (RFC 4303 §3.4.3); sequence number 0 is never valid with 32-bit numbers.
 */
export function replayCheck(size: number, highest: number, ring: number[] | undefined, seq: number): ReplayVerdict {
  if (!isUint32(seq) || seq === 0) return 'outside-window';
  if (seq > highest) return 'ok';
  if (highest - seq >= size) return 'outside-window';
  if (!ring) return 'ok'; // nothing committed yet (a restored window always has its ring)
  const word = Math.floor(seq / WORD_BITS) % ring.length;
  return ((ring[word]! >> (seq & (WORD_BITS - 1))) & 1) === 1 ? 'replay' : 'ok';
}

/**
 * Marks seq as received in plain window state; call only after its ICV verified and replayCheck
 * said 'ok' (throws otherwise). Returns the ring (made here at the first commit); the new highest
 * is max(highest, seq), for the holder to store.
 */
export function replayCommit(size: number, highest: number, ring: number[] | undefined, seq: number): number[] {
  if (replayCheck(size, highest, ring, seq) !== 'ok') throw new EspError('ESP_BAD_INPUT', `commit(${seq}) without a passing check`);
  const bits = ring ?? new Array<number>(ringWords(size)).fill(0);
  const n = bits.length;
  if (seq > highest) {
    const from = Math.floor(highest / WORD_BITS) + 1;
    const to = Math.floor(seq / WORD_BITS);
    if (to - from + 1 >= n) bits.fill(0);
    else for (let w = from; w <= to; w++) bits[w % n] = 0;
  }
  const word = Math.floor(seq / WORD_BITS) % n;
  bits[word] = bits[word]! | (1 << (seq & (WORD_BITS - 1)));
  return bits;
}

/**
 * The RFC 4303 §3.4.3 sliding window: `check` is read-only, `commit` only after the ICV verified.
 * A standalone window over replayCheck/replayCommit (an installed SA keeps the same state in its
 * own fields, ipsec/sa.ts).
 *
 * Memory (issue 9 §2): the ring is a plain array of 16-bit words made at the first commit (none
 * while the window is idle; 5 inline integers for the default 64), not a typed array with a buffer
 * object of its own.
 */
export class ReplayWindow implements AntiReplay {
  readonly size: number;
  #highest = 0; // RFC 4303 §3.4.3: the receive counter starts at 0
  /** The ring (undefined: every bit 0). */
  #bits: number[] | undefined;

  /**
   * `rejectUpTo`: a window restored after a restart (issue 13 §3): every number up to it counts as
   * received, so nothing the previous process may have accepted passes again.
   */
  constructor(size: number = DEFAULT_REPLAY_WINDOW, rejectUpTo = 0) {
    checkReplayWindowSize(size);
    this.size = size;
    if (!isUint32(rejectUpTo)) throw new EspError('ESP_BAD_INPUT', `rejectUpTo must be 0..2^32-1, got ${rejectUpTo}`);
    if (rejectUpTo > 0) {
      this.#highest = rejectUpTo;
      this.#bits = replayRingAllSeen(size);
    }
  }

  /** The highest authenticated sequence number so far (0 before the first packet). */
  get highest(): number {
    return this.#highest;
  }

  /** Read-only pre-check (RFC 4303 §3.4.3). Sequence number 0 is never valid with 32-bit numbers. */
  check(seq: number): ReplayVerdict {
    return replayCheck(this.size, this.#highest, this.#bits, seq);
  }

  /** Marks seq as received; call only after its ICV verified and check(seq) said 'ok'. */
  commit(seq: number): void {
    this.#bits = replayCommit(this.size, this.#highest, this.#bits, seq);
    if (seq > this.#highest) this.#highest = seq;
  }
}
