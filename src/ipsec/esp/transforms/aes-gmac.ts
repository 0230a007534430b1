// AES-GMAC for ESP (RFC 4543, ENCR_NULL_AUTH_AES_GMAC): key 16 + salt 4, 8-octet explicit IV,
// 16-octet ICV; nothing is encrypted. RFC 4543 §3.3: AAD = SPI ‖ Seq ‖ IV ‖ payload ‖ padding ‖
// PadLength ‖ NextHeader, i.e. GCM with an empty plaintext over everything before the ICV.
import type { EspTransform } from '../transform.ts';
import { GCM_ICV_LEN, GCM_IV_LEN, GCM_IV_OFF, GcmCore } from './gcm-core.ts';

export class AesGmacTransform extends GcmCore implements EspTransform {
  seal(pkt: Uint8Array, seq: number): void {
    const c = this.cipherFor(pkt, seq);
    const tagOff = pkt.length - GCM_ICV_LEN;
    c.setAAD(pkt.subarray(0, tagOff));
    c.final();
    pkt.set(c.getAuthTag(), tagOff);
  }

  open(pkt: Uint8Array): Uint8Array | undefined {
    const d = this.decipherFor(pkt);
    const tagOff = pkt.length - GCM_ICV_LEN;
    d.setAAD(pkt.subarray(0, tagOff));
    try {
      d.final();
    } catch {
      return undefined;
    }
    return pkt.subarray(GCM_IV_OFF + GCM_IV_LEN, tagOff);
  }
}
