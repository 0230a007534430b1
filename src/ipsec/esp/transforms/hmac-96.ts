// Integrity: HMAC-MD5-96 (RFC 2403) and HMAC-SHA-1-96 (RFC 2404), ICV = leftmost 96 bits of
// HMAC (RFC 2104) over SPI‖Seq‖IV‖ciphertext; and NULL integrity (only for the RFC 3602 ESP vectors).
// Speed: node cannot clone an HMAC state, so HMAC is built from two one-shot crypto.hash calls over
// a K⊕ipad block and a K⊕opad‖digest buffer (built per packet), with latin1-string outputs (a Buffer
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

// Shared scratch (synchronous use only): K⊕ipad ‖ message for the inner hash, K⊕opad ‖ inner digest
// for the outer one, and the computed ICV. The pads are rebuilt from the key per packet (128 XORs,
// nothing next to two hashes) and wiped after use: an SA keeps only its key (issue 9 §2: no
// native allocation per SA, which a P-CSCF holding 100k sets would pay 100k times).
let scratch = Buffer.allocUnsafeSlow(64 + 2048);
const outer = Buffer.allocUnsafeSlow(64 + 64);
const icv = Buffer.allocUnsafeSlow(64);

export class Hmac96 implements EspIntegrity {
  readonly icvLen: number;
  readonly #alg: Digest;
  /** RFC 2104 "B": the digest's block size (64 for MD5 and SHA-1). */
  readonly #block: number;
  /** RFC 2104 "L": the digest's length. */
  readonly #digestLen: number;
  /** The key (16 or 20 octets: a small array, on the V8 heap). */
  readonly #key: Uint8Array;

  /** `borrowKey`: the caller keeps `key` unchanged for the HMAC's life (a copy made for it), so it is not copied. */
  constructor(alg: Digest, key: Uint8Array, borrowKey = false) {
    // Sizes from the algorithm table: block B, digest length L, ICV 96 bits (RFC 2403/2404).
    const { hmac, icvLen } = hmac96Info(alg);
    const block = hmac.blockLen;
    // Keys here are 16 or 20 octets (Annex I), never longer than the block: no pre-hashing needed.
    if (key.length > block) throw new RangeError('HMAC keys longer than the block are not used in ESP');
    this.#alg = alg;
    this.#block = block;
    this.#digestLen = hmac.digestLen;
    this.icvLen = icvLen;
    this.#key = borrowKey ? key : Uint8Array.from(key);
  }

  /** HMAC(K, data) as a latin1 string (RFC 2104: H(K⊕opad ‖ H(K⊕ipad ‖ data))). */
  #mac(data: Uint8Array): string {
    const b = this.#block;
    const key = this.#key;
    const n = b + data.length;
    if (scratch.length < n) scratch = Buffer.allocUnsafeSlow(n);
    for (let i = 0; i < b; i++) {
      const k = key[i] ?? 0;
      scratch[i] = k ^ 0x36;
      outer[i] = k ^ 0x5c;
    }
    scratch.set(data, b);
    const inner = oneShot(this.#alg, scratch.subarray(0, n));
    scratch.fill(0, 0, b);
    outer.write(inner, b, 'latin1');
    const mac = oneShot(this.#alg, outer.subarray(0, b + this.#digestLen));
    outer.fill(0, 0, b);
    return mac;
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
    const mine = icv.subarray(0, this.icvLen);
    this.#icvInto(mine, 0, pkt.subarray(0, macEnd));
    return equalBytes(mine, pkt.subarray(macEnd, macEnd + this.icvLen));
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
