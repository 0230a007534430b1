// Outbound ESP (RFC 4303 §3.3), in order: size check → header SPI‖Seq → payload → padding 1,2,3,…
// (§2.4) → Pad Length, Next Header → transform (IV, encrypt, ICV). The packet is built in one buffer.
import { EspError } from './errors.ts';
import type { EspTransform } from './transform.ts';
import { ESP_HEADER_LEN, ESP_MAX_LEN, ESP_SEQ_OFFSET, ESP_SPI_OFFSET, ESP_TRAILER_LEN, padLength, writePadding, writeU32 } from './wire.ts';

/**
 * A payload written straight into the packet being sealed (framing.ts: the inner IP/UDP headers
 * around the SIP bytes), so that no buffer is built only to be copied into the ESP packet.
 */
export interface PayloadWriter {
  readonly length: number;
  /** Writes exactly `length` octets at pkt[off] (pkt is not zeroed). */
  writeTo(pkt: Uint8Array, off: number): void;
}

/** Octets an ESP packet needs for a payload of n octets under t. */
export function sealedLength(t: EspTransform, n: number): number {
  return ESP_HEADER_LEN + t.ivLen + n + padLength(n, t.align) + ESP_TRAILER_LEN + t.icvLen;
}

/**
 * Seals one payload with explicit SPI and sequence number (the SA object owns the counter).
 * Misuse (oversized payload, bad next header) throws EspError.
 */
export function sealEsp(t: EspTransform, spi: number, seq: number, payload: Uint8Array | PayloadWriter, nextHeader: number): Uint8Array {
  if (!Number.isInteger(nextHeader) || nextHeader < 0 || nextHeader > 255) {
    throw new EspError('ESP_BAD_INPUT', `nextHeader must be 0..255, got ${nextHeader}`);
  }
  const total = sealedLength(t, payload.length);
  if (total > ESP_MAX_LEN) throw new EspError('ESP_BAD_INPUT', `payload of ${payload.length} octets does not fit an ESP packet`);
  const pad = padLength(payload.length, t.align);
  // allocUnsafe: every octet is written below (header, IV by the transform, payload, pad, trailer, ICV).
  const pkt = Buffer.allocUnsafe(total);
  writeU32(pkt, ESP_SPI_OFFSET, spi);
  writeU32(pkt, ESP_SEQ_OFFSET, seq);
  let o = ESP_HEADER_LEN + t.ivLen;
  if (payload instanceof Uint8Array) pkt.set(payload, o);
  else payload.writeTo(pkt, o);
  o += payload.length;
  writePadding(pkt, o, pad);
  o += pad;
  pkt[o++] = pad;
  pkt[o++] = nextHeader;
  t.seal(pkt, seq);
  return pkt;
}
