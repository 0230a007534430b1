/**
 * imsec/aka: Milenage (TS 35.206), SQN management (TS 33.102 Annex C), the HSS and USIM sides of
 * AKA (TS 33.102 §6.3) with resynchronisation (AUTS), Digest AKAv1/v2 (RFC 3310/4169) and the
 * Digest header codec. Pure: bytes in, values out; keys are Uint8Arrays, never logged.
 *
 * @example
 * ```ts
 * import { Usim, buildNonce, computeOpc, generateVector } from 'imsec/aka';
 * const opc = computeOpc(k, op);
 * const av = generateVector({ k, opc, sqn, amf });          // HSS: RAND, AUTN, XRES, CK, IK
 * const nonce = buildNonce(av.rand, av.autn);               // the Digest nonce of the 401
 * const r = new Usim({ k, opc }).respond(av.rand, av.autn); // USIM: 'ok' (RES, CK, IK), 'mac_failure' or 'sync_failure' (AUTS)
 * ```
 * @module
 */
export { AkaError, type AkaErrorCode, akaInputError } from './errors.ts';
export {
  AK_LEN,
  AMF_LEN,
  KEY_LEN,
  MAC_LEN,
  RAND_LEN,
  RES_LEN,
  SQN_LEN,
  type MilenageKeys,
  type MilenageOutput,
  computeOpc,
  f1,
  f1Star,
  f2,
  f3,
  f4,
  f5,
  f5Star,
  milenage,
  milenageKeys,
  milenageMacs,
} from './milenage.ts';
export {
  DEFAULT_IND_LEN,
  SQN_BITS,
  SQN_MAX,
  type HeSqnProfile,
  type SqnArrayOptions,
  type SqnFreshness,
  type SqnVerdict,
  SqnArray,
  SqnFloor,
  joinSqn,
  maxSeq,
  nextSqnAfter,
  resyncSqn,
  splitSqn,
  sqnFromBytes,
  sqnToBytes,
  toSqn,
} from './sqn.ts';
export {
  AUTN_LEN,
  AUTS_LEN,
  type AuthVector,
  type AutsCheck,
  type AutsInput,
  type Rng,
  type VectorInput,
  amfStar,
  generateVector,
  verifyAuts,
} from './hss.ts';
export {
  type UsimMacFailure,
  type UsimOk,
  type UsimOptions,
  type UsimResult,
  type UsimSyncFailure,
  Usim,
  akaFailureError,
  buildAuts,
  usimRespond,
} from './usim.ts';
export {
  AKA_ALGORITHMS,
  type AkaAlgorithm,
  type DigestInput,
  akaPassword,
  buildNonce,
  digestHa1,
  digestHa2,
  digestResponse,
  parseAkaAlgorithm,
  parseAuts,
  parseAutsOrThrow,
  parseNonce,
  parseNonceOrThrow,
  verifyDigestResponse,
} from './digest.ts';
export {
  type DigestHeader,
  type DigestParam,
  buildDigestHeader,
  digestParam,
  getParam,
  paramRecord,
  parseDigestHeader,
  parseDigestHeaderOrThrow,
  removeParams,
  serializeDigestHeader,
  setParam,
} from './digest-header.ts';
