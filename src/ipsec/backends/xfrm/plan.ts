// What the kernel gets for one 33.203 SA (spec digest §6.2, §13, §15A, §17): the XFRM SA
// (algorithms by their Linux names, AEAD key ‖ salt, 96-bit HMAC truncation, tunnel + ESP-in-UDP
// for UDP-enc-tun) and its policy (selector = the SA's addresses and port pair, protocol any,
// one template). Every selector carries imsec's ownership tag in xfrm_selector.user. Pure.
import { isIP } from 'node:net';
import { encryptionInfo, integrityInfo, SALT_LEN } from '../../algorithms.ts';
import { canonicalAddress, type Sa } from '../../sa.ts';
import { NAT_T_PORT, type SaParams } from '../../types.ts';
import type { Addr } from '../backend.ts';
import { XfrmError } from './errors.ts';
import type { PolicyDir, PolicySpec, SaAlgorithms, SaSpec, TmplSpec, XfrmMode } from './messages.ts';
import type { Family, XfrmSelector } from './structs.ts';

/**
 * The tag in xfrm_selector.user of everything imsec installs: 0x1a5e in the high half ("imsec"),
 * the backend's instance number (0..65535) in the low half. The kernel keeps the field and
 * ignores it when matching packets; reconcile deletes only entries with this backend's tag.
 */
export const TAG_MAGIC = 0x1a5e_0000;
export const ownerTag = (instance: number): number => (TAG_MAGIC | (instance & 0xffff)) >>> 0;
export const isImsecTag = (user: number): boolean => (user & 0xffff_0000) >>> 0 === TAG_MAGIC;

function keySalt(key: Uint8Array, salt: Uint8Array | undefined, what: string): Uint8Array {
  if (!salt || salt.length !== SALT_LEN) throw new XfrmError('XFRM_BAD_PARAMS', `${what} needs a 4-octet salt (RFC 4106/4543)`);
  const out = new Uint8Array(key.length + SALT_LEN);
  out.set(key);
  out.set(salt, key.length);
  return out;
}

/**
 * Linux names, ICV/truncation bits (the algorithm table's) and key material (spec digest §13; same
 * as key-export's `ip xfrm` commands). The
 * keys are fresh copies (never views: the SA's keys may be Buffers, whose slice() shares memory);
 * the caller zeroes them (wipeAlgorithms) after building the message.
 */
export function xfrmAlgorithms(p: SaParams): SaAlgorithms {
  const k = p.keys;
  const x = encryptionInfo(p.ealg).xfrm;
  const a = integrityInfo(p.alg).xfrm;
  if (x.kind === 'aead') return { aead: { name: x.name, key: keySalt(k.ckEsp, k.salt, p.ealg), icvBits: x.icvBits } };
  if (a.kind === 'aead') return { aead: { name: a.name, key: keySalt(k.ikEsp, k.salt, p.alg), icvBits: a.icvBits } };
  if (a.kind !== 'auth') throw new XfrmError('XFRM_BAD_PARAMS', `alg=${p.alg} is only valid with ealg=aes-gcm, got ealg=${p.ealg}`);
  if (x.kind !== 'crypt') throw new XfrmError('XFRM_BAD_PARAMS', `ealg=${p.ealg} has no XFRM cipher`);
  const auth = { name: a.name, key: new Uint8Array(k.ikEsp), truncBits: a.truncBits };
  const crypt = { name: x.name, key: new Uint8Array(k.ckEsp) };
  return { auth, crypt };
}

export function wipeAlgorithms(a: SaAlgorithms): void {
  a.auth?.key.fill(0);
  a.crypt?.key.fill(0);
  a.aead?.key.fill(0);
}

export const familyOf = (addr: string): Family => (isIP(addr) === 6 ? 6 : 4);
export const xfrmModeOf = (p: SaParams): XfrmMode => (p.mode === 'udp-enc-tunnel' ? 'tunnel' : 'transport');

/** The addresses the selector sees: the inner ones in tunnel mode (spec digest §15A point 4). */
export function innerOf(p: SaParams): { src: string; dst: string } {
  return p.mode === 'udp-enc-tunnel' ? { src: p.innerSrc ?? p.src, dst: p.innerDst ?? p.dst } : { src: p.src, dst: p.dst };
}

/** Selector of spec digest §6.2: full-length prefixes, the SA's port pair, protocol any (UDP and TCP). */
export function selectorOf(p: SaParams, tag: number): XfrmSelector {
  const inner = innerOf(p);
  const family = familyOf(inner.src);
  const plen = family === 4 ? 32 : 128;
  return {
    family,
    src: canonicalAddress(inner.src),
    dst: canonicalAddress(inner.dst),
    prefixSrc: plen,
    prefixDst: plen,
    sport: p.srcPort,
    dport: p.dstPort,
    proto: 0,
    user: tag,
  };
}

/** Where the kernel SA really points: the configured peer, or a NAT-learned one (setPeerEncap). */
export interface KernelPeer {
  /** Outer destination address of the SA (its identity with the SPI), RFC 5952 text. */
  readonly dst: string;
  /** ESP-in-UDP ports (tunnel mode). */
  readonly encap?: { readonly sport: number; readonly dport: number };
}

export function configuredPeer(p: SaParams): KernelPeer {
  const dst = canonicalAddress(p.dst);
  if (p.mode !== 'udp-enc-tunnel') return { dst };
  const e = p.encap ?? { srcPort: NAT_T_PORT, dstPort: NAT_T_PORT };
  return { dst, encap: { sport: e.srcPort, dport: e.dstPort } };
}

/** Outbound SA after the peer moved (Annex M, spec digest §15A point 6): new dst and dport. */
export function outboundPeerAt(p: SaParams, peer: Addr): KernelPeer {
  const c = configuredPeer(p);
  return { dst: canonicalAddress(peer.address), ...(c.encap ? { encap: { sport: c.encap.sport, dport: peer.port } } : {}) };
}

/** Inbound SA after the peer moved: the kernel compares arriving source ports with encap sport. */
export function inboundPeerAt(p: SaParams, peer: Addr): KernelPeer {
  const c = configuredPeer(p);
  return { dst: c.dst, ...(c.encap ? { encap: { sport: peer.port, dport: c.encap.dport } } : {}) };
}

/** Hard lifetime in whole seconds from `from` (ms) to `expiresAt` (ms); 0 = none; at least 1. */
export function hardSeconds(expiresAt: number | undefined, from: number): number {
  if (expiresAt === undefined) return 0;
  return Math.max(1, Math.ceil((expiresAt - from) / 1000));
}

export interface SaPlanOptions {
  readonly tag: number;
  readonly reqid: number;
  readonly peer: KernelPeer;
  readonly hardSeconds: number;
  /** Anti-replay window (RFC 4303 §3.4.3); the params' value or the 33.203 default. */
  readonly replayWindow: number;
  readonly replay?: SaSpec['replay'];
}

/** NEWSA/UPDSA content for one SA (with key copies: wipe spec.algs after use). */
export function saSpecOf(sa: Sa, o: SaPlanOptions): SaSpec {
  const p = sa.params;
  return {
    family: familyOf(p.src),
    src: p.src,
    dst: o.peer.dst,
    spi: p.spi,
    reqid: o.reqid,
    mode: xfrmModeOf(p),
    sel: selectorOf(p, o.tag),
    algs: xfrmAlgorithms(p),
    ...(o.peer.encap ? { encap: o.peer.encap } : {}),
    replayWindow: o.replayWindow,
    hardSeconds: o.hardSeconds,
    ...(o.replay ? { replay: o.replay } : {}),
  };
}

/**
 * The template of an SA's policy. Outbound: pinned to this SA (reqid + SPI), so the backend
 * chooses which SA set carries a port pair that several sets share. Inbound: any of our SAs
 * (reqid 0, SPI 0); the kernel still checks the SA's own selector against the packet.
 */
export function tmplOf(sa: Sa, dir: PolicyDir, reqid: number, peer: KernelPeer): TmplSpec {
  const p = sa.params;
  const out = dir === 'out';
  return {
    family: familyOf(p.src),
    src: canonicalAddress(p.src),
    dst: canonicalAddress(peer.dst),
    spi: out ? p.spi : 0,
    reqid: out ? reqid : 0,
    mode: xfrmModeOf(p),
  };
}

export function policySpecOf(sel: XfrmSelector, dir: PolicyDir, tmpl: TmplSpec, priority: number, hard: number): PolicySpec {
  return { sel, dir, priority, hardSeconds: hard, tmpl };
}

/** Identity of a policy in the kernel: direction + selector (the tag included). */
export function policyKey(dir: PolicyDir, s: XfrmSelector): string {
  return `${dir}|${s.family}|${s.src}/${s.prefixSrc}|${s.dst}/${s.prefixDst}|${s.sport}|${s.dport}|${s.proto}|${s.user}`;
}

export const tmplKey = (t: TmplSpec): string => `${t.src}>${t.dst}|${t.spi}|${t.reqid}|${t.mode}`;
