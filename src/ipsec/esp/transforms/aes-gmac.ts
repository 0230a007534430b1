// AES-GMAC for ESP (RFC 4543, ENCR_NULL_AUTH_AES_GMAC): key 16 + salt 4, 8-octet explicit IV,
// 16-octet ICV; nothing is encrypted. RFC 4543 §3.3: AAD = SPI ‖ Seq ‖ IV ‖ payload ‖ padding ‖
// PadLength ‖ NextHeader, i.e. GCM with an empty plaintext over everything before the ICV.
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { ESP_ALIGN, ESP_HEADER_LEN } from '../wire.ts';
import type { EspTransform } from '../transform.ts';
import { GCM_ICV_LEN, GCM_IV_LEN, GCM_SALT_LEN } from './aes-gcm.ts';
import { CounterIv, overrideInto, type IvOverride } from './iv.ts';

export class AesGmacTransform implements EspTransform {
  readonly ivLen = GCM_IV_LEN;
  readonly icvLen = GCM_ICV_LEN;
  readonly blockLen = 1;
  readonly align = ESP_ALIGN;
  readonly #key: KeyObject;
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
    const tagOff = pkt.length - GCM_ICV_LEN;
    const c = createCipheriv('aes-128-gcm', this.#key, this.#nonce, { authTagLength: GCM_ICV_LEN });
    c.setAAD(pkt.subarray(0, tagOff));
    c.final();
    pkt.set(c.getAuthTag(), tagOff);
  }

  open(pkt: Uint8Array): Uint8Array | undefined {
    const ivOff = ESP_HEADER_LEN;
    this.#nonce.set(pkt.subarray(ivOff, ivOff + GCM_IV_LEN), GCM_SALT_LEN);
    const tagOff = pkt.length - GCM_ICV_LEN;
    const d = createDecipheriv('aes-128-gcm', this.#key, this.#nonce, { authTagLength: GCM_ICV_LEN });
    d.setAAD(pkt.subarray(0, tagOff));
    d.setAuthTag(pkt.subarray(tagOff));
    try {
      d.final();
    } catch {
      return undefined;
    }
    return pkt.subarray(ivOff + GCM_IV_LEN, tagOff);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'AesGmacTransform { [keys redacted] }';
  }
}
