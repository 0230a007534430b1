// UDP (RFC 768) with the pseudo-header checksum for IPv4 and IPv6 (RFC 8200 §8.1), and a minimal
// TCP header reader (RFC 793: ports, data offset, checksum) for inner segments.
import { addressOrThrow, parseAddress } from './addr.ts';
import { finish, pseudoSumAt, sum16 } from './checksum.ts';
import { EspError } from './errors.ts';
import type { UdpDatagram } from './index.ts';
import { IPPROTO_TCP, IPPROTO_UDP, readU16, writeU16 } from './wire.ts';

export const UDP_HEADER_LEN = 8;
export const TCP_MIN_HEADER_LEN = 20;

const misuse = (m: string): Error => new EspError('ESP_BAD_INPUT', m);

export function checkPort(p: number, field: string): void {
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
  b.set(payload, UDP_HEADER_LEN);
  const addrs = new Uint8Array(32);
  addrs.set(s, 0);
  addrs.set(d, 16);
  writeUdpHeader(b, 0, addrs, s.length, srcPort, dstPort, payload.length, opts.zeroChecksum === true);
  return b;
}

/**
 * Writes the UDP header at b[off] for the payload already at b[off + 8, off + 8 + payloadLen), with
 * the checksum over the pseudo-header of the addresses at addrs[0, alen) and addrs[16, 16 + alen)
 * (as ip.ts writeIpHeader takes them), or 0 when `zeroChecksum`. The caller has checked the ports,
 * the length and that a zero checksum is not over IPv6 (buildUdp, framing).
 */
export function writeUdpHeader(
  b: Uint8Array,
  off: number,
  addrs: Uint8Array,
  alen: number,
  srcPort: number,
  dstPort: number,
  payloadLen: number,
  zeroChecksum: boolean,
): void {
  const len = UDP_HEADER_LEN + payloadLen;
  writeU16(b, off, srcPort);
  writeU16(b, off + 2, dstPort);
  writeU16(b, off + 4, len);
  writeU16(b, off + 6, 0);
  if (zeroChecksum) return;
  const c = finish(sum16(b, off, off + len, pseudoSumAt(addrs, 0, 16, alen, IPPROTO_UDP, len)));
  writeU16(b, off + 6, c === 0 ? 0xffff : c); // RFC 768: a computed 0 is sent as all ones
}

/**
 * Parses a UDP datagram. checksumOk: true/false when src and dst are given and a checksum is
 * present; undefined when not checked (no addresses, or IPv4 with checksum 0 = none, RFC 768).
 * An IPv6 datagram with checksum 0 reports false (RFC 8200 §8.1).
 */
export function parseUdp(seg: Uint8Array, src?: string, dst?: string): UdpDatagram | undefined {
  const a = addressOctets(src, dst);
  return a ? parseUdpAt(seg, a.addrs, 0, 16, a.alen) : parseUdpAt(seg);
}

/** src at octet 0 and dst at octet 16 of one buffer, for the *At parsers; undefined when either is missing or the families differ. */
function addressOctets(src?: string, dst?: string): { addrs: Uint8Array; alen: number } | undefined {
  const s = src === undefined ? undefined : parseAddress(src);
  const d = dst === undefined ? undefined : parseAddress(dst);
  if (!s || !d || s.length !== d.length) return undefined;
  const addrs = new Uint8Array(32);
  addrs.set(s, 0);
  addrs.set(d, 16);
  return { addrs, alen: s.length };
}

/**
 * parseUdp with the addresses as octets, `alen` (4 or 16) each at addrs[srcOff] and addrs[dstOff]
 * (e.g. the inner IP header itself): the per-packet form, no address text parsed. Without
 * addresses the checksum is not checked.
 */
export function parseUdpAt(seg: Uint8Array, addrs?: Uint8Array, srcOff = 0, dstOff = 0, alen = 0): UdpDatagram | undefined {
  if (seg.length < UDP_HEADER_LEN) return undefined;
  const len = readU16(seg, 4);
  if (len < UDP_HEADER_LEN || len > seg.length) return undefined;
  const out: UdpDatagram = { srcPort: readU16(seg, 0), dstPort: readU16(seg, 2), payload: seg.subarray(UDP_HEADER_LEN, len) };
  if (addrs !== undefined) {
    const field = readU16(seg, 6);
    if (field === 0) {
      if (alen === 16) out.checksumOk = false;
    } else out.checksumOk = finish(sum16(seg, 0, len, pseudoSumAt(addrs, srcOff, dstOff, alen, IPPROTO_UDP, len))) === 0;
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
  const a = addressOctets(src, dst);
  return a ? parseTcpAt(seg, a.addrs, 0, 16, a.alen) : parseTcpAt(seg);
}

/** parseTcp with the addresses as octets (see parseUdpAt). */
export function parseTcpAt(seg: Uint8Array, addrs?: Uint8Array, srcOff = 0, dstOff = 0, alen = 0): TcpSegment | undefined {
  if (seg.length < TCP_MIN_HEADER_LEN) return undefined;
  const off = (seg[12]! >> 4) * 4;
  if (off < TCP_MIN_HEADER_LEN || off > seg.length) return undefined;
  const out: TcpSegment = { srcPort: readU16(seg, 0), dstPort: readU16(seg, 2), payload: seg.subarray(off) };
  if (addrs !== undefined)
    out.checksumOk = finish(sum16(seg, 0, seg.length, pseudoSumAt(addrs, srcOff, dstOff, alen, IPPROTO_TCP, seg.length))) === 0;
  return out;
}
