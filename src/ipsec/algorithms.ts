// The ESP algorithms that 33.203 Annex H can signal (alg / ealg), with their sizes and the names
// other tools use for them. Spec digest §12 (names by release), §13 (Linux names), lab README
// (Wireshark labels verified against tshark 4.0).

export const INTEGRITY_ALGS = ['hmac-md5-96', 'hmac-sha-1-96', 'aes-gmac', 'null'] as const;
export type IntegrityAlg = (typeof INTEGRITY_ALGS)[number];

export const ENCRYPTION_ALGS = ['null', 'aes-cbc', 'des-ede3-cbc', 'aes-gcm'] as const;
export type EncryptionAlg = (typeof ENCRYPTION_ALGS)[number];

export interface IntegrityAlgInfo {
  readonly name: IntegrityAlg;
  /** IK_ESP length in octets (Annex I); 0 for null. */
  readonly keyLen: number;
  /** Removed from Annex H in newer releases: off unless a policy enables it. */
  readonly deprecated: boolean;
}

export interface EncryptionAlgInfo {
  readonly name: EncryptionAlg;
  /** CK_ESP length in octets (Annex I), without any salt; 0 for null. */
  readonly keyLen: number;
  readonly deprecated: boolean;
}

export const INTEGRITY: Readonly<Record<IntegrityAlg, IntegrityAlgInfo>> = {
  'hmac-md5-96': { name: 'hmac-md5-96', keyLen: 16, deprecated: true },
  'hmac-sha-1-96': { name: 'hmac-sha-1-96', keyLen: 20, deprecated: false },
  'aes-gmac': { name: 'aes-gmac', keyLen: 16, deprecated: false },
  null: { name: 'null', keyLen: 0, deprecated: false },
};

export const ENCRYPTION: Readonly<Record<EncryptionAlg, EncryptionAlgInfo>> = {
  null: { name: 'null', keyLen: 0, deprecated: false },
  'aes-cbc': { name: 'aes-cbc', keyLen: 16, deprecated: false },
  'des-ede3-cbc': { name: 'des-ede3-cbc', keyLen: 24, deprecated: true },
  'aes-gcm': { name: 'aes-gcm', keyLen: 16, deprecated: false },
};

export function isIntegrityAlg(s: string): s is IntegrityAlg {
  return (INTEGRITY_ALGS as readonly string[]).includes(s);
}

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
