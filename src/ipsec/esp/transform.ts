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
   * The caller keeps `keys` unchanged for the transform's whole life (an SA set's own copy, see
   * shareableTransform): the traditional transforms then keep no second copy of each key.
   */
  borrowKeys?: boolean;
}

function checkLen(field: string, b: Uint8Array | undefined, want: number, what: string): Uint8Array {
  const got = b?.length ?? 0;
  if (got !== want) throw new EspError('ESP_BAD_KEY', `${field} for ${what} must be ${want} octets, got ${got}`);
  return b ?? new Uint8Array(0);
}

/**
 * Builds the transform for (alg, ealg), sizes from the algorithm table. Internal: accepts alg=null
 * with a CBC cipher so that the RFC 3602 ESP vectors (no ICV) can run; the public
 * createOutbound/createInbound enforce isValidPair.
 */
export function createTransform(alg: IntegrityAlg, ealg: EncryptionAlg, keys: EspKeys, opts: TransformOptions = {}): EspTransform {
  const i = integrityInfo(alg);
  const e = encryptionInfo(ealg);
  if (ealg === 'aes-gcm') {
    if (alg !== 'null') throw new EspError('ESP_UNSUPPORTED', `ealg=aes-gcm is an AEAD and takes alg=null, got alg=${alg}`);
    checkLen('keys.ikEsp', keys.ikEsp, 0, 'alg=null');
    const key = checkLen('keys.ckEsp', keys.ckEsp, e.keyLen, ealg);
    const salt = checkLen('keys.salt', keys.salt, SALT_LEN, ealg);
    return new AesGcmTransform(key, salt, opts.iv);
  }
  if (alg === 'aes-gmac') {
    if (ealg !== 'null') throw new EspError('ESP_UNSUPPORTED', `alg=aes-gmac takes ealg=null, got ealg=${ealg}`);
    checkLen('keys.ckEsp', keys.ckEsp, 0, 'ealg=null');
    const key = checkLen('keys.ikEsp', keys.ikEsp, i.keyLen, alg);
    const salt = checkLen('keys.salt', keys.salt, SALT_LEN, alg);
    return new AesGmacTransform(key, salt, opts.iv);
  }
  const integrity = integrityFor(alg, checkLen('keys.ikEsp', keys.ikEsp, i.keyLen, alg === 'null' ? 'alg=null' : alg), opts);
  const cipher = cipherFor(ealg, checkLen('keys.ckEsp', keys.ckEsp, e.keyLen, ealg === 'null' ? 'ealg=null' : ealg), opts);
  return new TraditionalTransform(cipher, integrity);
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
