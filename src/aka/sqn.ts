// SQN management, TS 33.102 Annex C: SQN = SEQ ‖ IND (48 bits; IND the low bits, 5 by default).
// Network side (C.3): next SQN after the last one issued, refusal at exhaustion, resync.
// USIM side (C.2): the SEQ_MS array per IND slot, optional age limit L and jump limit Δ.

// Annex C was not re-read (spec digest §2.2, UNVERIFIED in detail): the rules below are a
// documented simple form, each choice stated where it is made. SQNs are plain numbers: 48 bits
// are exact in a double (< 2^53), and numbers survive JSON and SQLite; bigint is accepted on input.
import { AkaError, akaInputError, checkLen } from './errors.ts';
import { SQN_LEN } from './milenage.ts';

/** SQN is a 48-bit counter (TS 33.102 Annex C). */
export const SQN_BITS = 48;
/** Default IND length in bits (TS 33.102 C.3.2: 5, an array of 32 slots). */
export const DEFAULT_IND_LEN = 5;
/** The largest SQN, 2^48 − 1. */
export const SQN_MAX = 2 ** 48 - 1;

// ---------------------------------------------------------------------------------------------
// Converters

/** Accepts a number, bigint or 6 octets; returns the SQN as a number (range-checked). */
export function toSqn(v: number | bigint | Uint8Array, field = 'sqn'): number {
  if (v instanceof Uint8Array) return sqnFromBytes(v, field);
  const n = typeof v === 'bigint' && v >= 0n && v <= BigInt(SQN_MAX) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > SQN_MAX) {
    throw akaInputError(field, `must be an integer 0..2^48-1, got ${String(v)}`);
  }
  return n;
}

/** 48-bit SQN → 6 octets, big-endian. */
export function sqnToBytes(sqn: number | bigint): Uint8Array {
  let v = toSqn(sqn);
  const out = new Uint8Array(SQN_LEN);
  for (let i = SQN_LEN - 1; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

/** 6 octets, big-endian → 48-bit SQN. */
export function sqnFromBytes(b: Uint8Array, field = 'sqn'): number {
  checkLen(b, SQN_LEN, field);
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

function checkIndLen(indLen: number): void {
  if (!Number.isInteger(indLen) || indLen < 0 || indLen > 16) throw akaInputError('indLen', `must be an integer 0..16, got ${indLen}`);
}

/** Highest SEQ that fits beside an IND of `indLen` bits: 2^(48-indLen) - 1. */
export function maxSeq(indLen = DEFAULT_IND_LEN): number {
  checkIndLen(indLen);
  return 2 ** (SQN_BITS - indLen) - 1;
}

/** SQN → (SEQ, IND). */
export function splitSqn(sqn: number, indLen = DEFAULT_IND_LEN): { seq: number; ind: number } {
  checkIndLen(indLen);
  const slots = 2 ** indLen;
  const v = toSqn(sqn);
  return { seq: Math.floor(v / slots), ind: v % slots };
}

/** (SEQ, IND) → SQN. */
export function joinSqn(seq: number, ind: number, indLen = DEFAULT_IND_LEN): number {
  if (!Number.isInteger(seq) || seq < 0 || seq > maxSeq(indLen))
    throw akaInputError('seq', `must be 0..2^${SQN_BITS - indLen}-1, got ${seq}`);
  if (!Number.isInteger(ind) || ind < 0 || ind >= 2 ** indLen) throw akaInputError('ind', `must be 0..${2 ** indLen - 1}, got ${ind}`);
  return seq * 2 ** indLen + ind;
}

// ---------------------------------------------------------------------------------------------
// Network side (HE/AuC), Annex C.3. The state is one number: the last SQN issued (0: none yet).

/** How the HSS builds SQN = SEQ || IND (TS 33.102 Annex C.1.1.2): the IND length and how IND is chosen per vector. */
export interface HeSqnProfile {
  /** IND length in bits (default 5). */
  readonly indLen?: number;
  /** 'cycle' (default): IND advances by one per vector, modulo 2^indLen; a number: that fixed IND. */
  readonly ind?: 'cycle' | number;
}

function profileOf(p: HeSqnProfile | number | undefined): Required<HeSqnProfile> {
  if (typeof p === 'number') return { indLen: p, ind: 'cycle' };
  return { indLen: p?.indLen ?? DEFAULT_IND_LEN, ind: p?.ind ?? 'cycle' };
}

/**
 * The SQN of the next vector, given the last one issued: SEQ + 1, IND cycling or fixed. `profile`
 * may be just the IND length. Throws AKA_SQN_EXHAUSTED instead of wrapping: a wrapped SQN is
 * refused by every USIM (and replays old values), so the subscriber needs new keys or a reset.
 */
export function nextSqnAfter(last: number | bigint, profile?: HeSqnProfile | number): number {
  const { indLen, ind: mode } = profileOf(profile);
  const { seq, ind } = splitSqn(toSqn(last, 'last'), indLen);
  if (seq + 1 > maxSeq(indLen)) {
    throw new AkaError('AKA_SQN_EXHAUSTED', `SEQ would exceed 2^${SQN_BITS - indLen}-1: this subscriber's SQN space is used up`);
  }
  return joinSqn(seq + 1, mode === 'cycle' ? (ind + 1) % 2 ** indLen : mode, indLen);
}

/**
 * Resynchronisation with the SQN_MS of a verified AUTS (33.102 §6.3.5, Annex C.3.4 in a simple
 * form): returns the new "last issued" SQN, with SEQ_HE = SEQ_MS, so the next vector carries
 * SEQ_MS + 1 and is fresh in every IND slot of the USIM. Never moves backwards: when the HE is
 * already ahead, the failure had another cause (age limit, a stale vector) and `last` is kept.
 */
export function resyncSqn(last: number | bigint, sqnMs: number | bigint | Uint8Array, profile?: HeSqnProfile | number): number {
  const { indLen } = profileOf(profile);
  const he = splitSqn(toSqn(last, 'last'), indLen);
  const ms = splitSqn(toSqn(sqnMs, 'sqnMs'), indLen);
  return ms.seq > he.seq ? joinSqn(ms.seq, he.ind, indLen) : toSqn(last);
}

// ---------------------------------------------------------------------------------------------
// USIM side, Annex C.2

/** What a freshness rule says about one SQN: fresh, or why not (not_fresh = replay, too_old = age limit L, too_far = jump limit Δ). */
export type SqnVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: 'not_fresh' | 'too_old' | 'too_far' };

/** A USIM freshness rule. `check` changes nothing; `accept` runs only after the MAC verified. */
export interface SqnFreshness {
  check(sqn: number): SqnVerdict;
  accept(sqn: number): void;
  /** SQN_MS for the AUTS: the highest SQN accepted so far (0 when none). */
  highest(): number;
}

/** Options of the Annex C.2 array of a USIM ({@link SqnArray}). */
export interface SqnArrayOptions {
  /** IND length in bits (default 5): the array has 2^indLen slots. */
  readonly indLen?: number;
  /** Starting SEQ_MS per slot (e.g. restored state); default all 0. */
  readonly seqMs?: readonly number[];
  /** Age limit L: refuse when (highest SEQ_MS) − SEQ > L. Disabled when absent (the default). */
  readonly ageLimit?: number;
  /** Jump limit Δ (wrap-around protection): refuse when SEQ − (highest SEQ_MS) > Δ. Disabled when absent. */
  readonly maxJump?: number;
  /** Test UEs: `check` always passes (accept still records, never lowering a slot). */
  readonly acceptAny?: boolean;
}

/** Annex C.2: accept SQN = SEQ ‖ IND when SEQ > SEQ_MS[IND] (plus the optional limits). */
export class SqnArray implements SqnFreshness {
  readonly indLen: number;
  readonly #seqMs: number[];
  readonly #opts: SqnArrayOptions;
  #highest = 0;

  constructor(opts: SqnArrayOptions = {}) {
    this.indLen = opts.indLen ?? DEFAULT_IND_LEN;
    checkIndLen(this.indLen);
    const slots = 2 ** this.indLen;
    if (opts.seqMs !== undefined && opts.seqMs.length !== slots) {
      throw akaInputError('seqMs', `must have ${slots} entries (2^indLen), got ${opts.seqMs.length}`);
    }
    this.#seqMs = opts.seqMs ? [...opts.seqMs] : new Array<number>(slots).fill(0);
    this.#seqMs.forEach((seq, ind) => {
      const sqn = joinSqn(seq, ind, this.indLen); // range check
      if (seq > 0) this.#highest = Math.max(this.#highest, sqn);
    });
    this.#opts = opts;
  }

  check(sqn: number): SqnVerdict {
    if (this.#opts.acceptAny === true) return { ok: true };
    const { seq, ind } = splitSqn(sqn, this.indLen);
    const top = splitSqn(this.#highest, this.indLen).seq;
    if (seq <= this.#seqMs[ind]!) return { ok: false, reason: 'not_fresh' };
    if (this.#opts.ageLimit !== undefined && top - seq > this.#opts.ageLimit) return { ok: false, reason: 'too_old' };
    if (this.#opts.maxJump !== undefined && seq - top > this.#opts.maxJump) return { ok: false, reason: 'too_far' };
    return { ok: true };
  }

  accept(sqn: number): void {
    const { seq, ind } = splitSqn(sqn, this.indLen);
    this.#seqMs[ind] = Math.max(this.#seqMs[ind]!, seq);
    this.#highest = Math.max(this.#highest, sqn);
  }

  highest(): number {
    return this.#highest;
  }

  /** A copy of SEQ_MS per IND slot (to persist the USIM state). */
  snapshot(): number[] {
    return [...this.#seqMs];
  }
}

/** The simple rule (no IND): accept only SQN > SQN_MS, then SQN_MS := SQN. */
export class SqnFloor implements SqnFreshness {
  #sqnMs: number;
  readonly #acceptAny: boolean;

  constructor(sqnMs: number | bigint | Uint8Array = 0, opts: { acceptAny?: boolean } = {}) {
    this.#sqnMs = toSqn(sqnMs, 'sqnMs');
    this.#acceptAny = opts.acceptAny === true;
  }

  check(sqn: number): SqnVerdict {
    return this.#acceptAny || sqn > this.#sqnMs ? { ok: true } : { ok: false, reason: 'not_fresh' };
  }

  accept(sqn: number): void {
    this.#sqnMs = Math.max(this.#sqnMs, sqn);
  }

  highest(): number {
    return this.#sqnMs;
  }
}
