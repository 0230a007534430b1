// IPv4 (RFC 791) and IPv6 (RFC 8200) header codec: build a packet around a payload, parse one back.
// Parsing order: version → header length → total/payload length → IPv4 header checksum →
// fragments (RFC 4303 §3.4.1: drop) → addresses. Extension headers are not walked: an IPv6 next
// header we do not know is returned as the protocol.
import { addressOrThrow, formatAddressAt } from './addr.ts';
import { finish, sum16 } from './checksum.ts';
import { EspError } from './errors.ts';
import type { IpPacket } from './index.ts';
import { IPPROTO_FRAGMENT, readU16, writeU16 } from './wire.ts';

export const IPV4_HEADER_LEN = 20;
export const IPV6_HEADER_LEN = 40;
export const DEFAULT_TTL = 64;
const IPV4_DF = 0x4000;
const IPV4_MF = 0x2000;
const IPV4_OFFSET_MASK = 0x1fff;

const misuse = (m: string): Error => new EspError('ESP_BAD_INPUT', m);

/** An IPv4 or IPv6 packet (the version follows the addresses) around `payload`; IPv4 with its header checksum. */
export function buildIpPacket(p: { src: string; dst: string; protocol: number; payload: Uint8Array; ttl?: number }): Uint8Array {
  const src = addressOrThrow(p.src, 'src', misuse);
  const dst = addressOrThrow(p.dst, 'dst', misuse);
  if (src.length !== dst.length) throw misuse(`src ${p.src} and dst ${p.dst} are of different IP versions`);
  if (!Number.isInteger(p.protocol) || p.protocol < 0 || p.protocol > 255) throw misuse(`protocol must be 0..255, got ${p.protocol}`);
  const ttl = p.ttl ?? DEFAULT_TTL;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw misuse(`ttl must be 0..255, got ${ttl}`);
  if (src.length === 4 && IPV4_HEADER_LEN + p.payload.length > 0xffff)
    throw misuse(`IPv4 packet of ${IPV4_HEADER_LEN + p.payload.length} octets exceeds 65535`);
  if (src.length === 16 && p.payload.length > 0xffff)
    throw misuse(`IPv6 payload of ${p.payload.length} octets exceeds 65535 (no jumbograms)`);
  const hlen = src.length === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
  const b = new Uint8Array(hlen + p.payload.length);
  const addrs = new Uint8Array(32);
  addrs.set(src, 0);
  addrs.set(dst, 16);
  writeIpHeader(b, 0, addrs, src.length, p.protocol, p.payload.length, ttl);
  b.set(p.payload, hlen);
  return b;
}

/**
 * Writes an IPv4 (alen 4) or IPv6 (alen 16) header at b[off] for a payload of `payloadLen` octets,
 * source address at addrs[0, alen), destination at addrs[16, 16 + alen); IPv4 with its header
 * checksum. Every header octet is written (b may be unzeroed). Returns the header length. The
 * caller has checked protocol, ttl and length (buildIpPacket, framing).
 */
export function writeIpHeader(
  b: Uint8Array,
  off: number,
  addrs: Uint8Array,
  alen: number,
  protocol: number,
  payloadLen: number,
  ttl = DEFAULT_TTL,
): number {
  if (alen === 4) {
    const total = IPV4_HEADER_LEN + payloadLen;
    b[off] = 0x45; // version 4, IHL 5
    b[off + 1] = 0;
    writeU16(b, off + 2, total);
    // RFC 6864 §4.1: an atomic datagram (DF set) may carry ID 0; we never fragment.
    writeU16(b, off + 4, 0);
    writeU16(b, off + 6, IPV4_DF);
    b[off + 8] = ttl;
    b[off + 9] = protocol;
    writeU16(b, off + 10, 0);
    for (let i = 0; i < 4; i++) {
      b[off + 12 + i] = addrs[i]!;
      b[off + 16 + i] = addrs[16 + i]!;
    }
    writeU16(b, off + 10, finish(sum16(b, off, off + IPV4_HEADER_LEN)));
    return IPV4_HEADER_LEN;
  }
  b[off] = 0x60; // version 6, traffic class 0, flow label 0
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = 0;
  writeU16(b, off + 4, payloadLen);
  b[off + 6] = protocol;
  b[off + 7] = ttl;
  for (let i = 0; i < 16; i++) {
    b[off + 8 + i] = addrs[i]!;
    b[off + 24 + i] = addrs[16 + i]!;
  }
  return IPV6_HEADER_LEN;
}

/** Parses an IP packet or says why not (the reason feeds parseWire's 'malformed'). */
export function decodeIp(b: Uint8Array): IpPacket | { error: string } {
  if (b.length < 1) return { error: 'ip: empty' };
  const version = b[0]! >> 4;
  if (version === 4) {
    if (b.length < IPV4_HEADER_LEN) return { error: 'ipv4: short header' };
    const ihl = (b[0]! & 0x0f) * 4;
    if (ihl < IPV4_HEADER_LEN) return { error: 'ipv4: bad IHL' };
    const total = readU16(b, 2);
    if (total < ihl || total > b.length) return { error: 'ipv4: bad total length' };
    if (finish(sum16(b, 0, ihl)) !== 0) return { error: 'ipv4: bad header checksum' };
    const frag = readU16(b, 6);
    if (frag & IPV4_MF || frag & IPV4_OFFSET_MASK) return { error: 'ipv4: fragment' };
    return {
      version: 4,
      src: formatAddressAt(b, 12, 4),
      dst: formatAddressAt(b, 16, 4),
      protocol: b[9]!,
      payload: b.subarray(ihl, total), // octets past total length (link padding) are ignored
    };
  }
  if (version === 6) {
    if (b.length < IPV6_HEADER_LEN) return { error: 'ipv6: short header' };
    const plen = readU16(b, 4);
    if (plen === 0 && b.length > IPV6_HEADER_LEN) return { error: 'ipv6: jumbogram not supported' };
    if (IPV6_HEADER_LEN + plen > b.length) return { error: 'ipv6: bad payload length' };
    const nh = b[6]!;
    if (nh === IPPROTO_FRAGMENT) return { error: 'ipv6: fragment' };
    return {
      version: 6,
      src: formatAddressAt(b, 8, 16),
      dst: formatAddressAt(b, 24, 16),
      protocol: nh,
      payload: b.subarray(IPV6_HEADER_LEN, IPV6_HEADER_LEN + plen),
    };
  }
  return { error: `ip: version ${version}` };
}

/** The header fields and payload of an IPv4 or IPv6 packet; undefined when malformed or fragmented. */
export function parseIpPacket(b: Uint8Array): IpPacket | undefined {
  const r = decodeIp(b);
  return 'error' in r ? undefined : r;
}
