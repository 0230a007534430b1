// ESP wire format (RFC 4303 §2): header SPI‖Seq, payload, padding 1,2,3,…, Pad Length, Next Header, ICV.
// Constants and small big-endian helpers shared by seal.ts, open.ts and the codecs.
/** SPI (4) + Sequence Number (4). */
export const ESP_HEADER_LEN = 8;
export const ESP_SPI_OFFSET = 0;
export const ESP_SEQ_OFFSET = 4;
/** Pad Length (1) + Next Header (1). */
export const ESP_TRAILER_LEN = 2;
export const ESP_MAX_PAD = 255;
/** RFC 4303 §2.4: Pad Length and Next Header end a 4-octet word. */
export const ESP_ALIGN = 4;
/** An ESP packet must fit an IP payload. */
export const ESP_MAX_LEN = 0xffff;
/** RFC 4303 §2.2: 32-bit sequence numbers, never wrapped (no ESN in IMS: Annex H has no ESN field). */
export const ESP_MAX_SEQ = 0xffffffff;
/** RFC 4303 §2.1: SPI 0 is never sent; 1–255 are reserved by IANA. */
export const ESP_MIN_SPI = 256;

/** IANA protocol numbers used here. */
export const IPPROTO_IPV4 = 4;
/** IANA protocol number of TCP. */
export const IPPROTO_TCP = 6;
/** IANA protocol number of UDP. */
export const IPPROTO_UDP = 17;
/** IANA protocol number of IPv6 (in IPv4, or as a tunnel-mode Next Header). */
export const IPPROTO_IPV6 = 41;
export const IPPROTO_FRAGMENT = 44;
/** IANA protocol number of ESP. */
export const IPPROTO_ESP = 50;
/** RFC 4303 §2.6: "no next header", a dummy packet. */
export const IPPROTO_NONE = 59;

export function readU16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

export function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

export function writeU16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/**
 * RFC 4303 §2.4: the fewest pad octets so that payload ‖ padding ‖ PadLength ‖ NextHeader is a
 * multiple of `align` = max(cipher block, 4). (The IV is a multiple of 4, so counting it or not
 * for the 4-octet rule changes nothing.)
 */
export function padLength(payloadLen: number, align: number): number {
  const r = (payloadLen + ESP_TRAILER_LEN) % align;
  return r === 0 ? 0 : align - r;
}

/** RFC 4303 §2.4 default padding content: 1, 2, 3, … */
export function writePadding(b: Uint8Array, off: number, n: number): void {
  for (let i = 0; i < n; i++) b[off + i] = i + 1;
}

/** True when the n octets at off read 1, 2, 3, … (RFC 4303 §2.4: the receiver should check). */
export function paddingIsDefault(b: Uint8Array, off: number, n: number): boolean {
  let bad = 0;
  for (let i = 0; i < n; i++) bad |= b[off + i]! ^ (i + 1);
  return bad === 0;
}

export function isUint32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
