// The ESP algorithms that 33.203 Annex H can signal (alg / ealg) and EVERY fact about them, in one
// table per kind: key, ICV, block and IV sizes, the Annex I key rule and salt, the sec-agree token,
// the Wireshark and XFRM names, deprecation. keys.ts, key-export.ts, esp/transform*.ts and
// backends/xfrm/plan.ts read it; adding an algorithm is one entry here (plus its transform).
// Spec digest §12 (names by release), §13 (Annex I, Linux names), lab README (Wireshark labels
// verified against tshark 4.0).

/** Integrity algorithms (33.203 §6.3, Annex H `alg` values), in the order we offer them. */
export const INTEGRITY_ALGS = ['hmac-md5-96', 'hmac-sha-1-96', 'aes-gmac', 'null'] as const;
/** An integrity algorithm name (`alg` of sec-agree). */
export type IntegrityAlg = (typeof INTEGRITY_ALGS)[number];

/** Confidentiality algorithms (33.203 §6.3, Annex H `ealg` values; `null` is no encryption). */
export const ENCRYPTION_ALGS = ['null', 'aes-cbc', 'des-ede3-cbc', 'aes-gcm'] as const;
/** An encryption algorithm name (`ealg` of sec-agree). */
export type EncryptionAlg = (typeof ENCRYPTION_ALGS)[number];

/** How Annex I makes an ESP key from IK_IM / CK_IM (16 octets each; spec digest §13). */
export type AnnexIRule =
  /** Empty key (alg=null, ealg=null). */
  | 'empty'
  /** K_ESP = K_IM. */
  | 'copy'
  /** IK_ESP = IK_IM ‖ 0x00000000 (hmac-sha-1-96: a 160-bit key; spec digest §18 pitfall 8). */
  | 'pad-zero-32'
  /** CK_ESP = CK_IM1 ‖ CK_IM2 ‖ CK_IM1 (des-ede3-cbc: 64-bit halves, parity untouched). */
  | 'k1-k2-k1';

/** The 4-octet nonce salt of GCM/GMAC: the last 32 bits of KDF(CK_IM ‖ IK_IM, fc, label) (Annex I). */
export interface AnnexISalt {
  readonly fc: number;
  readonly label: string;
}

/** How the kernel (XFRM, `ip xfrm state`) names and sizes the algorithm (spec digest §13). */
export type XfrmAlg =
  | { readonly kind: 'auth'; readonly name: string; readonly truncBits: number }
  | { readonly kind: 'crypt'; readonly name: string }
  /** An AEAD carries key ‖ salt and takes the place of both auth and crypt. */
  | { readonly kind: 'aead'; readonly name: string; readonly icvBits: number }
  | { readonly kind: 'none' };

/** Every fact about one integrity algorithm: sec-agree token, sizes, Annex I key rule, kernel and Wireshark names. */
export interface IntegrityAlgInfo {
  readonly name: IntegrityAlg;
  /** The `alg` token in Security-Client/-Server/-Verify (33.203 Annex H; lower case as we send it). */
  readonly token: string;
  /** The HMAC's node:crypto digest and sizes (RFC 2104 B and L), for the HMAC-96 algorithms. */
  readonly hmac?: { readonly digest: 'md5' | 'sha1'; readonly blockLen: number; readonly digestLen: number };
  /** IK_ESP length in octets (Annex I), without any salt; 0 for null. */
  readonly keyLen: number;
  /** ICV octets on the wire (an AEAD's ICV is its encryption algorithm's). */
  readonly icvLen: number;
  /** AES-GMAC's explicit IV (RFC 4543 §3.1); 0 for the others (the cipher supplies any IV). */
  readonly ivLen: number;
  readonly annexI: AnnexIRule;
  readonly salt?: AnnexISalt;
  /** Wireshark's esp_sa authentication label (exact string); absent: tshark has no entry. */
  readonly wireshark?: string;
  readonly xfrm: XfrmAlg;
  /** Removed from Annex H in newer releases: off unless a policy enables it. */
  readonly deprecated: boolean;
}

/** Every fact about one encryption algorithm: sec-agree token, cipher, key, block and IV sizes, Annex I key rule, kernel and Wireshark names. */
export interface EncryptionAlgInfo {
  readonly name: EncryptionAlg;
  /** The `ealg` token in the sec-agree headers (absent ealg means null). */
  readonly token: string;
  /** OpenSSL name of a CBC cipher. */
  readonly cbc?: 'aes-128-cbc' | 'des-ede3-cbc';
  /** CK_ESP length in octets (Annex I), without any salt; 0 for null. */
  readonly keyLen: number;
  /** Cipher block size; 1 for no cipher and for GCM (a stream mode). */
  readonly blockLen: number;
  /** Explicit IV octets (RFC 3602 §2.1 / RFC 2451 §2.3: one block; RFC 4106 §3.1: 8). */
  readonly ivLen: number;
  /** ICV octets of an AEAD (RFC 4106: 16); 0 when the integrity algorithm makes the ICV. */
  readonly icvLen: number;
  readonly annexI: AnnexIRule;
  readonly salt?: AnnexISalt;
  /** Wireshark's esp_sa encryption label (exact string; anything else is "invalid value" in tshark). */
  readonly wireshark: string;
  readonly xfrm: XfrmAlg;
  readonly deprecated: boolean;
}

/** RFC 4106 / RFC 4543: the nonce salt carried after the key. */
export const SALT_LEN = 4;
const HMAC_96 = 96;
const GCM_ICV = 16;

/** Every fact about each integrity algorithm. A missing or extra entry is a compile error. */
export const INTEGRITY = Object.freeze({
  'hmac-md5-96': {
    name: 'hmac-md5-96',
    token: 'hmac-md5-96',
    hmac: { digest: 'md5', blockLen: 64, digestLen: 16 },
    keyLen: 16,
    icvLen: HMAC_96 / 8,
    ivLen: 0,
    annexI: 'copy',
    wireshark: 'HMAC-MD5-96 [RFC2403]',
    xfrm: { kind: 'auth', name: 'hmac(md5)', truncBits: HMAC_96 },
    deprecated: true,
  },
  'hmac-sha-1-96': {
    name: 'hmac-sha-1-96',
    token: 'hmac-sha-1-96',
    hmac: { digest: 'sha1', blockLen: 64, digestLen: 20 },
    keyLen: 20,
    icvLen: HMAC_96 / 8,
    ivLen: 0,
    annexI: 'pad-zero-32',
    wireshark: 'HMAC-SHA-1-96 [RFC2404]',
    xfrm: { kind: 'auth', name: 'hmac(sha1)', truncBits: HMAC_96 },
    deprecated: false,
  },
  // tshark 4.0.17 has no AES-GMAC (RFC 4543) esp_sa entry (every GMAC-looking label is "invalid value").
  'aes-gmac': {
    name: 'aes-gmac',
    token: 'aes-gmac',
    keyLen: 16,
    icvLen: GCM_ICV,
    ivLen: 8,
    annexI: 'copy',
    salt: { fc: 0x58, label: 'AES_GMAC_SALT' },
    xfrm: { kind: 'aead', name: 'rfc4543(gcm(aes))', icvBits: GCM_ICV * 8 },
    deprecated: false,
  },
  null: {
    name: 'null',
    token: 'null',
    keyLen: 0,
    icvLen: 0,
    ivLen: 0,
    annexI: 'empty',
    wireshark: 'NULL',
    xfrm: { kind: 'none' },
    deprecated: false,
  },
} as const satisfies { readonly [A in IntegrityAlg]: IntegrityAlgInfo & { readonly name: A } });

/** Every fact about each encryption algorithm. A missing or extra entry is a compile error. */
export const ENCRYPTION = Object.freeze({
  null: {
    name: 'null',
    token: 'null',
    keyLen: 0,
    blockLen: 1,
    ivLen: 0,
    icvLen: 0,
    annexI: 'empty',
    wireshark: 'NULL',
    xfrm: { kind: 'crypt', name: 'ecb(cipher_null)' },
    deprecated: false,
  },
  'aes-cbc': {
    name: 'aes-cbc',
    token: 'aes-cbc',
    cbc: 'aes-128-cbc',
    keyLen: 16,
    blockLen: 16,
    ivLen: 16,
    icvLen: 0,
    annexI: 'copy',
    wireshark: 'AES-CBC [RFC3602]',
    xfrm: { kind: 'crypt', name: 'cbc(aes)' },
    deprecated: false,
  },
  'des-ede3-cbc': {
    name: 'des-ede3-cbc',
    token: 'des-ede3-cbc',
    cbc: 'des-ede3-cbc',
    keyLen: 24,
    blockLen: 8,
    ivLen: 8,
    icvLen: 0,
    annexI: 'k1-k2-k1',
    wireshark: 'TripleDES-CBC [RFC2451]',
    xfrm: { kind: 'crypt', name: 'cbc(des3_ede)' },
    deprecated: true,
  },
  'aes-gcm': {
    name: 'aes-gcm',
    token: 'aes-gcm',
    keyLen: 16,
    blockLen: 1,
    ivLen: 8,
    icvLen: GCM_ICV,
    annexI: 'copy',
    salt: { fc: 0x59, label: 'AES_GCM_SALT' },
    wireshark: 'AES-GCM with 16 octet ICV [RFC4106]',
    xfrm: { kind: 'aead', name: 'rfc4106(gcm(aes))', icvBits: GCM_ICV * 8 },
    deprecated: false,
  },
} as const satisfies { readonly [E in EncryptionAlg]: EncryptionAlgInfo & { readonly name: E } });

/** The table entry as its interface (for code that reads optional facts such as `hmac` or `salt`). */
export const integrityInfo = (alg: IntegrityAlg): IntegrityAlgInfo => INTEGRITY[alg];
/** The table entry of an encryption algorithm. */
export const encryptionInfo = (ealg: EncryptionAlg): EncryptionAlgInfo => ENCRYPTION[ealg];

/** The integrity entry of an HMAC-96 by its digest (what esp/transforms/hmac-96.ts sizes itself by). */
export function hmac96Info(digest: 'md5' | 'sha1'): IntegrityAlgInfo & { readonly hmac: NonNullable<IntegrityAlgInfo['hmac']> } {
  for (const a of INTEGRITY_ALGS) {
    const info = integrityInfo(a);
    if (info.hmac?.digest === digest) return info as IntegrityAlgInfo & { readonly hmac: NonNullable<IntegrityAlgInfo['hmac']> };
  }
  throw new RangeError(`no HMAC-96 with digest ${digest} in the algorithm table`);
}

/** The CBC encryption entry by its OpenSSL cipher name (what esp/transforms/cbc.ts sizes itself by). */
export function cbcInfo(cipher: 'aes-128-cbc' | 'des-ede3-cbc'): EncryptionAlgInfo {
  for (const e of ENCRYPTION_ALGS) if (encryptionInfo(e).cbc === cipher) return encryptionInfo(e);
  throw new RangeError(`no CBC cipher ${cipher} in the algorithm table`);
}

/** The algorithm a Security-Client/-Server `alg` token names (tokens are case-insensitive). */
export function integrityAlgOfToken(token: string): IntegrityAlg | undefined {
  const t = token.toLowerCase();
  return INTEGRITY_ALGS.find((a) => INTEGRITY[a].token === t);
}

/** The algorithm an `ealg` token names. */
export function encryptionAlgOfToken(token: string): EncryptionAlg | undefined {
  const t = token.toLowerCase();
  return ENCRYPTION_ALGS.find((e) => ENCRYPTION[e].token === t);
}

/** True when `s` names an integrity algorithm we implement. */
export function isIntegrityAlg(s: string): s is IntegrityAlg {
  return (INTEGRITY_ALGS as readonly string[]).includes(s);
}

/** True when `s` names an encryption algorithm we implement. */
export function isEncryptionAlg(s: string): s is EncryptionAlg {
  return (ENCRYPTION_ALGS as readonly string[]).includes(s);
}

/**
 * Whether an (alg, ealg) pair makes a usable ESP transform (spec digest §12):
 * the HMACs go with any non-AEAD cipher; aes-gmac only with ealg=null; alg=null only with aes-gcm.
 */
export function isValidPair(alg: IntegrityAlg, ealg: EncryptionAlg): boolean {
  if (ealg === 'aes-gcm') return alg === 'null';
  if (alg === 'null') return false;
  if (alg === 'aes-gmac') return ealg === 'null';
  return true;
}

/** Every valid pair, in a stable order (used by tests and interop suites). */
export function allValidPairs(): { alg: IntegrityAlg; ealg: EncryptionAlg }[] {
  const out: { alg: IntegrityAlg; ealg: EncryptionAlg }[] = [];
  for (const alg of INTEGRITY_ALGS) for (const ealg of ENCRYPTION_ALGS) if (isValidPair(alg, ealg)) out.push({ alg, ealg });
  return out;
}
