// AES-GCM with a 16-octet ICV for ESP (RFC 4106): key 16 + salt 4; nonce = salt ‖ explicit IV (8);
// AAD = SPI ‖ Seq (§5, 32-bit sequence numbers); payload‖padding‖trailer encrypted; padding aligns to 4.
import { ESP_HEADER_LEN } from '../wire.ts';
import type { EspTransform } from '../transform.ts';
import { GCM_ICV_LEN, GCM_IV_LEN, GCM_IV_OFF, GcmCore } from './gcm-core.ts';

export { GCM_ICV_LEN, GCM_IV_LEN, GCM_SALT_LEN } from './gcm-core.ts';

export class AesGcmTransform extends GcmCore implements EspTransform {
  seal(pkt: Uint8Array, seq: number): void {
    const c = this.cipherFor(pkt, seq);
    const ptOff = GCM_IV_OFF + GCM_IV_LEN;
    const tagOff = pkt.length - GCM_ICV_LEN;
    c.setAAD(pkt.subarray(0, ESP_HEADER_LEN));
    pkt.set(c.update(pkt.subarray(ptOff, tagOff)), ptOff);
    c.final();
    pkt.set(c.getAuthTag(), tagOff);
  }

  open(pkt: Uint8Array): Uint8Array | undefined {
    const d = this.decipherFor(pkt);
    d.setAAD(pkt.subarray(0, ESP_HEADER_LEN));
    const pt = d.update(pkt.subarray(GCM_IV_OFF + GCM_IV_LEN, pkt.length - GCM_ICV_LEN));
    try {
      d.final(); // checks the tag (constant time inside OpenSSL)
    } catch {
      pt.fill(0); // unauthenticated plaintext never leaves
      return undefined;
    }
    return pt;
  }
}
