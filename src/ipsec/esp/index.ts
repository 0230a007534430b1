/**
 * imsec/esp: the userspace ESP engine (RFC 4303, RFC 3948): per-SA seal/open with anti-replay, IP/UDP
 * codecs, RFC 3948 classification and mode framing. Pure: no sockets, timers or clocks.
 *
 * @example
 * ```ts
 * import { expandKeys } from 'imsec/ipsec';
 * import { IPPROTO_UDP, createInbound, createOutbound } from 'imsec/esp';
 * const keys = expandKeys(ik, ck, 'hmac-sha-1-96', 'aes-cbc');   // 33.203 Annex I
 * const sa = { spi: 0x1000, alg: 'hmac-sha-1-96', ealg: 'aes-cbc', keys } as const;
 * const esp = createOutbound(sa).seal(udpSegment, IPPROTO_UDP);
 * const r = createInbound(sa).open(esp);   // { ok: true, seq: 1, nextHeader: 17, payload } or { ok: false, drop }
 * ```
 * @module
 */
import type { EncryptionAlg, IntegrityAlg } from '../algorithms.ts';
import type { EspKeys } from '../keys.ts';
import type { PayloadWriter } from './seal.ts';

export type { PayloadWriter } from './seal.ts';

export { EspError, type EspErrorCode } from './errors.ts';

/** Why open() or the SA layer dropped a packet; each is a per-SA counter. */
export type EspDrop = 'short' | 'malformed' | 'unknown-spi' | 'replay' | 'outside-window' | 'icv' | 'padding' | 'selector' | 'dummy';

/** What open() did with a packet: the payload and its Next Header, or the drop reason. */
export type EspOpenResult = { ok: true; seq: number; nextHeader: number; payload: Uint8Array } | { ok: false; drop: EspDrop; seq?: number };

/** The sending side of one SA. Not safe for concurrent use. */
export interface EspOutbound {
  readonly spi: number;
  readonly lastSeq: number;
  readonly exhausted: boolean;
  /** SPI‖Seq‖IV‖ciphertext‖ICV; throws EspError 'ESP_SEQ_EXHAUSTED' past 2^32-1. A PayloadWriter writes the payload in place. */
  seal(payload: Uint8Array | PayloadWriter, nextHeader: number): Uint8Array;
}

/** The receiving side of one SA. open() never throws; the payload may share memory with its input. */
export interface EspInbound {
  readonly spi: number;
  readonly highestSeq: number;
  open(esp: Uint8Array): EspOpenResult;
}

/** What seal/open need of an SA: SPI, the algorithm pair, the Annex I keys, the replay window size. */
export interface EspSaCrypto {
  spi: number;
  alg: IntegrityAlg;
  ealg: EncryptionAlg;
  keys: EspKeys;
  replayWindow?: number;
}

export { createInbound, createOutbound, type InboundOptions, type OutboundOptions } from './sa.ts';

/** An IP packet's addresses in text, its protocol and its payload. */
export interface IpPacket {
  version: 4 | 6;
  src: string;
  dst: string;
  protocol: number;
  payload: Uint8Array;
}
export { buildIpPacket, parseIpPacket } from './ip.ts';

/** A parsed UDP datagram (see parseUdp). */
export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  checksumOk?: boolean;
}
export { buildUdp, parseUdp, parseTcp, type TcpSegment } from './udp.ts';
export { parseAddress, formatAddress, addressFamily } from './addr.ts';

/** RFC 3948 §2.3 NAT-keepalive payload. */
export const NAT_KEEPALIVE: Uint8Array = Uint8Array.of(0xff);
/** What a datagram on the ESP-in-UDP port is (RFC 3948 §2.2), see classifyEncapPayload. */
export type EncapKind = 'keepalive' | 'non-esp' | 'esp' | 'malformed';
export { classifyEncapPayload } from './udp-encap.ts';

/** An outer packet as parseWire sees it: ESP (maybe in UDP), a keepalive or non-ESP datagram, another protocol, or malformed. */
export type WirePacket =
  | { kind: 'esp'; src: string; dst: string; encap?: { srcPort: number; dstPort: number }; esp: Uint8Array; spi: number; seq: number }
  | { kind: 'keepalive' | 'non-esp'; src: string; dst: string; encap: { srcPort: number; dstPort: number } }
  | { kind: 'other'; src: string; dst: string; protocol: number }
  | { kind: 'malformed'; reason: string };

/** The transport segment inside an opened ESP packet, with the inner addresses (parseInner). */
export interface InnerSegment {
  src: string;
  dst: string;
  protocol: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}
export { sealToWire, parseWire, parseInner, type WireSegment } from './framing.ts';

export {
  ESP_HEADER_LEN,
  ESP_MAX_SEQ,
  ESP_MIN_SPI,
  IPPROTO_ESP,
  IPPROTO_IPV4,
  IPPROTO_IPV6,
  IPPROTO_NONE,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from './wire.ts';
export { ReplayWindow, type ReplayVerdict } from './replay-window.ts';
