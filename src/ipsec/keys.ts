// 33.203 Annex I: CK_ESP / IK_ESP (and the GCM/GMAC salts) from CK_IM / IK_IM.
// Spec digest §13; the KDF is TS 33.220 Annex B.2: HMAC-SHA-256(key, FC ‖ P0 ‖ L0).
import { createHmac } from 'node:crypto';
import { InputError } from '../util/errors.ts';
import { type AnnexIRule, type EncryptionAlg, type IntegrityAlg, encryptionInfo, integrityInfo, isValidPair } from './algorithms.ts';

/** The ESP keys of one SA set after 33.203 Annex I expansion (the same for all four SAs). */
export interface EspKeys {
  /** IK_ESP: the integrity key (empty for alg=null). */
  readonly ikEsp: Uint8Array;
  /** CK_ESP: the encryption key (empty for ealg=null). */
  readonly ckEsp: Uint8Array;
  /** The 4-octet nonce salt of aes-gcm (RFC 4106 §4) or aes-gmac (RFC 4543 §3.2); absent otherwise. */
  readonly salt?: Uint8Array;
}

/** TS 33.220 B.2 generic KDF with one parameter P0: HMAC-SHA-256(key, FC ‖ P0 ‖ len(P0) as 2 octets). */
export function kdf(key: Uint8Array, fc: number, p0: Uint8Array): Uint8Array {
  const s = new Uint8Array(1 + p0.length + 2);
  s[0] = fc;
  s.set(p0, 1);
  s[1 + p0.length] = (p0.length >> 8) & 0xff;
  s[2 + p0.length] = p0.length & 0xff;
  return new Uint8Array(createHmac('sha256', key).update(s).digest());
}

/** Annex I salt: the 32 least significant bits (last 4 octets) of KDF(CK_IM ‖ IK_IM, FC, P0). */
function annexISalt(ck: Uint8Array, ik: Uint8Array, fc: number, label: string): Uint8Array {
  const key = new Uint8Array(32);
  key.set(ck, 0);
  key.set(ik, 16);
  const out = kdf(key, fc, new TextEncoder().encode(label));
  key.fill(0);
  return out.slice(28, 32);
}

function check128(b: Uint8Array, field: string): void {
  if (b.length !== 16) throw new InputError(`${field}: must be 16 octets (128 bits), got ${b.length}`);
}

/** One ESP key from a 16-octet IM key by its Annex I rule (fresh memory, never a view of `im`). */
function annexIKey(rule: AnnexIRule, im: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  switch (rule) {
    case 'empty':
      break;
    case 'copy':
      out.set(im);
      break;
    case 'pad-zero-32':
      out.set(im); // the rest stays 0x00
      break;
    case 'k1-k2-k1':
      out.set(im, 0);
      out.set(im.subarray(0, 8), 16);
      break;
    default: {
      const never: never = rule;
      throw new InputError(`unknown Annex I rule ${String(never)}`);
    }
  }
  return out;
}

/** Expands CK_IM / IK_IM (16 octets each) into the ESP keys for one (alg, ealg) pair (Annex I, by the algorithm table). */
export function expandKeys(ik: Uint8Array, ck: Uint8Array, alg: IntegrityAlg, ealg: EncryptionAlg): EspKeys {
  check128(ik, 'ik');
  check128(ck, 'ck');
  if (!isValidPair(alg, ealg)) throw new InputError(`alg=${alg} cannot be combined with ealg=${ealg}`, 'BAD_ALGORITHM_PAIR');
  const i = integrityInfo(alg);
  const e = encryptionInfo(ealg);
  const ikEsp = annexIKey(i.annexI, ik, i.keyLen);
  const ckEsp = annexIKey(e.annexI, ck, e.keyLen);
  // A valid pair has at most one salted algorithm (GMAC with ealg=null, GCM with alg=null).
  const s = e.salt ?? i.salt;
  return s ? { ikEsp, ckEsp, salt: annexISalt(ck, ik, s.fc, s.label) } : { ikEsp, ckEsp };
}
