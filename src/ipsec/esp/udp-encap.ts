// RFC 3948 UDP encapsulation: what the first octets of a UDP payload on the encapsulation port mean.
// §2.3 NAT-keepalive = exactly one octet 0xFF; §2.2 non-ESP marker = four zero octets (IKE, unused
// in IMS); otherwise ESP, whose SPI must not be zero (§2.1).
import type { EncapKind } from './index.ts';
import { ESP_HEADER_LEN } from './wire.ts';

export const NAT_KEEPALIVE_OCTET = 0xff;
export const NON_ESP_MARKER_LEN = 4;

/** RFC 3948 §2.2: what a datagram on the ESP-in-UDP port carries (NAT-keepalive, non-ESP marker + IKE, ESP, or malformed). */
export function classifyEncapPayload(p: Uint8Array): EncapKind {
  if (p.length === 1) return p[0] === NAT_KEEPALIVE_OCTET ? 'keepalive' : 'malformed';
  if (p.length >= NON_ESP_MARKER_LEN && p[0] === 0 && p[1] === 0 && p[2] === 0 && p[3] === 0) return 'non-esp';
  // Here the SPI (first 4 octets) is non-zero whenever 4 octets exist; ESP needs SPI‖Seq at least.
  if (p.length >= ESP_HEADER_LEN) return 'esp';
  return 'malformed';
}
