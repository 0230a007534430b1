// A cipher (CBC or NULL) plus an integrity algorithm (HMAC-*-96) wrapped to look like an AEAD
// (strongSwan create_traditional). RFC 4303 §3.3.2 / §3.4.4: encrypt then MAC over
// SPI‖Seq‖IV‖ciphertext; on input verify the ICV first and decrypt only an authentic packet.
import { ESP_ALIGN, ESP_HEADER_LEN } from '../wire.ts';
import type { EspTransform } from '../transform.ts';
import type { EspCipher } from './cbc.ts';
import type { EspIntegrity } from './hmac-96.ts';

export class TraditionalTransform implements EspTransform {
  readonly ivLen: number;
  readonly icvLen: number;
  readonly blockLen: number;
  readonly align: number;
  readonly #cipher: EspCipher;
  readonly #integrity: EspIntegrity;

  constructor(cipher: EspCipher, integrity: EspIntegrity) {
    this.#cipher = cipher;
    this.#integrity = integrity;
    this.ivLen = cipher.ivLen;
    this.icvLen = integrity.icvLen;
    this.blockLen = cipher.blockLen;
    this.align = Math.max(cipher.blockLen, ESP_ALIGN);
  }

  seal(pkt: Uint8Array, _seq: number): void {
    const ptOff = ESP_HEADER_LEN + this.ivLen;
    const macEnd = pkt.length - this.icvLen;
    this.#cipher.encrypt(pkt, ESP_HEADER_LEN, ptOff, macEnd - ptOff);
    this.#integrity.sign(pkt, macEnd);
  }

  open(pkt: Uint8Array): Uint8Array | undefined {
    const macEnd = pkt.length - this.icvLen;
    if (!this.#integrity.verify(pkt, macEnd)) return undefined;
    const ctOff = ESP_HEADER_LEN + this.ivLen;
    return this.#cipher.decrypt(pkt, ESP_HEADER_LEN, ctOff, macEnd - ctOff);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'TraditionalTransform { [keys redacted] }';
  }
}
