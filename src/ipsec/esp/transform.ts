// The one interface every ESP algorithm pair hides behind (strongSwan's "traditional wrapped as
// AEAD"): seal.ts and open.ts never branch on algorithm. createTransform picks the file under
// transforms/ and checks key lengths (the algorithm table's Annex I sizes); it does not judge the pair.
import { encryptionInfo, integrityInfo, SALT_LEN, type EncryptionAlg, type IntegrityAlg } from '../algorithms.ts';
import type { EspKeys } from '../keys.ts';
import { EspError } from './errors.ts';
import { AesGcmTransform } from './transforms/aes-gcm.ts';
import { AesGmacTransform } from './transforms/aes-gmac.ts';
import { CbcCipher, NullCipher, type EspCipher } from './transforms/cbc.ts';
import { Hmac96, NullIntegrity, type EspIntegrity } from './transforms/hmac-96.ts';
import type { IvOverride } from './transforms/iv.ts';
import { TraditionalTransform } from './transforms/traditional.ts';

/**
 * One direction of one SA's cryptography. Not safe for concurrent use (a CBC transform carries
 * chaining state between packets); JavaScript's single thread makes that moot.
 *
 * Packet layout both methods see: SPI‖Seq (8) ‖ IV (ivLen) ‖ payload‖padding‖trailer ‖ ICV (icvLen).
 */
export interface EspTransform {
  readonly ivLen: number;
  readonly icvLen: number;
  /** Cipher block size (1 for no cipher and for GCM/GMAC). */
  readonly blockLen: number;
  /** payload‖padding‖trailer is padded to a multiple of this: max(blockLen, 4). */
  readonly align: number;
  /** Writes the IV, encrypts the plaintext region in place, writes the ICV. */
  seal(pkt: Uint8Array, seq: number): void;
  /**
   * Verifies the ICV in constant time and only then decrypts. Returns payload‖padding‖trailer or
   * undefined when the ICV is wrong. The caller has checked every length. Never throws on content.
   */
  open(pkt: Uint8Array): Uint8Array | undefined;
}

export interface TransformOptions {
  /** Test hook: supplies the explicit IV instead of the transform's own generator. */
  iv?: IvOverride;
  /**
   * The caller keeps `keys` unchanged for the transform's whole life and uses them for nothing else
   * (an SA set decodes a fresh copy for each transform it builds): the traditional transforms then
   * keep no second copy of each key.
   */
  borrowKeys?: boolean;
}

function checkLen(field: string, b: Uint8Array | undefined, want: number, what: string): Uint8Array {
  const got = b?.length ?? 0;
  if (got !== want) throw new EspError('ESP_BAD_KEY', `${field} for ${what} must be ${want} octets, got ${got}`);
  return b ?? new Uint8Array(0);
}

/**
 * Checks `keys` against (alg, ealg) as createTransform does (lengths from the algorithm table),
 * without building anything: for holders that build their transform later, at the first packet
 * (an installed SA set, issue 9 §2), yet must refuse bad keys when they are given.
 */
export function checkTransformKeys(alg: IntegrityAlg, ealg: EncryptionAlg, keys: EspKeys): void {
  keyParts(alg, ealg, keys);
}

/** The key material (alg, ealg) takes, each checked against the table's length. */
function keyParts(alg: IntegrityAlg, ealg: EncryptionAlg, keys: EspKeys): { ik: Uint8Array; ck: Uint8Array; salt?: Uint8Array } {
  const i = integrityInfo(alg);
  const e = encryptionInfo(ealg);
  if (ealg === 'aes-gcm') {
    if (alg !== 'null') throw new EspError('ESP_UNSUPPORTED', `ealg=aes-gcm is an AEAD and takes alg=null, got alg=${alg}`);
    checkLen('keys.ikEsp', keys.ikEsp, 0, 'alg=null');
    const ck = checkLen('keys.ckEsp', keys.ckEsp, e.keyLen, ealg);
    return { ik: keys.ikEsp ?? new Uint8Array(0), ck, salt: checkLen('keys.salt', keys.salt, SALT_LEN, ealg) };
  }
  if (alg === 'aes-gmac') {
    if (ealg !== 'null') throw new EspError('ESP_UNSUPPORTED', `alg=aes-gmac takes ealg=null, got ealg=${ealg}`);
    checkLen('keys.ckEsp', keys.ckEsp, 0, 'ealg=null');
    const ik = checkLen('keys.ikEsp', keys.ikEsp, i.keyLen, alg);
    return { ik, ck: keys.ckEsp ?? new Uint8Array(0), salt: checkLen('keys.salt', keys.salt, SALT_LEN, alg) };
  }
  const ik = checkLen('keys.ikEsp', keys.ikEsp, i.keyLen, alg === 'null' ? 'alg=null' : alg);
  const ck = checkLen('keys.ckEsp', keys.ckEsp, e.keyLen, ealg === 'null' ? 'ealg=null' : ealg);
  return { ik, ck };
}

/**
 * Builds the transform for (alg, ealg), sizes from the algorithm table. Internal: accepts alg=null
 * with a CBC cipher so that the RFC 3602 ESP vectors (no ICV) can run; the public
 * createOutbound/createInbound enforce isValidPair.
 */
export function createTransform(alg: IntegrityAlg, ealg: EncryptionAlg, keys: EspKeys, opts: TransformOptions = {}): EspTransform {
  const k = keyParts(alg, ealg, keys);
  if (ealg === 'aes-gcm') return new AesGcmTransform(k.ck, k.salt!, opts.iv);
  if (alg === 'aes-gmac') return new AesGmacTransform(k.ik, k.salt!, opts.iv);
  return new TraditionalTransform(cipherFor(ealg, k.ck, opts), integrityFor(alg, k.ik, opts));
}

/** The integrity half of a traditional transform: an HMAC-96 by the table's digest, or none. */
function integrityFor(alg: Exclude<IntegrityAlg, 'aes-gmac'>, key: Uint8Array, opts: TransformOptions): EspIntegrity {
  if (alg === 'null') return new NullIntegrity();
  const h = integrityInfo(alg).hmac;
  if (!h) throw new EspError('ESP_UNSUPPORTED', `alg=${alg} has no HMAC in the algorithm table`);
  return new Hmac96(h.digest, key, opts.borrowKeys);
}

/** The cipher half of a traditional transform: a CBC cipher by the table's OpenSSL name, or none. */
function cipherFor(ealg: Exclude<EncryptionAlg, 'aes-gcm'>, key: Uint8Array, opts: TransformOptions): EspCipher {
  if (ealg === 'null') return new NullCipher();
  const cbc = encryptionInfo(ealg).cbc;
  if (!cbc) throw new EspError('ESP_UNSUPPORTED', `ealg=${ealg} has no CBC cipher in the algorithm table`);
  return new CbcCipher(cbc, key, opts.iv, opts.borrowKeys);
}
