// What AES-GCM (RFC 4106) and AES-GMAC (RFC 4543) share: the 16-octet key and 4-octet salt,
// the nonce salt ‖ explicit IV (8), the IV source, and the GCM contexts. They differ only in what
// is AAD and what is encrypted. Node cannot re-nonce a GCM context, so each packet makes one (the
// key schedule is cached in the KeyObject).
import { createCipheriv, createDecipheriv, createSecretKey, type CipherGCM, type DecipherGCM, type KeyObject } from 'node:crypto';
import { ENCRYPTION, SALT_LEN } from '../../algorithms.ts';
import { ESP_ALIGN, ESP_HEADER_LEN } from '../wire.ts';
import { CounterIv, overrideInto, type IvOverride } from './iv.ts';

// Sizes from the algorithm table (GCM and GMAC share them: RFC 4106 §3.1/§6, RFC 4543 §3.1).
export const GCM_IV_LEN = ENCRYPTION['aes-gcm'].ivLen;
export const GCM_ICV_LEN = ENCRYPTION['aes-gcm'].icvLen;
export const GCM_SALT_LEN = SALT_LEN;
/** Offset of the explicit IV in an ESP packet. */
export const GCM_IV_OFF = ESP_HEADER_LEN;

export abstract class GcmCore {
  readonly ivLen = GCM_IV_LEN;
  readonly icvLen = GCM_ICV_LEN;
  readonly blockLen = 1;
  readonly align = ESP_ALIGN;
  readonly #key: KeyObject;
  /** salt ‖ IV, rewritten per packet. */
  readonly #nonce: Uint8Array;
  readonly #counter = new CounterIv();
  readonly #ivOverride: IvOverride | undefined;

  constructor(key: Uint8Array, salt: Uint8Array, ivOverride?: IvOverride) {
    this.#key = createSecretKey(key);
    this.#nonce = new Uint8Array(GCM_SALT_LEN + GCM_IV_LEN);
    this.#nonce.set(salt, 0);
    this.#ivOverride = ivOverride;
  }

  /** Writes a fresh explicit IV into `pkt` and returns the encrypting context for its nonce. */
  protected cipherFor(pkt: Uint8Array, seq: number): CipherGCM {
    if (this.#ivOverride) overrideInto(this.#ivOverride, pkt, GCM_IV_OFF, GCM_IV_LEN);
    else this.#counter.write(pkt, GCM_IV_OFF, seq);
    this.#nonce.set(pkt.subarray(GCM_IV_OFF, GCM_IV_OFF + GCM_IV_LEN), GCM_SALT_LEN);
    return createCipheriv('aes-128-gcm', this.#key, this.#nonce, { authTagLength: GCM_ICV_LEN });
  }

  /** The decrypting context for `pkt`'s explicit IV, with its tag (the last 16 octets) set. */
  protected decipherFor(pkt: Uint8Array): DecipherGCM {
    this.#nonce.set(pkt.subarray(GCM_IV_OFF, GCM_IV_OFF + GCM_IV_LEN), GCM_SALT_LEN);
    const d = createDecipheriv('aes-128-gcm', this.#key, this.#nonce, { authTagLength: GCM_ICV_LEN });
    d.setAuthTag(pkt.subarray(pkt.length - GCM_ICV_LEN));
    return d;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `${this.constructor.name} { [keys redacted] }`;
  }
}
