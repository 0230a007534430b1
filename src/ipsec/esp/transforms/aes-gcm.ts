// AES-GCM with a 16-octet ICV for ESP (RFC 4106): key 16 + salt 4; nonce = salt ‖ explicit IV (8);
// AAD = SPI ‖ Seq (§5, 32-bit sequence numbers); payload‖padding‖trailer encrypted; padding aligns to 4.
// A GCM context cannot be re-keyed with a new nonce in node, so each packet makes one (key schedule
// cached in the KeyObject only).
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { ESP_ALIGN, ESP_HEADER_LEN } from '../wire.ts';
import type { EspTransform } from '../transform.ts';
import { CounterIv, overrideInto, type IvOverride } from './iv.ts';

export const GCM_IV_LEN = 8;
export const GCM_ICV_LEN = 16;
export const GCM_SALT_LEN = 4;

export class AesGcmTransform implements EspTransform {
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

  seal(pkt: Uint8Array, seq: number): void {
    const ivOff = ESP_HEADER_LEN;
    if (this.#ivOverride) overrideInto(this.#ivOverride, pkt, ivOff, GCM_IV_LEN);
    else this.#counter.write(pkt, ivOff, seq);
    this.#nonce.set(pkt.subarray(ivOff, ivOff + GCM_IV_LEN), GCM_SALT_LEN);
    const ptOff = ivOff + GCM_IV_LEN;
    const tagOff = pkt.length - GCM_ICV_LEN;
    const c = createCipheriv('aes-128-gcm', this.#key, this.#nonce, { authTagLength: GCM_ICV_LEN });
    c.setAAD(pkt.subarray(0, ESP_HEADER_LEN));
    pkt.set(c.update(pkt.subarray(ptOff, tagOff)), ptOff);
    c.final();
    pkt.set(c.getAuthTag(), tagOff);
  }

  open(pkt: Uint8Array): Uint8Array | undefined {
    const ivOff = ESP_HEADER_LEN;
    this.#nonce.set(pkt.subarray(ivOff, ivOff + GCM_IV_LEN), GCM_SALT_LEN);
    const ctOff = ivOff + GCM_IV_LEN;
    const tagOff = pkt.length - GCM_ICV_LEN;
    const d = createDecipheriv('aes-128-gcm', this.#key, this.#nonce, { authTagLength: GCM_ICV_LEN });
    d.setAAD(pkt.subarray(0, ESP_HEADER_LEN));
    d.setAuthTag(pkt.subarray(tagOff));
    const pt = d.update(pkt.subarray(ctOff, tagOff));
    try {
      d.final(); // checks the tag (constant time inside OpenSSL)
    } catch {
      pt.fill(0); // unauthenticated plaintext never leaves
      return undefined;
    }
    return pt;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'AesGcmTransform { [keys redacted] }';
  }
}
