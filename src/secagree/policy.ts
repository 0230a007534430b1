// The P-CSCF's algorithm policy: which (alg, ealg) pairs it accepts, in preference order, and the
// `alg/ealg,alg/ealg` text form used by the CLI and configs. Names and validity come from
// ipsec/algorithms.ts (33.203 Annex H; spec digest §12).
import {
  ENCRYPTION,
  INTEGRITY,
  isEncryptionAlg,
  isIntegrityAlg,
  isValidPair,
  type EncryptionAlg,
  type IntegrityAlg,
} from '../ipsec/algorithms.ts';
import { SecAgreeError, showValue } from './errors.ts';
import type { UsableMod } from './mechanism.ts';

/** An integrity / encryption algorithm pair as negotiated in one ipsec-3gpp mechanism. */
export interface AlgPair {
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
}

/** What a P-CSCF accepts, in preference order (default {@link DEFAULT_ALLOW}). */
export interface SecAgreePolicy {
  /** Accepted pairs, most preferred first. Default: DEFAULT_ALLOW (+ DEPRECATED_ALLOW if allowed). */
  readonly allow?: readonly AlgPair[];
  /** Master switch for hmac-md5-96 and des-ede3-cbc (removed from Annex H after V12.6, digest §12). */
  readonly allowDeprecated?: boolean;
  /** Modes this P-CSCF can run. Default both; without 'UDP-enc-tun' a NATed UE cannot register. */
  readonly modes?: readonly UsableMod[];
}

/**
 * Default preference: hmac-sha-1-96 with aes-cbc, then with null (what deployed UEs all offer),
 * then the newer AEAD/GMAC pairs (null/aes-gcm, aes-gmac/null).
 */
export const DEFAULT_ALLOW: readonly AlgPair[] = [
  { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' },
  { alg: 'hmac-sha-1-96', ealg: 'null' },
  { alg: 'null', ealg: 'aes-gcm' },
  { alg: 'aes-gmac', ealg: 'null' },
];

/** Appended to the default list when allowDeprecated is set: the legacy pairs, SHA-1 first. */
export const DEPRECATED_ALLOW: readonly AlgPair[] = [
  { alg: 'hmac-sha-1-96', ealg: 'des-ede3-cbc' },
  { alg: 'hmac-md5-96', ealg: 'aes-cbc' },
  { alg: 'hmac-md5-96', ealg: 'null' },
  { alg: 'hmac-md5-96', ealg: 'des-ede3-cbc' },
];

/** Whether the pair uses hmac-md5-96 or des-ede3-cbc (off unless the policy allows deprecated pairs). */
export const isDeprecatedPair = (p: AlgPair): boolean => INTEGRITY[p.alg].deprecated || ENCRYPTION[p.ealg].deprecated;

/** `alg/ealg`, the form of policy lists and messages. */
export const formatPair = (p: AlgPair): string => `${p.alg}/${p.ealg}`;

/**
 * The effective allow list: the policy's list (or the default), with deprecated pairs removed
 * unless allowDeprecated. `disabled` lists what was removed, for error messages.
 * @throws SecAgreeError SECAGREE_BAD_POLICY for a pair isValidPair refuses (a config mistake)
 */
export function resolveAllowList(policy: SecAgreePolicy = {}): { allow: AlgPair[]; disabled: AlgPair[] } {
  const r = resolvedAllowList(policy);
  return { allow: [...r.allow], disabled: [...r.disabled] };
}

type Resolved = { readonly allow: readonly AlgPair[]; readonly disabled: readonly AlgPair[] };
const DEFAULT_AND_DEPRECATED: readonly AlgPair[] = [...DEFAULT_ALLOW, ...DEPRECATED_ALLOW];
const resolved = new WeakMap<readonly AlgPair[], Resolved>();
const resolvedWithDeprecated = new WeakMap<readonly AlgPair[], Resolved>();

/**
 * resolveAllowList, read-only and kept: every REGISTER negotiates with the same policy, so a list is
 * resolved once per list and flag. A list that fails is checked (and refused) again each time.
 */
export function resolvedAllowList(policy: SecAgreePolicy): Resolved {
  const base = policy.allow ?? (policy.allowDeprecated ? DEFAULT_AND_DEPRECATED : DEFAULT_ALLOW);
  const cache = policy.allowDeprecated ? resolvedWithDeprecated : resolved;
  let r = cache.get(base);
  if (!r) {
    const fresh = resolve(base, policy.allowDeprecated === true);
    cache.set(base, (r = { allow: Object.freeze(fresh.allow), disabled: Object.freeze(fresh.disabled) }));
  }
  return r;
}

function resolve(base: readonly AlgPair[], allowDeprecated: boolean): { allow: AlgPair[]; disabled: AlgPair[] } {
  const allow: AlgPair[] = [];
  const disabled: AlgPair[] = [];
  for (const p of base) {
    if (!isIntegrityAlg(p.alg) || !isEncryptionAlg(p.ealg) || !isValidPair(p.alg, p.ealg)) {
      throw new SecAgreeError(
        'SECAGREE_BAD_POLICY',
        `policy: ${showValue(formatPair(p))} is not a valid alg/ealg pair`,
        'allow',
        formatPair(p),
      );
    }
    (isDeprecatedPair(p) && !allowDeprecated ? disabled : allow).push(p);
  }
  return { allow, disabled };
}

/**
 * Parses `alg/ealg[,alg/ealg…]`, e.g. `hmac-sha-1-96/aes-cbc,hmac-sha-1-96/null`; order is
 * preference. `alg` alone means `alg/null` (absent ealg = null, Annex H).
 * @throws SecAgreeError SECAGREE_BAD_POLICY naming the item
 */
export function parseAlgPairList(text: string, field = 'policy'): AlgPair[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => s === ''))
    throw new SecAgreeError('SECAGREE_BAD_POLICY', `${field}: empty item in ${showValue(text)}`, field, text);
  return items.map((item) => {
    const [alg = '', ealg = 'null', more] = item
      .toLowerCase()
      .split('/')
      .map((s) => s.trim());
    if (more !== undefined || !isIntegrityAlg(alg) || !isEncryptionAlg(ealg)) {
      throw new SecAgreeError(
        'SECAGREE_BAD_POLICY',
        `${field}: ${showValue(item)} is not alg/ealg with known names (alg: ${Object.keys(INTEGRITY).join(', ')}; ealg: ${Object.keys(ENCRYPTION).join(', ')})`,
        field,
        item,
      );
    }
    if (!isValidPair(alg, ealg)) {
      throw new SecAgreeError(
        'SECAGREE_BAD_POLICY',
        `${field}: ${showValue(item)}: alg=${alg} cannot be combined with ealg=${ealg}`,
        field,
        item,
      );
    }
    return { alg, ealg };
  });
}
