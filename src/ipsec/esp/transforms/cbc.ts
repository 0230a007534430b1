// Ciphers for the traditional transforms: AES-128-CBC (RFC 3602), 3DES-EDE-CBC (RFC 2451), NULL (RFC 2410).
// CBC runs on an OpenSSL context per direction (key schedule once per context). The context
// chains from the previous packet's last ciphertext block C; a fresh explicit IV is applied by
// feeding P1 ⊕ IV ⊕ C (encrypt) or correcting the first output block by ⊕ C ⊕ IV (decrypt), which
// is exactly CBC with that IV. ESP padding is done by the caller, so auto-padding is off.
// Memory (issue 9 §2): only the ciphers used most recently keep their contexts (CONTEXT_CACHE); an
// OpenSSL context pair costs ~3 KB of native memory, and a P-CSCF holding 100k sets uses most of
// them once per registration. A cipher pushed out keeps its key and makes a new context (with
// C = 0) on its next packet: the same number of context creations for signalling traffic.
import { createCipheriv, createDecipheriv, type Cipher, type Decipher } from 'node:crypto';
import { cbcInfo } from '../../algorithms.ts';
import { EspError } from '../errors.ts';
import { overrideInto, randomInto, type IvOverride } from './iv.ts';

export interface EspCipher {
  readonly ivLen: number;
  readonly blockLen: number;
  /** Writes a fresh IV at pkt[ivOff] and encrypts pkt[ptOff, ptOff+len) in place. */
  encrypt(pkt: Uint8Array, ivOff: number, ptOff: number, len: number): void;
  /** Decrypts pkt[ctOff, ctOff+len) with the IV at pkt[ivOff]; len is a multiple of blockLen. */
  decrypt(pkt: Uint8Array, ivOff: number, ctOff: number, len: number): Uint8Array;
}

export class NullCipher implements EspCipher {
  readonly ivLen = 0;
  readonly blockLen = 1;
  encrypt(): void {}
  decrypt(pkt: Uint8Array, _ivOff: number, ctOff: number, len: number): Uint8Array {
    return pkt.subarray(ctOff, ctOff + len);
  }
}

type CbcName = 'aes-128-cbc' | 'des-ede3-cbc';

export class CbcCipher implements EspCipher {
  readonly ivLen: number;
  readonly blockLen: number;
  readonly #name: CbcName;
  /** The raw key (private): contexts are made from it on use, again after an eviction from CONTEXT_CACHE. */
  readonly #key: Uint8Array;
  readonly #ivOverride: IvOverride | undefined;
  #enc: Cipher | undefined;
  #dec: Decipher | undefined;
  /**
   * Last ciphertext block each context has chained to (its initial IV is zero): enc ‖ dec. Made
   * with the first context and dropped with them (an idle cipher holds no array for it).
   */
  #chains: Uint8Array | undefined;

  /** `borrowKey`: the caller keeps `key` unchanged for the cipher's life (a copy made for it), so it is not copied. */
  constructor(name: CbcName, key: Uint8Array, ivOverride?: IvOverride, borrowKey = false) {
    this.#name = name;
    const info = cbcInfo(name);
    this.blockLen = info.blockLen;
    this.ivLen = info.ivLen; // RFC 3602 §2.1 / RFC 2451 §2.3: IV = one block
    this.#key = borrowKey ? key : Uint8Array.from(key);
    this.#ivOverride = ivOverride;
  }

  encrypt(pkt: Uint8Array, ivOff: number, ptOff: number, len: number): void {
    const bl = this.blockLen;
    if (this.#ivOverride) overrideInto(this.#ivOverride, pkt, ivOff, bl);
    else randomInto(pkt, ivOff, bl);
    // Contexts are made on use: an installed but idle SA costs no OpenSSL context.
    const enc = (this.#enc ??= this.#context(true) as Cipher);
    touch(this);
    const chains = (this.#chains ??= new Uint8Array(2 * bl));
    for (let i = 0; i < bl; i++) pkt[ptOff + i] = pkt[ptOff + i]! ^ pkt[ivOff + i]! ^ chains[i]!;
    const ct = enc.update(pkt.subarray(ptOff, ptOff + len));
    if (ct.length !== len) throw new EspError('ESP_UNSUPPORTED', `${this.#name}: unexpected output length`);
    pkt.set(ct, ptOff);
    for (let i = 0; i < bl; i++) chains[i] = ct[len - bl + i]!;
  }

  decrypt(pkt: Uint8Array, ivOff: number, ctOff: number, len: number): Uint8Array {
    const bl = this.blockLen;
    const dec = (this.#dec ??= this.#context(false) as Decipher);
    touch(this);
    const pt = dec.update(pkt.subarray(ctOff, ctOff + len));
    const chains = (this.#chains ??= new Uint8Array(2 * bl));
    for (let i = 0; i < bl; i++) pt[i] = pt[i]! ^ chains[bl + i]! ^ pkt[ivOff + i]!;
    for (let i = 0; i < bl; i++) chains[bl + i] = pkt[ctOff + len - bl + i]!;
    return pt;
  }

  /** Whether this cipher holds an OpenSSL context now (tests, memory checks). */
  get hasContexts(): boolean {
    return this.#enc !== undefined || this.#dec !== undefined;
  }

  /** Drops both contexts (GC frees them); the next packet of either direction makes a new one chaining from 0. */
  releaseContexts(): void {
    this.#enc = undefined;
    this.#dec = undefined;
    this.#chains = undefined;
  }

  #context(encrypt: boolean): Cipher | Decipher {
    const zero = new Uint8Array(this.blockLen);
    const c = encrypt ? createCipheriv(this.#name, this.#key, zero) : createDecipheriv(this.#name, this.#key, zero);
    c.setAutoPadding(false);
    return c;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `CbcCipher { ${this.#name} }`;
  }
}

/** How many CBC ciphers keep their OpenSSL contexts (most recently used first out of the rest). */
export const CONTEXT_CACHE = 256;
/** The ciphers holding contexts, least recently used first (a Map keeps insertion order). */
const withContexts = new Map<CbcCipher, true>();

/** Marks `c` as just used; past CONTEXT_CACHE, the least recently used cipher gives its contexts up. */
function touch(c: CbcCipher): void {
  if (withContexts.delete(c)) {
    withContexts.set(c, true);
    return;
  }
  withContexts.set(c, true);
  if (withContexts.size <= CONTEXT_CACHE) return;
  const oldest = withContexts.keys().next().value as CbcCipher;
  withContexts.delete(oldest);
  oldest.releaseContexts();
}
