// UDP (RFC 768) with the pseudo-header checksum for IPv4 and IPv6 (RFC 8200 §8.1), and a minimal
// TCP header reader (RFC 793: ports, data offset, checksum) for inner segments.
import { addressOrThrow, parseAddress } from './addr.ts';
import { transportChecksum } from './checksum.ts';
import { EspError } from './errors.ts';
import type { UdpDatagram } from './index.ts';
import { IPPROTO_TCP, IPPROTO_UDP, readU16, writeU16 } from './wire.ts';

export const UDP_HEADER_LEN = 8;
export const TCP_MIN_HEADER_LEN = 20;

const misuse = (m: string): Error => new EspError('ESP_BAD_INPUT', m);

function checkPort(p: number, field: string): void {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw misuse(`${field} must be 0..65535, got ${p}`);
}

/** A UDP header and payload (RFC 768) with the checksum over the IPv4/IPv6 pseudo-header of `src` and `dst`. */
export function buildUdp(
  src: string,
  dst: string,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
  opts: { zeroChecksum?: boolean } = {},
): Uint8Array {
  const s = addressOrThrow(src, 'src', misuse);
  const d = addressOrThrow(dst, 'dst', misuse);
  if (s.length !== d.length) throw misuse(`src ${src} and dst ${dst} are of different IP versions`);
  checkPort(srcPort, 'srcPort');
  checkPort(dstPort, 'dstPort');
  const len = UDP_HEADER_LEN + payload.length;
  if (len > 0xffff) throw misuse(`UDP datagram of ${len} octets exceeds 65535`);
  // RFC 8200 §8.1: an IPv6 UDP checksum is mandatory.
  if (opts.zeroChecksum && s.length === 16) throw misuse('a zero UDP checksum is not allowed over IPv6');
  const b = new Uint8Array(len);
  writeU16(b, 0, srcPort);
  writeU16(b, 2, dstPort);
  writeU16(b, 4, len);
  b.set(payload, UDP_HEADER_LEN);
  if (!opts.zeroChecksum) {
    const c = transportChecksum(s, d, IPPROTO_UDP, b);
    writeU16(b, 6, c === 0 ? 0xffff : c); // RFC 768: a computed 0 is sent as all ones
  }
  return b;
}

/**
 * Parses a UDP datagram. checksumOk: true/false when src and dst are given and a checksum is
 * present; undefined when not checked (no addresses, or IPv4 with checksum 0 = none, RFC 768).
 * An IPv6 datagram with checksum 0 reports false (RFC 8200 §8.1).
 */
export function parseUdp(seg: Uint8Array, src?: string, dst?: string): UdpDatagram | undefined {
  if (seg.length < UDP_HEADER_LEN) return undefined;
  const len = readU16(seg, 4);
  if (len < UDP_HEADER_LEN || len > seg.length) return undefined;
  const out: UdpDatagram = { srcPort: readU16(seg, 0), dstPort: readU16(seg, 2), payload: seg.subarray(UDP_HEADER_LEN, len) };
  const s = src === undefined ? undefined : parseAddress(src);
  const d = dst === undefined ? undefined : parseAddress(dst);
  if (s && d && s.length === d.length) {
    const field = readU16(seg, 6);
    if (field === 0) {
      if (s.length === 16) out.checksumOk = false;
    } else out.checksumOk = transportChecksum(s, d, IPPROTO_UDP, seg.subarray(0, len)) === 0;
  }
  return out;
}

/** The parts of a TCP segment the selector check and capture reading need. */
export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  checksumOk?: boolean;
}

/** Reads a TCP segment's ports and payload (RFC 793 §3.1); the checksum is checked when addresses are given. */
export function parseTcp(seg: Uint8Array, src?: string, dst?: string): TcpSegment | undefined {
  if (seg.length < TCP_MIN_HEADER_LEN) return undefined;
  const off = (seg[12]! >> 4) * 4;
  if (off < TCP_MIN_HEADER_LEN || off > seg.length) return undefined;
  const out: TcpSegment = { srcPort: readU16(seg, 0), dstPort: readU16(seg, 2), payload: seg.subarray(off) };
  const s = src === undefined ? undefined : parseAddress(src);
  const d = dst === undefined ? undefined : parseAddress(dst);
  if (s && d && s.length === d.length) out.checksumOk = transportChecksum(s, d, IPPROTO_TCP, seg) === 0;
  return out;
}
