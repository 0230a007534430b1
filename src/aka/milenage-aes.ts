// The AES-128 block cipher E_K of Milenage (TS 35.206 §4.1), from node:crypto as aes-128-ecb without
// padding. createCipheriv costs more than the blocks one Milenage computation encrypts (two to six), so a
// context is kept for a K that comes back: a USIM answering challenges, a load generator's common K, the
// HSS's vectors for a lab's shared K.
//
// Why reusing one context is safe: in ECB each block is encrypted on its own (no IV, no chaining), and
// with padding off an update() of whole blocks returns exactly as many octets as it was given, keeping
// nothing back (OpenSSL buffers only a partial block). Every input here is 16, 64 or 80 octets, so after
// each update the context holds the key schedule and nothing of the data. A kept context is never
// finalised until it is evicted. Tests: milenage-aes.test.ts (FIPS-197 block, many calls, fresh-context equality).
//
// Which K are kept: only one seen again among the last few that missed. Per-subscriber keys in turn
// (an HSS, a load generator with a key per UE) would otherwise evict a context at every call, and
// contexts that live a little while cost the garbage collector more than a fresh one per call: those get
// a one-off context, finalised at once, as before.
import { createCipheriv, type Cipher } from 'node:crypto';

/** Contexts kept, most recently used first: enough for a lab's handful of shared keys. */
export const AES_CONTEXT_SLOTS = 8;
/** Keys that missed, remembered (copies, wiped when overwritten) to tell a returning K from a passing one. */
const RECENT_MISSES = 8;

interface Slot {
  /** Our own copy of K (wiped when the slot is evicted). */
  readonly k: Uint8Array;
  readonly cipher: Cipher;
}

const slots: Slot[] = [];
const recent = new Uint8Array(16 * RECENT_MISSES);
let recentCount = 0;
let recentNext = 0;
let oneOff: Cipher | undefined;

// Over all 16 octets, without an early exit: how long the lookup takes says nothing about K.
function sameKey(a: Uint8Array, at: number, b: Uint8Array): boolean {
  let d = 0;
  for (let i = 0; i < 16; i++) d |= a[at + i]! ^ b[i]!;
  return d === 0;
}

function newContext(k: Uint8Array): Cipher {
  const cipher = createCipheriv('aes-128-ecb', k, null);
  cipher.setAutoPadding(false);
  return cipher;
}

/**
 * An AES-128-ECB context keyed with `k` (16 octets, checked by the caller): a kept one or a one-off. Feed it
 * whole 16-octet blocks only (a partial block would stay buffered in it), and hand it to aesDone() after
 * the computation, never to final().
 */
export function aesEcb(k: Uint8Array): Cipher {
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (!sameKey(s.k, 0, k)) continue;
    if (i > 0) {
      slots.splice(i, 1);
      slots.unshift(s);
    }
    return s.cipher;
  }
  for (let r = 0; r < recentCount; r++) {
    if (!sameKey(recent, 16 * r, k)) continue;
    // Seen again: keep a context for it (and forget the miss).
    recent.fill(0, 16 * r, 16 * r + 16);
    const cipher = newContext(k);
    if (slots.length >= AES_CONTEXT_SLOTS) evict(slots.pop()!);
    slots.unshift({ k: Uint8Array.from(k), cipher });
    return cipher;
  }
  recent.set(k, 16 * recentNext);
  recentNext = (recentNext + 1) % RECENT_MISSES;
  if (recentCount < RECENT_MISSES) recentCount++;
  oneOff = newContext(k);
  return oneOff;
}

/** Ends a computation: a one-off context is finalised (OpenSSL frees and clears it now); a kept one stays. */
export function aesDone(cipher: Cipher): void {
  if (cipher !== oneOff) return;
  oneOff = undefined;
  cipher.final();
}

// final() frees the OpenSSL context now (cleared) rather than when the garbage collector gets to it.
function evict(s: Slot): void {
  s.k.fill(0);
  s.cipher.final();
}

/** Forgets every kept context and remembered miss, wiping the copies of K (tests; a process dropping all its keys). */
export function clearAesContexts(): void {
  for (const s of slots) evict(s);
  slots.length = 0;
  recent.fill(0);
  recentCount = 0;
  recentNext = 0;
}

/** How many contexts are kept (tests). */
export function aesContextCount(): number {
  return slots.length;
}
