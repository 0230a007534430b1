// IPv4 (RFC 791) and IPv6 (RFC 8200) header codec: build a packet around a payload, parse one back.
// Parsing order: version → header length → total/payload length → IPv4 header checksum →
// fragments (RFC 4303 §3.4.1: drop) → addresses. Extension headers are not walked: an IPv6 next
// header we do not know is returned as the protocol.
import { addressOrThrow, formatAddress } from './addr.ts';
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
  if (src.length === 4) {
    const total = IPV4_HEADER_LEN + p.payload.length;
    if (total > 0xffff) throw misuse(`IPv4 packet of ${total} octets exceeds 65535`);
    const b = new Uint8Array(total);
    b[0] = 0x45; // version 4, IHL 5
    writeU16(b, 2, total);
    // RFC 6864 §4.1: an atomic datagram (DF set) may carry ID 0; we never fragment.
    writeU16(b, 6, IPV4_DF);
    b[8] = ttl;
    b[9] = p.protocol;
    b.set(src, 12);
    b.set(dst, 16);
    writeU16(b, 10, finish(sum16(b, 0, IPV4_HEADER_LEN)));
    b.set(p.payload, IPV4_HEADER_LEN);
    return b;
  }
  if (p.payload.length > 0xffff) throw misuse(`IPv6 payload of ${p.payload.length} octets exceeds 65535 (no jumbograms)`);
  const b = new Uint8Array(IPV6_HEADER_LEN + p.payload.length);
  b[0] = 0x60; // version 6, traffic class 0, flow label 0
  writeU16(b, 4, p.payload.length);
  b[6] = p.protocol;
  b[7] = ttl;
  b.set(src, 8);
  b.set(dst, 24);
  b.set(p.payload, IPV6_HEADER_LEN);
  return b;
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
      src: formatAddress(b.subarray(12, 16)),
      dst: formatAddress(b.subarray(16, 20)),
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
      src: formatAddress(b.subarray(8, 24)),
      dst: formatAddress(b.subarray(24, 40)),
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
