// The fixed-layout structs of linux/xfrm.h (x86-64/aarch64 sizes, checked with offsetof against
// the uapi header): selector, id, lifetimes, usersa_info, algo/algo_auth/algo_aead, encap_tmpl,
// userpolicy_info, user_tmpl, usersa_id, userpolicy_id, replay state, user_mapping. Pure.
// Host-order fields little-endian; addresses, SPIs and ports in network order (__be16/__be32).
import { formatAddress, parseAddress } from '../../esp/addr.ts';
import { XfrmError } from './errors.ts';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_ESP = 50;
/** XFRM_INF: no byte/packet limit (0 would mean "expire at once"). */
export const XFRM_INF = 0xffff_ffff_ffff_ffffn;

export const SIZE = {
  selector: 56,
  id: 24,
  lifetimeCfg: 64,
  lifetimeCur: 32,
  usersaInfo: 224,
  algo: 68,
  algoAuth: 72,
  algoAead: 72,
  encapTmpl: 24,
  userpolicyInfo: 168,
  userTmpl: 64,
  usersaId: 24,
  userpolicyId: 64,
  replayState: 12,
  replayStateEsn: 24,
  userMapping: 64,
} as const;

export type Family = 4 | 6;
export const afOf = (f: Family): number => (f === 4 ? AF_INET : AF_INET6);
export const familyOfAf = (af: number): Family | undefined => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined);

/** xfrm_selector: which packets (addresses with prefix, ports with 0 = any, proto 0 = any). */
export interface XfrmSelector {
  readonly family: Family;
  readonly src: string;
  readonly dst: string;
  readonly prefixSrc: number;
  readonly prefixDst: number;
  readonly sport: number;
  readonly dport: number;
  readonly proto: number;
  /** xfrm_selector.user: ignored by matching, kept by the kernel; imsec's ownership tag. */
  readonly user: number;
}

export interface LifetimeCur {
  readonly bytes: number;
  readonly packets: number;
  /** Seconds since the epoch (kernel wall clock). */
  readonly addTime: number;
  readonly useTime: number;
}

export interface XfrmStats {
  readonly replayWindow: number;
  readonly replay: number;
  readonly integrityFailed: number;
}

export const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Writes a textual address into a 16-octet xfrm_address_t (IPv4 in the first 4 octets). */
export function putAddr(b: Uint8Array, off: number, addr: string, family: Family): void {
  const a = parseAddress(addr);
  if (!a || (a.length === 4) !== (family === 4))
    throw new XfrmError('XFRM_BAD_PARAMS', `not an IPv${family} address: ${JSON.stringify(addr)}`);
  b.fill(0, off, off + 16);
  b.set(a, off);
}

export function getAddr(b: Uint8Array, off: number, family: Family): string {
  return formatAddress(b.subarray(off, off + (family === 4 ? 4 : 16)));
}

export function putSelector(b: Uint8Array, off: number, s: XfrmSelector): void {
  const dv = view(b);
  putAddr(b, off, s.dst, s.family);
  putAddr(b, off + 16, s.src, s.family);
  dv.setUint16(off + 32, s.dport, false);
  dv.setUint16(off + 34, s.dport ? 0xffff : 0, false);
  dv.setUint16(off + 36, s.sport, false);
  dv.setUint16(off + 38, s.sport ? 0xffff : 0, false);
  dv.setUint16(off + 40, afOf(s.family), true);
  b[off + 42] = s.prefixDst;
  b[off + 43] = s.prefixSrc;
  b[off + 44] = s.proto;
  dv.setInt32(off + 48, 0, true);
  dv.setUint32(off + 52, s.user >>> 0, true);
}

/** The selector at `off`; undefined for a family other than AF_INET/AF_INET6 (e.g. 0 = unspec). */
export function getSelector(b: Uint8Array, off: number): XfrmSelector | undefined {
  const dv = view(b);
  const family = familyOfAf(dv.getUint16(off + 40, true));
  if (!family) return undefined;
  return {
    family,
    dst: getAddr(b, off, family),
    src: getAddr(b, off + 16, family),
    dport: dv.getUint16(off + 32, false) & dv.getUint16(off + 34, false),
    sport: dv.getUint16(off + 36, false) & dv.getUint16(off + 38, false),
    prefixDst: b[off + 42]!,
    prefixSrc: b[off + 43]!,
    proto: b[off + 44]!,
    user: dv.getUint32(off + 52, true),
  };
}

/** xfrm_lifetime_cfg with unlimited bytes/packets and the given add-expiry seconds (0 = none). */
export function putLifetimeCfg(b: Uint8Array, off: number, hardAddSeconds: number, softAddSeconds = 0): void {
  const dv = view(b);
  for (let i = 0; i < 4; i++) dv.setBigUint64(off + 8 * i, XFRM_INF, true);
  dv.setBigUint64(off + 32, BigInt(softAddSeconds), true);
  dv.setBigUint64(off + 40, BigInt(hardAddSeconds), true);
  dv.setBigUint64(off + 48, 0n, true);
  dv.setBigUint64(off + 56, 0n, true);
}

export function getHardAddExpires(b: Uint8Array, lftOff: number): number {
  return Number(view(b).getBigUint64(lftOff + 40, true));
}

export function getLifetimeCur(b: Uint8Array, off: number): LifetimeCur {
  const dv = view(b);
  const n = (i: number) => Number(dv.getBigUint64(off + 8 * i, true));
  return { bytes: n(0), packets: n(1), addTime: n(2), useTime: n(3) };
}

export function getStats(b: Uint8Array, off: number): XfrmStats {
  const dv = view(b);
  return { replayWindow: dv.getUint32(off, true), replay: dv.getUint32(off + 4, true), integrityFailed: dv.getUint32(off + 8, true) };
}

/** xfrm_algo (crypt), xfrm_algo_auth (auth + truncation bits) or xfrm_algo_aead (aead + ICV bits). */
export function encodeAlgo(kind: 'crypt' | 'auth' | 'aead', name: string, key: Uint8Array, bits?: number): Uint8Array {
  const head = kind === 'crypt' ? SIZE.algo : SIZE.algoAuth;
  const nameBytes = new TextEncoder().encode(name);
  if (nameBytes.length >= 64) throw new XfrmError('XFRM_BAD_PARAMS', `algorithm name too long: ${name}`);
  const out = new Uint8Array(head + key.length);
  out.set(nameBytes, 0);
  const dv = view(out);
  dv.setUint32(64, key.length * 8, true);
  if (kind !== 'crypt') dv.setUint32(68, bits ?? 0, true);
  out.set(key, head);
  return out;
}

/** The algorithm name of an xfrm_algo* attribute value (never its key). */
export function algoName(v: Uint8Array): string {
  const z = v.subarray(0, 64).indexOf(0);
  return new TextDecoder().decode(v.subarray(0, z >= 0 ? z : Math.min(64, v.length)));
}

export const UDP_ENCAP_ESPINUDP = 2;

export function encodeEncap(sport: number, dport: number, family: Family): Uint8Array {
  const out = new Uint8Array(SIZE.encapTmpl);
  const dv = view(out);
  dv.setUint16(0, UDP_ENCAP_ESPINUDP, true);
  dv.setUint16(2, sport, false);
  dv.setUint16(4, dport, false);
  putAddr(out, 8, family === 4 ? '0.0.0.0' : '::', family);
  return out;
}

export function decodeEncap(v: Uint8Array): { type: number; sport: number; dport: number } | undefined {
  if (v.length < SIZE.encapTmpl) return undefined;
  const dv = view(v);
  return { type: dv.getUint16(0, true), sport: dv.getUint16(2, false), dport: dv.getUint16(4, false) };
}

/** xfrm_usersa_id: (daddr, spi, family, proto) names one SA. */
export function encodeUsersaId(dst: string, spi: number, family: Family): Uint8Array {
  const out = new Uint8Array(SIZE.usersaId);
  putAddr(out, 0, dst, family);
  const dv = view(out);
  dv.setUint32(16, spi >>> 0, false);
  dv.setUint16(20, afOf(family), true);
  out[22] = IPPROTO_ESP;
  return out;
}

/** Legacy replay state (xfrm_replay_state): windows up to 32 packets. */
export interface ReplayState {
  readonly oseq: number;
  readonly seq: number;
  readonly bitmap: readonly number[];
  /** Window size (only for the ESN form). */
  readonly window?: number;
  readonly oseqHi?: number;
  readonly seqHi?: number;
}

export function encodeReplayEsn(r: ReplayState & { window: number }): Uint8Array {
  const words = Math.ceil(r.window / 32);
  const out = new Uint8Array(SIZE.replayStateEsn + 4 * words);
  const dv = view(out);
  dv.setUint32(0, words, true);
  dv.setUint32(4, r.oseq >>> 0, true);
  dv.setUint32(8, r.seq >>> 0, true);
  dv.setUint32(12, (r.oseqHi ?? 0) >>> 0, true);
  dv.setUint32(16, (r.seqHi ?? 0) >>> 0, true);
  dv.setUint32(20, r.window, true);
  for (let i = 0; i < words; i++) dv.setUint32(24 + 4 * i, (r.bitmap[i] ?? 0) >>> 0, true);
  return out;
}

export function decodeReplayEsn(v: Uint8Array): (ReplayState & { window: number }) | undefined {
  if (v.length < SIZE.replayStateEsn) return undefined;
  const dv = view(v);
  const words = dv.getUint32(0, true);
  if (v.length < SIZE.replayStateEsn + 4 * words) return undefined;
  const bitmap: number[] = [];
  for (let i = 0; i < words; i++) bitmap.push(dv.getUint32(24 + 4 * i, true));
  return {
    oseq: dv.getUint32(4, true),
    seq: dv.getUint32(8, true),
    oseqHi: dv.getUint32(12, true),
    seqHi: dv.getUint32(16, true),
    window: dv.getUint32(20, true),
    bitmap,
  };
}

export function encodeReplay(r: ReplayState): Uint8Array {
  const out = new Uint8Array(SIZE.replayState);
  const dv = view(out);
  dv.setUint32(0, r.oseq >>> 0, true);
  dv.setUint32(4, r.seq >>> 0, true);
  dv.setUint32(8, (r.bitmap[0] ?? 0) >>> 0, true);
  return out;
}

export function decodeReplay(v: Uint8Array): ReplayState | undefined {
  if (v.length < SIZE.replayState) return undefined;
  const dv = view(v);
  return { oseq: dv.getUint32(0, true), seq: dv.getUint32(4, true), bitmap: [dv.getUint32(8, true)] };
}
