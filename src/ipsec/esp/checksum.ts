// The Internet checksum (RFC 1071) and the UDP/TCP pseudo-header sums (RFC 768, RFC 793,
// RFC 8200 §8.1 for IPv6).

/** One's-complement sum of b[start, end) as 16-bit big-endian words, added to `sum` (unfolded). */
export function sum16(b: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  return sum;
}

/** Folds carries and complements: the value to store in a checksum field. */
export function finish(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** Pseudo-header sum for a transport segment of `len` octets between src and dst (4 or 16 octets). */
export function pseudoSum(src: Uint8Array, dst: Uint8Array, protocol: number, len: number): number {
  let s = sum16(src, 0, src.length) + sum16(dst, 0, dst.length);
  // IPv4: zero ‖ protocol ‖ 16-bit length. IPv6: 32-bit length ‖ 3 zero octets ‖ next header.
  s += protocol + (src.length === 4 ? len : Math.floor(len / 0x10000) + (len & 0xffff));
  return s;
}

/** pseudoSum for addresses of `alen` (4 or 16) octets at a[srcOff] and a[dstOff] (per-packet use: no views). */
export function pseudoSumAt(a: Uint8Array, srcOff: number, dstOff: number, alen: number, protocol: number, len: number): number {
  let s = sum16(a, srcOff, srcOff + alen) + sum16(a, dstOff, dstOff + alen);
  s += protocol + (alen === 4 ? len : Math.floor(len / 0x10000) + (len & 0xffff));
  return s;
}

/** Checksum of a transport segment (its checksum field already zeroed or included for verification). */
export function transportChecksum(src: Uint8Array, dst: Uint8Array, protocol: number, seg: Uint8Array): number {
  return finish(sum16(seg, 0, seg.length, pseudoSum(src, dst, protocol, seg.length)));
}
