// Integrity: HMAC-MD5-96 (RFC 2403) and HMAC-SHA-1-96 (RFC 2404), ICV = leftmost 96 bits of
// HMAC (RFC 2104) over SPI‖Seq‖IV‖ciphertext; and NULL integrity (only for the RFC 3602 ESP vectors).
// Speed: node cannot clone an HMAC state, so HMAC is built from two one-shot crypto.hash calls over
// a precomputed K⊕ipad block and a K⊕opad‖digest buffer, with latin1-string outputs (a Buffer
// output costs a fresh ArrayBuffer, ~350 ns per call): ≈1 µs per 1 KB packet against ≈2 µs for createHmac.
import { createHash, hash } from 'node:crypto';
import { equalBytes } from '../../../util/bytes.ts';
import { hmac96Info } from '../../algorithms.ts';

export interface EspIntegrity {
  readonly icvLen: number;
  /** Writes the ICV of pkt[0, macEnd) at pkt[macEnd]. */
  sign(pkt: Uint8Array, macEnd: number): void;
  /** Constant-time check of the ICV at pkt[macEnd] against pkt[0, macEnd). */
  verify(pkt: Uint8Array, macEnd: number): boolean;
}

type Digest = 'md5' | 'sha1';
/** The digest as a latin1 ('binary') string: one char per octet, no ArrayBuffer allocated. */
const oneShot: (alg: Digest, data: Uint8Array) => string =
  typeof hash === 'function' ? (alg, data) => hash(alg, data, 'binary') : (alg, data) => createHash(alg).update(data).digest('binary');

// Shared scratch for K⊕ipad ‖ message (synchronous use only); the ipad block is wiped after each use.
let scratch = Buffer.allocUnsafeSlow(64 + 2048);

export class Hmac96 implements EspIntegrity {
  readonly icvLen: number;
  readonly #alg: Digest;
  /** RFC 2104 "B": the digest's block size (64 for MD5 and SHA-1). */
  readonly #block: number;
  /** One allocation per SA: K⊕ipad (64) ‖ K⊕opad (64) ‖ inner digest (≤ 20) ‖ computed ICV (12). */
  readonly #state: Buffer;
  /** View: K⊕opad ‖ inner digest, the outer hash input. */
  readonly #outer: Buffer;
  /** View: the computed ICV, for the constant-time compare. */
  readonly #icv: Buffer;

  constructor(alg: Digest, key: Uint8Array) {
    // Sizes from the algorithm table: block B, digest length L, ICV 96 bits (RFC 2403/2404).
    const { hmac, icvLen } = hmac96Info(alg);
    const block = hmac.blockLen;
    // Keys here are 16 or 20 octets (Annex I), never longer than the block: no pre-hashing needed.
    if (key.length > block) throw new RangeError('HMAC keys longer than the block are not used in ESP');
    this.#alg = alg;
    this.#block = block;
    this.icvLen = icvLen;
    const outerLen = block + hmac.digestLen;
    this.#state = Buffer.alloc(block + outerLen + icvLen);
    for (let i = 0; i < block; i++) {
      const k = key[i] ?? 0;
      this.#state[i] = k ^ 0x36;
      this.#state[block + i] = k ^ 0x5c;
    }
    this.#outer = this.#state.subarray(block, block + outerLen);
    this.#icv = this.#state.subarray(block + outerLen);
  }

  /** HMAC(K, data) as a latin1 string (RFC 2104: H(K⊕opad ‖ H(K⊕ipad ‖ data))). */
  #mac(data: Uint8Array): string {
    const b = this.#block;
    const n = b + data.length;
    if (scratch.length < n) scratch = Buffer.allocUnsafeSlow(n);
    this.#state.copy(scratch, 0, 0, b); // K⊕ipad
    scratch.set(data, b);
    const inner = oneShot(this.#alg, scratch.subarray(0, n));
    scratch.fill(0, 0, b);
    this.#outer.write(inner, b, 'latin1');
    return oneShot(this.#alg, this.#outer);
  }

  /** RFC 2403/2404: the ICV is the leftmost 96 bits. */
  #icvInto(out: Uint8Array, off: number, data: Uint8Array): void {
    const mac = this.#mac(data);
    for (let i = 0; i < this.icvLen; i++) out[off + i] = mac.charCodeAt(i);
  }

  sign(pkt: Uint8Array, macEnd: number): void {
    this.#icvInto(pkt, macEnd, pkt.subarray(0, macEnd));
  }

  verify(pkt: Uint8Array, macEnd: number): boolean {
    this.#icvInto(this.#icv, 0, pkt.subarray(0, macEnd));
    return equalBytes(this.#icv, pkt.subarray(macEnd, macEnd + this.icvLen));
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Hmac96 { ${this.#alg} }`;
  }
}

export class NullIntegrity implements EspIntegrity {
  readonly icvLen = 0;
  sign(): void {}
  verify(): boolean {
    return true;
  }
}
