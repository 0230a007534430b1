// Mode framing: one SIP datagram over one SA ⇄ the outer packet on the wire.
// transport (33.203 main body): IP(proto 50) ‖ ESP{ UDP(ports) } , inner UDP checksum over the outer addresses.
// udp-enc-tunnel (Annex M, RFC 3948 §3.4): IP(proto 17) ‖ UDP(encap ports) ‖ ESP{ IP(inner addrs) ‖ UDP(ports) }.
// parseWire classifies an outer packet; parseInner reads the decrypted payload back to a segment.
import type { EspMode, SaParams } from '../types.ts';
import { NAT_T_PORT } from '../types.ts';
import { addressFamily } from './addr.ts';
import { EspError } from './errors.ts';
import type { EspOutbound, InnerSegment, WirePacket } from './index.ts';
import { buildIpPacket, decodeIp } from './ip.ts';
import { buildUdp, parseTcp, parseUdp } from './udp.ts';
import { classifyEncapPayload } from './udp-encap.ts';
import {
  ESP_HEADER_LEN,
  ESP_SEQ_OFFSET,
  ESP_SPI_OFFSET,
  IPPROTO_ESP,
  IPPROTO_IPV4,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  readU32,
} from './wire.ts';

/** A transport segment to send over an SA (UDP by default). */
export interface WireSegment {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  /** 17 (default): payload is the UDP payload. Any other: payload is the complete transport segment. */
  protocol?: number;
}

function innerTransport(src: string, dst: string, seg: WireSegment): { protocol: number; bytes: Uint8Array } {
  const protocol = seg.protocol ?? IPPROTO_UDP;
  if (protocol === IPPROTO_UDP) return { protocol, bytes: buildUdp(src, dst, seg.srcPort, seg.dstPort, seg.payload) };
  return { protocol, bytes: seg.payload };
}

/** Seals `seg` on `out` and frames it for the SA's mode: ESP in IP (transport) or ESP in UDP in IP (UDP-encapsulated tunnel, RFC 3948). */
export function sealToWire(
  sa: SaParams,
  out: EspOutbound,
  seg: WireSegment,
): { readonly ip: Uint8Array; readonly esp: Uint8Array; readonly udpPayload: Uint8Array } {
  if (out.spi !== sa.spi) throw new EspError('ESP_BAD_INPUT', `outbound SA spi ${out.spi} does not match SaParams spi ${sa.spi}`);
  if (sa.mode === 'transport') {
    // RFC 4303 §3.1.1: the transport header follows ESP; its checksum covers the (outer) IP addresses.
    const inner = innerTransport(sa.src, sa.dst, seg);
    const esp = out.seal(inner.bytes, inner.protocol);
    return sealed(esp, () => buildIpPacket({ src: sa.src, dst: sa.dst, protocol: IPPROTO_ESP, payload: esp }));
  }
  // Tunnel: the inner header carries the ultimate addresses (RFC 4303 §3.1.2); spec digest §15A point 4.
  const innerSrc = sa.innerSrc ?? sa.src;
  const innerDst = sa.innerDst ?? sa.dst;
  const t = innerTransport(innerSrc, innerDst, seg);
  const innerIp = buildIpPacket({ src: innerSrc, dst: innerDst, protocol: t.protocol, payload: t.bytes });
  const esp = out.seal(innerIp, addressFamily(innerSrc) === 4 ? IPPROTO_IPV4 : IPPROTO_IPV6);
  // RFC 3948 §2.1: over IPv4 the UDP checksum should be zero; IPv6 requires one (RFC 8200 §8.1).
  const v4 = addressFamily(sa.src) === 4;
  return sealed(esp, () => {
    const udp = buildUdp(sa.src, sa.dst, sa.encap?.srcPort ?? NAT_T_PORT, sa.encap?.dstPort ?? NAT_T_PORT, esp, { zeroChecksum: v4 });
    return buildIpPacket({ src: sa.src, dst: sa.dst, protocol: IPPROTO_UDP, payload: udp });
  });
}

/**
 * The result of a seal. The whole outer packet (`ip`) is only needed for pcap and raw IPv4
 * sends, so it is built on first use: a socket send needs only the ESP bytes, and building the
 * outer headers (an IPv6 UDP checksum over the whole packet) on every send was wasted work.
 */
function sealed(
  esp: Uint8Array,
  buildIp: () => Uint8Array,
): { readonly ip: Uint8Array; readonly esp: Uint8Array; readonly udpPayload: Uint8Array } {
  let ip: Uint8Array | undefined;
  return {
    get ip() {
      return (ip ??= buildIp());
    },
    esp,
    udpPayload: esp,
  };
}

function espFields(esp: Uint8Array): { spi: number; seq: number } | string {
  if (esp.length < ESP_HEADER_LEN) return 'esp: shorter than SPI and sequence number';
  const spi = readU32(esp, ESP_SPI_OFFSET);
  if (spi === 0) return 'esp: SPI 0'; // RFC 4303 §2.1: never sent on the wire
  return { spi, seq: readU32(esp, ESP_SEQ_OFFSET) };
}

/**
 * Classifies an outer packet. UDP is treated as RFC 3948 when either port is an encapsulation port
 * (the P-CSCF side listens on 4500; the UE side is whatever port the NAT mapped).
 */
export function parseWire(ip: Uint8Array, opts: { encapPorts?: number[] } = {}): WirePacket {
  const p = decodeIp(ip);
  if ('error' in p) return { kind: 'malformed', reason: p.error };
  const { src, dst } = p;
  if (p.protocol === IPPROTO_ESP) {
    const f = espFields(p.payload);
    return typeof f === 'string' ? { kind: 'malformed', reason: f } : { kind: 'esp', src, dst, esp: p.payload, ...f };
  }
  if (p.protocol === IPPROTO_UDP) {
    const ports = opts.encapPorts ?? [NAT_T_PORT];
    const u = parseUdp(p.payload, src, dst);
    if (!u) return { kind: 'malformed', reason: 'udp: bad header or length' };
    if (!ports.includes(u.dstPort) && !ports.includes(u.srcPort)) return { kind: 'other', src, dst, protocol: p.protocol };
    // A present but wrong checksum, or a zero checksum over IPv6, means a damaged datagram.
    if (u.checksumOk === false) return { kind: 'malformed', reason: 'udp: bad checksum' };
    const encap = { srcPort: u.srcPort, dstPort: u.dstPort };
    const kind = classifyEncapPayload(u.payload);
    if (kind === 'keepalive' || kind === 'non-esp') return { kind, src, dst, encap };
    if (kind === 'malformed') return { kind: 'malformed', reason: 'udp-encap: neither keepalive, non-ESP marker nor ESP' };
    const f = espFields(u.payload);
    return typeof f === 'string' ? { kind: 'malformed', reason: f } : { kind: 'esp', src, dst, encap, esp: u.payload, ...f };
  }
  return { kind: 'other', src, dst, protocol: p.protocol };
}

function transportSegment(protocol: number, bytes: Uint8Array, src: string, dst: string): InnerSegment | undefined {
  if (protocol === IPPROTO_UDP) {
    const u = parseUdp(bytes, src, dst);
    // ESP authenticated the bytes, but a wrong transport checksum still means a broken sender (Linux drops it too).
    if (!u || u.checksumOk === false) return undefined;
    return { src, dst, protocol, srcPort: u.srcPort, dstPort: u.dstPort, payload: u.payload };
  }
  if (protocol === IPPROTO_TCP) {
    const t = parseTcp(bytes, src, dst);
    if (!t || t.checksumOk === false) return undefined;
    return { src, dst, protocol, srcPort: t.srcPort, dstPort: t.dstPort, payload: t.payload };
  }
  return undefined;
}

/** Reads the decrypted ESP payload back to a UDP/TCP segment; undefined when it does not fit the mode. */
export function parseInner(
  mode: EspMode,
  nextHeader: number,
  decrypted: Uint8Array,
  outer: { src: string; dst: string },
): InnerSegment | undefined {
  if (mode === 'transport') return transportSegment(nextHeader, decrypted, outer.src, outer.dst);
  if (nextHeader !== IPPROTO_IPV4 && nextHeader !== IPPROTO_IPV6) return undefined;
  const ip = decodeIp(decrypted);
  if ('error' in ip) return undefined;
  if (ip.version !== (nextHeader === IPPROTO_IPV4 ? 4 : 6)) return undefined;
  return transportSegment(ip.protocol, ip.payload, ip.src, ip.dst);
}
