// XFRM netlink messages (linux/xfrm.h; ip-xfrm(8) is the same thing on the command line): build
// NEWSA/UPDSA, DELSA, GETSA (one or dump), NEWPOLICY/UPDPOLICY, DELPOLICY, GETPOLICY dump; parse
// SA and policy records, mapping and expire events. Pure. Parsed records never carry keys.
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, attrOf, decodeAttrs, encodeMessage, type NlAttr } from './netlink.ts';
import {
  IPPROTO_ESP,
  SIZE,
  afOf,
  algoName,
  decodeEncap,
  decodeReplay,
  decodeReplayEsn,
  encodeAlgo,
  encodeEncap,
  encodeReplay,
  encodeReplayEsn,
  encodeUsersaId,
  familyOfAf,
  getAddr,
  getHardAddExpires,
  getLifetimeCur,
  getSelector,
  getStats,
  putAddr,
  putLifetimeCfg,
  putSelector,
  view,
  type Family,
  type LifetimeCur,
  type ReplayState,
  type XfrmSelector,
  type XfrmStats,
} from './structs.ts';

export const XFRM_MSG = {
  NEWSA: 0x10,
  DELSA: 0x11,
  GETSA: 0x12,
  NEWPOLICY: 0x13,
  DELPOLICY: 0x14,
  GETPOLICY: 0x15,
  EXPIRE: 0x18,
  UPDPOLICY: 0x19,
  UPDSA: 0x1a,
  POLEXPIRE: 0x1b,
  MAPPING: 0x26,
} as const;

export const XFRMA = {
  ALG_AUTH: 1,
  ALG_CRYPT: 2,
  ENCAP: 4,
  TMPL: 5,
  LTIME_VAL: 9,
  REPLAY_VAL: 10,
  ALG_AEAD: 18,
  ALG_AUTH_TRUNC: 20,
  REPLAY_ESN_VAL: 23,
} as const;

/** Multicast groups (enum xfrm_nlgroups) as bits for bind(nl_groups). */
export const XFRMNLGRP_EXPIRE_BIT = 1 << (2 - 1);
export const XFRMNLGRP_MAPPING_BIT = 1 << (8 - 1);

export type XfrmMode = 'transport' | 'tunnel';
const MODE: Readonly<Record<XfrmMode, number>> = { transport: 0, tunnel: 1 };
const modeOf = (m: number): XfrmMode | number => (m === 0 ? 'transport' : m === 1 ? 'tunnel' : m);
export type PolicyDir = 'in' | 'out' | 'fwd';
const DIR: Readonly<Record<PolicyDir, number>> = { in: 0, out: 1, fwd: 2 };
const dirOf = (d: number): PolicyDir | undefined => (d === 0 ? 'in' : d === 1 ? 'out' : d === 2 ? 'fwd' : undefined);

/** The legacy replay_window field is a __u8 and the kernel caps its bitmap at 32 packets. */
export const LEGACY_REPLAY_MAX = 32;

export interface SaAlgorithms {
  readonly auth?: { readonly name: string; readonly key: Uint8Array; readonly truncBits: number };
  readonly crypt?: { readonly name: string; readonly key: Uint8Array };
  readonly aead?: { readonly name: string; readonly key: Uint8Array; readonly icvBits: number };
}

/** Everything NEWSA/UPDSA needs for one ESP SA. */
export interface SaSpec {
  readonly family: Family;
  /** Outer addresses (the SA's identity is dst + spi + ESP). */
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly reqid: number;
  readonly mode: XfrmMode;
  readonly sel: XfrmSelector;
  readonly algs: SaAlgorithms;
  /** ESP-in-UDP ports (RFC 3948), tunnel mode only. */
  readonly encap?: { readonly sport: number; readonly dport: number };
  readonly replayWindow: number;
  /** lft.hard_add_expires_seconds; 0 = no limit. */
  readonly hardSeconds: number;
  /** Sequence numbers to carry into a re-added SA. */
  readonly replay?: ReplayState;
}

/** NEWSA (or UPDSA): xfrm_usersa_info + algorithm, encap and replay attributes. */
export function saMessage(s: SaSpec, o: { seq: number; update?: boolean }): Uint8Array {
  const body = new Uint8Array(SIZE.usersaInfo);
  const dv = view(body);
  putSelector(body, 0, s.sel);
  putAddr(body, 56, s.dst, s.family);
  dv.setUint32(72, s.spi >>> 0, false);
  body[76] = IPPROTO_ESP;
  putAddr(body, 80, s.src, s.family);
  putLifetimeCfg(body, 96, s.hardSeconds);
  dv.setUint32(208, s.reqid >>> 0, true);
  dv.setUint16(212, afOf(s.family), true);
  body[214] = MODE[s.mode];
  const esn = s.replayWindow > LEGACY_REPLAY_MAX;
  body[215] = esn ? 0 : s.replayWindow;
  const attrs: NlAttr[] = [];
  if (s.algs.aead) attrs.push({ type: XFRMA.ALG_AEAD, value: encodeAlgo('aead', s.algs.aead.name, s.algs.aead.key, s.algs.aead.icvBits) });
  if (s.algs.auth)
    attrs.push({ type: XFRMA.ALG_AUTH_TRUNC, value: encodeAlgo('auth', s.algs.auth.name, s.algs.auth.key, s.algs.auth.truncBits) });
  if (s.algs.crypt) attrs.push({ type: XFRMA.ALG_CRYPT, value: encodeAlgo('crypt', s.algs.crypt.name, s.algs.crypt.key) });
  if (s.encap) attrs.push({ type: XFRMA.ENCAP, value: encodeEncap(s.encap.sport, s.encap.dport, s.family) });
  // Windows above 32 need the bitmap form (non-ESN: flags stay 0, the kernel uses xfrm_replay_bmp).
  if (esn)
    attrs.push({
      type: XFRMA.REPLAY_ESN_VAL,
      value: encodeReplayEsn({ ...(s.replay ?? { oseq: 0, seq: 0, bitmap: [] }), window: s.replayWindow }),
    });
  else if (s.replay) attrs.push({ type: XFRMA.REPLAY_VAL, value: encodeReplay(s.replay) });
  const msg = encodeMessage({
    type: o.update ? XFRM_MSG.UPDSA : XFRM_MSG.NEWSA,
    flags: NLM_F_REQUEST | NLM_F_ACK,
    seq: o.seq,
    body,
    attrs,
  });
  for (const a of attrs) a.value.fill(0);
  return msg;
}

export interface SaId {
  readonly family: Family;
  readonly dst: string;
  readonly spi: number;
}

export const delSaMessage = (id: SaId, seq: number): Uint8Array =>
  encodeMessage({ type: XFRM_MSG.DELSA, flags: NLM_F_REQUEST | NLM_F_ACK, seq, body: encodeUsersaId(id.dst, id.spi, id.family) });

/** GETSA for one SA: the answer is a NEWSA record (or NLMSG_ERROR ESRCH). */
export const getSaMessage = (id: SaId, seq: number): Uint8Array =>
  encodeMessage({ type: XFRM_MSG.GETSA, flags: NLM_F_REQUEST, seq, body: encodeUsersaId(id.dst, id.spi, id.family) });

export const dumpSaMessage = (seq: number): Uint8Array =>
  encodeMessage({ type: XFRM_MSG.GETSA, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, body: new Uint8Array(0) });
export const dumpPolicyMessage = (seq: number): Uint8Array =>
  encodeMessage({ type: XFRM_MSG.GETPOLICY, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, body: new Uint8Array(0) });

/** xfrm_user_tmpl: which SA a policy wants (spi 0 / reqid 0 = any). */
export interface TmplSpec {
  readonly family: Family;
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly reqid: number;
  readonly mode: XfrmMode;
}

export interface PolicySpec {
  readonly sel: XfrmSelector;
  readonly dir: PolicyDir;
  readonly priority: number;
  readonly hardSeconds: number;
  readonly tmpl: TmplSpec;
}

export function encodeTmpl(t: TmplSpec): Uint8Array {
  const out = new Uint8Array(SIZE.userTmpl);
  const dv = view(out);
  putAddr(out, 0, t.dst, t.family);
  dv.setUint32(16, t.spi >>> 0, false);
  out[20] = IPPROTO_ESP;
  dv.setUint16(24, afOf(t.family), true);
  putAddr(out, 28, t.src, t.family);
  dv.setUint32(44, t.reqid >>> 0, true);
  out[48] = MODE[t.mode];
  // aalgos/ealgos/calgos all ones: the kernel then sets allalgs (any algorithm satisfies the template).
  dv.setUint32(52, 0xffffffff, true);
  dv.setUint32(56, 0xffffffff, true);
  dv.setUint32(60, 0xffffffff, true);
  return out;
}

/** NEWPOLICY (or UPDPOLICY, which replaces a policy with the same selector and direction). */
export function policyMessage(p: PolicySpec, o: { seq: number; update?: boolean }): Uint8Array {
  const body = new Uint8Array(SIZE.userpolicyInfo);
  const dv = view(body);
  putSelector(body, 0, p.sel);
  putLifetimeCfg(body, 56, p.hardSeconds);
  dv.setUint32(152, p.priority >>> 0, true);
  body[160] = DIR[p.dir];
  return encodeMessage({
    type: o.update ? XFRM_MSG.UPDPOLICY : XFRM_MSG.NEWPOLICY,
    flags: NLM_F_REQUEST | NLM_F_ACK,
    seq: o.seq,
    body,
    attrs: [{ type: XFRMA.TMPL, value: encodeTmpl(p.tmpl) }],
  });
}

/** DELPOLICY by selector + direction, or by kernel index + direction when `index` is given. */
export function delPolicyMessage(p: { dir: PolicyDir; sel?: XfrmSelector; index?: number }, seq: number): Uint8Array {
  const body = new Uint8Array(SIZE.userpolicyId);
  if (p.sel) putSelector(body, 0, p.sel);
  view(body).setUint32(56, (p.index ?? 0) >>> 0, true);
  body[60] = DIR[p.dir];
  return encodeMessage({ type: XFRM_MSG.DELPOLICY, flags: NLM_F_REQUEST | NLM_F_ACK, seq, body });
}

/** One SA as the kernel reports it (GETSA, dumps, NEWSA notifications), without keys. */
export interface SaRecord {
  readonly family: Family;
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly proto: number;
  readonly reqid: number;
  readonly mode: XfrmMode | number;
  readonly sel: XfrmSelector | undefined;
  readonly replayWindow: number;
  readonly hardSeconds: number;
  readonly cur: LifetimeCur;
  readonly stats: XfrmStats;
  readonly encap?: { readonly type: number; readonly sport: number; readonly dport: number };
  readonly replay?: ReplayState;
  readonly algs: { readonly auth?: string; readonly crypt?: string; readonly aead?: string };
}

/** Parses an xfrm_usersa_info payload (+ attributes); undefined when malformed. */
export function parseSa(payload: Uint8Array): SaRecord | undefined {
  if (payload.length < SIZE.usersaInfo) return undefined;
  const dv = view(payload);
  const family = familyOfAf(dv.getUint16(212, true));
  const attrs = decodeAttrs(payload.subarray(SIZE.usersaInfo));
  if (!family || !attrs) return undefined;
  const encapV = attrOf(attrs, XFRMA.ENCAP);
  const esn = attrOf(attrs, XFRMA.REPLAY_ESN_VAL);
  const legacy = attrOf(attrs, XFRMA.REPLAY_VAL);
  const replay = esn ? decodeReplayEsn(esn) : legacy ? decodeReplay(legacy) : undefined;
  const encap = encapV ? decodeEncap(encapV) : undefined;
  const name = (t: number) => {
    const v = attrOf(attrs, t);
    return v ? algoName(v) : undefined;
  };
  const auth = name(XFRMA.ALG_AUTH_TRUNC) ?? name(XFRMA.ALG_AUTH);
  const crypt = name(XFRMA.ALG_CRYPT);
  const aead = name(XFRMA.ALG_AEAD);
  return {
    family,
    dst: getAddr(payload, 56, family),
    spi: dv.getUint32(72, false),
    proto: payload[76]!,
    src: getAddr(payload, 80, family),
    sel: getSelector(payload, 0),
    hardSeconds: getHardAddExpires(payload, 96),
    cur: getLifetimeCur(payload, 160),
    stats: getStats(payload, 192),
    reqid: dv.getUint32(208, true),
    mode: modeOf(payload[214]!),
    replayWindow: esn && replay?.window !== undefined ? replay.window : payload[215]!,
    ...(encap ? { encap } : {}),
    ...(replay ? { replay } : {}),
    algs: { ...(auth ? { auth } : {}), ...(crypt ? { crypt } : {}), ...(aead ? { aead } : {}) },
  };
}

export interface PolicyRecord {
  readonly sel: XfrmSelector | undefined;
  readonly dir: PolicyDir | undefined;
  readonly index: number;
  readonly priority: number;
  readonly action: number;
  readonly hardSeconds: number;
  readonly tmpls: readonly TmplSpec[];
}

export function parsePolicy(payload: Uint8Array): PolicyRecord | undefined {
  if (payload.length < SIZE.userpolicyInfo) return undefined;
  const dv = view(payload);
  const attrs = decodeAttrs(payload.subarray(SIZE.userpolicyInfo));
  if (!attrs) return undefined;
  const tmpls: TmplSpec[] = [];
  const t = attrOf(attrs, XFRMA.TMPL);
  for (let off = 0; t && off + SIZE.userTmpl <= t.length; off += SIZE.userTmpl) {
    const v = t.subarray(off, off + SIZE.userTmpl);
    const tv = view(v);
    const family = familyOfAf(tv.getUint16(24, true));
    if (!family) continue;
    const mode = modeOf(v[48]!);
    tmpls.push({
      family,
      dst: getAddr(v, 0, family),
      spi: tv.getUint32(16, false),
      src: getAddr(v, 28, family),
      reqid: tv.getUint32(44, true),
      mode: typeof mode === 'number' ? 'transport' : mode,
    });
  }
  return {
    sel: getSelector(payload, 0),
    hardSeconds: getHardAddExpires(payload, 56),
    priority: dv.getUint32(152, true),
    index: dv.getUint32(156, true),
    dir: dirOf(payload[160]!),
    action: payload[161]!,
    tmpls,
  };
}

/** XFRM_MSG_MAPPING (xfrm_user_mapping): an ESP-in-UDP SA saw its peer at a new address/port. */
export interface MappingEvent {
  readonly family: Family;
  readonly dst: string;
  readonly spi: number;
  readonly reqid: number;
  readonly oldSrc: string;
  readonly newSrc: string;
  readonly oldSport: number;
  readonly newSport: number;
}

export function parseMapping(payload: Uint8Array): MappingEvent | undefined {
  if (payload.length < SIZE.userMapping) return undefined;
  const dv = view(payload);
  const family = familyOfAf(dv.getUint16(20, true));
  if (!family) return undefined;
  return {
    family,
    dst: getAddr(payload, 0, family),
    spi: dv.getUint32(16, false),
    reqid: dv.getUint32(24, true),
    oldSrc: getAddr(payload, 28, family),
    newSrc: getAddr(payload, 44, family),
    oldSport: dv.getUint16(60, false),
    newSport: dv.getUint16(62, false),
  };
}

/** XFRM_MSG_EXPIRE (xfrm_user_expire): the kernel's soft or hard expiry of an SA. */
export function parseExpire(payload: Uint8Array): { sa: SaRecord; hard: boolean } | undefined {
  if (payload.length < SIZE.usersaInfo + 1) return undefined;
  const sa = parseSa(payload.subarray(0, SIZE.usersaInfo));
  return sa ? { sa, hard: payload[SIZE.usersaInfo] !== 0 } : undefined;
}
