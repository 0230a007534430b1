// Mode framing: one SIP datagram over one SA ⇄ the outer packet on the wire.
// transport (33.203 main body): IP(proto 50) ‖ ESP{ UDP(ports) } , inner UDP checksum over the outer addresses.
// udp-enc-tunnel (Annex M, RFC 3948 §3.4): IP(proto 17) ‖ UDP(encap ports) ‖ ESP{ IP(inner addrs) ‖ UDP(ports) }.
// parseWire classifies an outer packet; parseInner reads the decrypted payload back to a segment.
import type { EspMode, SaParams } from '../types.ts';
import { NAT_T_PORT } from '../types.ts';
import { addressFamily, writeAddress } from './addr.ts';
import { EspError } from './errors.ts';
import type { EspOutbound, InnerSegment, WirePacket } from './index.ts';
import type { PayloadWriter } from './seal.ts';
import { buildIpPacket, decodeIp, IPV4_HEADER_LEN, IPV6_HEADER_LEN, writeIpHeader } from './ip.ts';
import { buildUdp, checkPort, parseTcpAt, parseUdp, parseUdpAt, UDP_HEADER_LEN, writeUdpHeader } from './udp.ts';
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

/**
 * Scratch for the addresses of the packet being framed: source at 0, destination at 16. One packet
 * is framed at a time (sealToWire fills it and seals synchronously; nothing else writes it).
 */
const ADDRS = new Uint8Array(32);

/** Parses src and dst into ADDRS; their common length (4 or 16), or a misuse error. */
function loadAddresses(src: string, dst: string): 4 | 16 {
  const s = writeAddress(src, ADDRS, 0);
  if (s === 0) throw misuse(`src: not an IPv4 or IPv6 address: ${JSON.stringify(String(src).slice(0, 64))}`);
  const d = writeAddress(dst, ADDRS, 16);
  if (d === 0) throw misuse(`dst: not an IPv4 or IPv6 address: ${JSON.stringify(String(dst).slice(0, 64))}`);
  if (s !== d) throw misuse(`src ${src} and dst ${dst} are of different IP versions`);
  return s;
}

const misuse = (m: string): Error => new EspError('ESP_BAD_INPUT', m);

/**
 * What goes inside the ESP packet, written in place by sealEsp: [inner IP header (tunnel)] ‖ UDP
 * header ‖ payload, or the caller's complete transport segment. The addresses are in ADDRS. Byte for
 * byte what buildIpPacket(buildUdp(…)) gives (the same header writers), without the two buffers.
 */
class InnerFrame implements PayloadWriter {
  readonly length: number;
  /** The transport protocol (the Next Header in transport mode, the inner IP protocol in tunnel mode). */
  readonly protocol: number;
  readonly #ipLen: number;
  readonly #alen: 4 | 16;
  readonly #seg: WireSegment;

  constructor(tunnel: boolean, alen: 4 | 16, seg: WireSegment) {
    const protocol = seg.protocol ?? IPPROTO_UDP;
    if (protocol === IPPROTO_UDP) {
      checkPort(seg.srcPort, 'srcPort');
      checkPort(seg.dstPort, 'dstPort');
    } else if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255) throw misuse(`protocol must be 0..255, got ${protocol}`);
    this.#ipLen = tunnel ? (alen === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN) : 0;
    this.#alen = alen;
    this.protocol = protocol;
    this.#seg = seg;
    // Oversized segments are refused by sealEsp's ESP size check (the ESP packet is larger still).
    this.length = this.#ipLen + (protocol === IPPROTO_UDP ? UDP_HEADER_LEN : 0) + seg.payload.length;
  }

  writeTo(pkt: Uint8Array, off: number): void {
    const seg = this.#seg;
    const t = off + this.#ipLen;
    if (this.protocol === IPPROTO_UDP) {
      pkt.set(seg.payload, t + UDP_HEADER_LEN);
      // RFC 4303 §3.1.1 (transport): the checksum covers the outer addresses; tunnel: the inner ones.
      writeUdpHeader(pkt, t, ADDRS, this.#alen, seg.srcPort, seg.dstPort, seg.payload.length, false);
    } else pkt.set(seg.payload, t);
    if (this.#ipLen > 0) writeIpHeader(pkt, off, ADDRS, this.#alen, this.protocol, this.length - this.#ipLen);
  }
}

/** Seals `seg` on `out` and frames it for the SA's mode: ESP in IP (transport) or ESP in UDP in IP (UDP-encapsulated tunnel, RFC 3948). */
export function sealToWire(sa: SaParams, out: EspOutbound, seg: WireSegment): SealedPacket {
  if (out.spi !== sa.spi) throw new EspError('ESP_BAD_INPUT', `outbound SA spi ${out.spi} does not match SaParams spi ${sa.spi}`);
  if (sa.mode === 'transport') {
    // RFC 4303 §3.1.1: the transport header follows ESP; its checksum covers the (outer) IP addresses.
    const frame = new InnerFrame(false, loadAddresses(sa.src, sa.dst), seg);
    return new SealedPacket(sa, out.seal(frame, frame.protocol));
  }
  // Tunnel: the inner header carries the ultimate addresses (RFC 4303 §3.1.2); spec digest §15A point 4.
  const alen = loadAddresses(sa.innerSrc ?? sa.src, sa.innerDst ?? sa.dst);
  return new SealedPacket(sa, out.seal(new InnerFrame(true, alen, seg), alen === 4 ? IPPROTO_IPV4 : IPPROTO_IPV6));
}

/**
 * The result of a seal. The whole outer packet (`ip`) is only needed for pcap and raw IPv4
 * sends, so it is built on first use: a socket send needs only the ESP bytes, and building the
 * outer headers (an IPv6 UDP checksum over the whole packet) on every send was wasted work.
 */
export class SealedPacket {
  #ip: Uint8Array | undefined;
  readonly #sa: SaParams;
  /** The ESP packet: SPI‖Seq‖IV‖ciphertext‖ICV. */
  readonly esp: Uint8Array;

  constructor(sa: SaParams, esp: Uint8Array) {
    this.#sa = sa;
    this.esp = esp;
  }

  /** What the socket sends: the ESP packet (the UDP payload on the encapsulation port, or the IP payload in transport mode). */
  get udpPayload(): Uint8Array {
    return this.esp;
  }

  /** The whole outer IP packet (built on first use). */
  get ip(): Uint8Array {
    return (this.#ip ??= outerPacket(this.#sa, this.esp));
  }
}

function outerPacket(sa: SaParams, esp: Uint8Array): Uint8Array {
  if (sa.mode === 'transport') return buildIpPacket({ src: sa.src, dst: sa.dst, protocol: IPPROTO_ESP, payload: esp });
  // RFC 3948 §2.1: over IPv4 the UDP checksum should be zero; IPv6 requires one (RFC 8200 §8.1).
  const v4 = addressFamily(sa.src) === 4;
  const udp = buildUdp(sa.src, sa.dst, sa.encap?.srcPort ?? NAT_T_PORT, sa.encap?.dstPort ?? NAT_T_PORT, esp, { zeroChecksum: v4 });
  return buildIpPacket({ src: sa.src, dst: sa.dst, protocol: IPPROTO_UDP, payload: udp });
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

/**
 * The UDP/TCP segment in `bytes` with its checksum checked over the pseudo-header of the addresses
 * at addrs[srcOff], addrs[dstOff] (`alen` each); src and dst are the same addresses in text.
 */
function transportSegment(
  protocol: number,
  bytes: Uint8Array,
  src: string,
  dst: string,
  addrs: Uint8Array | undefined,
  srcOff: number,
  dstOff: number,
  alen: number,
): InnerSegment | undefined {
  if (protocol === IPPROTO_UDP) {
    const u = parseUdpAt(bytes, addrs, srcOff, dstOff, alen);
    // ESP authenticated the bytes, but a wrong transport checksum still means a broken sender (Linux drops it too).
    if (!u || u.checksumOk === false) return undefined;
    return { src, dst, protocol, srcPort: u.srcPort, dstPort: u.dstPort, payload: u.payload };
  }
  if (protocol === IPPROTO_TCP) {
    const t = parseTcpAt(bytes, addrs, srcOff, dstOff, alen);
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
  if (mode === 'transport') {
    // The checksum covers the outer addresses (text here): parsed into the scratch, no allocation for IPv4.
    // (Addresses of unlike families leave the checksum unchecked, as parseUdp does.)
    const s = writeAddress(outer.src, ADDRS, 0);
    const known = s !== 0 && writeAddress(outer.dst, ADDRS, 16) === s;
    return transportSegment(nextHeader, decrypted, outer.src, outer.dst, known ? ADDRS : undefined, 0, 16, s);
  }
  if (nextHeader !== IPPROTO_IPV4 && nextHeader !== IPPROTO_IPV6) return undefined;
  const ip = decodeIp(decrypted);
  if ('error' in ip) return undefined;
  if (ip.version !== (nextHeader === IPPROTO_IPV4 ? 4 : 6)) return undefined;
  // The inner header's own address octets feed the checksum: no text parsed back.
  const v4 = ip.version === 4;
  return transportSegment(ip.protocol, ip.payload, ip.src, ip.dst, decrypted, v4 ? 12 : 8, v4 ? 16 : 24, v4 ? 4 : 16);
}
