// An SA set as stored data (issue 13 §3): everything needed to rebuild the same four SAs in another
// process — SPIs, addresses, ports, algorithms, mode, encapsulation, lifetimes, state — as a JSON
// record, with the keys apart (bytes, sealed by the state store's key sealer) and the sequence
// numbers apart (the high-water marks of seq-marks.ts, updated far more often than the rest).
import type { EncryptionAlg, IntegrityAlg } from './algorithms.ts';
import { IpsecError } from './errors.ts';
import type { EspKeys } from './keys.ts';
import type { SaName } from './sa.ts';
import { createSaSet, type SaSet, type SaSetPeer } from './sa-set.ts';
import type { EspMode } from './types.ts';

export const SA_NAMES: readonly SaName[] = ['SA1', 'SA2', 'SA3', 'SA4'];

/** The stored form of a set, without keys and sequence numbers. Plain JSON. */
export interface SaSetRecord {
  readonly v: 1;
  readonly id: string;
  readonly role: 'ue' | 'pcscf';
  readonly state: 'current' | 'old';
  readonly ue: SaSetPeer & { readonly innerIp?: string };
  readonly pcscf: SaSetPeer;
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  readonly mode: EspMode;
  readonly encap?: { readonly uePort: number; readonly pcscfPort: number };
  readonly replayWindow?: number;
  readonly expiresAt?: number;
}

/** The record of a live current or old set (a temporary set is never stored: its UE starts over). */
export function saSetRecord(set: SaSet): SaSetRecord {
  if (set.state !== 'current' && set.state !== 'old')
    throw new IpsecError('IPSEC_BAD_PARAMS', `SA set ${set.id} is ${set.state}: only current and old sets are stored`);
  const c = set.config;
  return {
    v: 1,
    id: set.id,
    role: set.role,
    state: set.state,
    ue: peerRecord(c.ue),
    pcscf: peerRecord(c.pcscf),
    alg: c.alg,
    ealg: c.ealg,
    mode: c.mode,
    ...(c.encap && { encap: { ...c.encap } }),
    ...(c.replayWindow !== undefined && { replayWindow: c.replayWindow }),
    ...(set.expiresAt !== undefined && { expiresAt: set.expiresAt }),
  };
}

/** One end as plain data, field by field: the set's copy keeps its SPIs behind getters (sa-set.ts PeerCopy), which a spread would miss. */
function peerRecord(p: SaSetPeer & { readonly innerIp?: string }): SaSetPeer & { innerIp?: string } {
  const r = { ip: p.ip, portC: p.portC, portS: p.portS, spiC: p.spiC, spiS: p.spiS };
  return p.innerIp !== undefined ? { ...r, innerIp: p.innerIp } : r;
}

/** The set's keys (the same for its four SAs). The caller seals them before they reach a store. */
export function saSetKeys(set: SaSet): EspKeys {
  return set.sas.SA1.params.keys;
}

/**
 * Rebuilds a stored set in its stored state; each SA resumes past its mark (outbound) or refuses
 * everything up to it (inbound). Throws IpsecError on a record that does not make a valid set.
 */
export function restoreSaSet(r: SaSetRecord, keys: EspKeys, marks: Readonly<Partial<Record<SaName, number>>>): SaSet {
  if (r.v !== 1) throw new IpsecError('IPSEC_BAD_PARAMS', `stored SA set ${String(r.id)}: unknown record version ${String(r.v)}`);
  const set = createSaSet({
    role: r.role,
    id: r.id,
    ue: r.ue,
    pcscf: r.pcscf,
    alg: r.alg,
    ealg: r.ealg,
    keys,
    mode: r.mode,
    ...(r.encap && { encap: r.encap }),
    ...(r.replayWindow !== undefined && { replayWindow: r.replayWindow }),
    ...(r.expiresAt !== undefined && { expiresAt: r.expiresAt }),
    resume: marks,
  });
  set.apply('authenticated');
  if (r.state === 'old') set.apply('superseded');
  return set;
}

/** Keys as bytes: length-prefixed IK_ESP, CK_ESP, salt (0 length: none). */
export function encodeKeys(k: EspKeys): Uint8Array {
  const parts = [k.ikEsp, k.ckEsp, k.salt ?? new Uint8Array(0)];
  const out = new Uint8Array(parts.reduce((n, p) => n + 1 + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out[o++] = p.length;
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function decodeKeys(b: Uint8Array): EspKeys {
  const parts: Uint8Array[] = [];
  let o = 0;
  for (let i = 0; i < 3; i++) {
    const n = b[o];
    if (n === undefined || o + 1 + n > b.length) throw new IpsecError('IPSEC_BAD_PARAMS', 'stored SA keys: truncated');
    parts.push(b.slice(o + 1, o + 1 + n));
    o += 1 + n;
  }
  if (o !== b.length) throw new IpsecError('IPSEC_BAD_PARAMS', 'stored SA keys: trailing bytes');
  const [ikEsp, ckEsp, salt] = parts as [Uint8Array, Uint8Array, Uint8Array];
  return { ikEsp, ckEsp, ...(salt.length > 0 && { salt }) };
}
