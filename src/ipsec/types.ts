// The shared description of one unidirectional ESP SA: what the ESP engine, the SA-set model,
// the key export and the backends all speak. Plain data; the keys are bytes and only
// ipsec/key-export.ts formats them.
import type { EncryptionAlg, IntegrityAlg } from './algorithms.ts';
import type { EspKeys } from './keys.ts';

/**
 * `transport`: ESP right after the IP header (IP protocol 50), 33.203 main body.
 * `udp-enc-tunnel`: tunnel-mode ESP inside UDP (RFC 3948), 33.203 Annex M (`mod=UDP-enc-tun`).
 */
export type EspMode = 'transport' | 'udp-enc-tunnel';

/** Maps the sec-agree `mod` value to the engine mode (`tun` without UDP is not used in IMS). */
export function modeFromMod(mod: 'trans' | 'UDP-enc-tun'): EspMode {
  return mod === 'trans' ? 'transport' : 'udp-enc-tunnel';
}

/**
 * Everything that describes one SA (33.203 §7.1): SPI, algorithms and keys, addresses and ports, mode, lifetime. Shared by the engine, the backends and key export.
 * Read it field by field: an SA set's SAs hold a compact class whose fields are getters over the set's shared part, so `{ ...params }` copies only spi and ports.
 */
export interface SaParams {
  /** SPI on the wire: chosen by the receiver of this SA; 256..2^32-1 (RFC 4303 §2.1). */
  readonly spi: number;
  /** Outer IP addresses (textual IPv4 or IPv6). In transport mode also the selector addresses. */
  readonly src: string;
  readonly dst: string;
  /** The protected SIP ports this SA carries (the selector; the inner UDP/TCP ports). */
  readonly srcPort: number;
  readonly dstPort: number;
  readonly mode: EspMode;
  /** RFC 3948 encapsulation ports (outer UDP), only for udp-enc-tunnel. Default 4500 ↔ 4500. */
  readonly encap?: { readonly srcPort: number; readonly dstPort: number };
  /**
   * Inner addresses for udp-enc-tunnel when they differ from the outer ones (a UE behind a NAT
   * uses its private address inside; spec digest §15A point 4). Default: src / dst.
   */
  readonly innerSrc?: string;
  readonly innerDst?: string;
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  readonly keys: EspKeys;
  /** Anti-replay window size for the inbound side (RFC 4303 §3.4.3): default 64, at least 32. */
  readonly replayWindow?: number;
}

/** Default anti-replay window, in packets (RFC 4303 §3.4.3 recommends 64). */
export const DEFAULT_REPLAY_WINDOW = 64;
/** Smallest anti-replay window accepted (RFC 4303 §3.4.3: at least 32). */
export const MIN_REPLAY_WINDOW = 32;
/** RFC 3948 / IKE NAT-T port, our default encapsulation port on both sides (spec digest §15A). */
export const NAT_T_PORT = 4500;

// Here, not in sa.ts, so the CLI's argument helpers can format SPIs without loading the ESP engine.
/** An SPI as 0x-prefixed, 8-digit hex (the form of tshark, `ip xfrm` and our logs). */
export function spiText(spi: number): string {
  return `0x${spi.toString(16).padStart(8, '0')}`;
}
