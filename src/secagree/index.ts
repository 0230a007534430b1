/**
 * imsec/secagree: the SIP security agreement of IMS (RFC 3329, 33.203 Annex H and the Annex M
 * mode, 24.229 §5.1.1/§5.2.2): the Security-Client/-Server/-Verify codec, the P-CSCF's negotiation
 * by policy and NAT, the UE's choice, and the bidding-down checks.
 *
 * @example
 * ```ts
 * import { buildSecurityServer, negotiate, parseSecurityHeaderOrThrow, serializeMechanisms } from 'imsec/secagree';
 * const client = parseSecurityHeaderOrThrow(req.headers['security-client'], 'Security-Client');
 * if (!client.ok) return reject(494, client.error.message);
 * const r = negotiate(client.value, { allowDeprecated: false }, { natDetected: false });
 * if (r.ok) reply.securityServer = serializeMechanisms([buildSecurityServer(r, { spiC, spiS, portC, portS })]);
 * else reject(494, r.error.message);
 * ```
 * @module
 */
export { SecAgreeError, type SecAgreeCode } from './errors.ts';
export {
  IPSEC_3GPP,
  IPSEC_PARAM_ORDER,
  MAX_PORT,
  MAX_SPI,
  effectiveEalg,
  effectiveMod,
  effectiveProt,
  formatQ,
  parsePort,
  parseQ,
  parseSpi,
  type ExtraParam,
  type Mod,
  type Prot,
  type SecMechanism,
  type SpiPortSet,
  type UsableMod,
} from './mechanism.ts';
export {
  MAX_HEADER_CHARS,
  MAX_MECHANISMS,
  normaliseHyphens,
  parseSecurityHeader,
  parseSecurityHeaderOrThrow,
  serializeMechanism,
  serializeMechanisms,
  type SecHeaderName,
} from './codec.ts';
export { SEC_AGREE_TAG, hasSecAgreeTag, removeSecAgreeTag } from './option-tag.ts';
export {
  DEFAULT_ALLOW,
  DEPRECATED_ALLOW,
  formatPair,
  isDeprecatedPair,
  parseAlgPairList,
  resolveAllowList,
  type AlgPair,
  type SecAgreePolicy,
} from './policy.ts';
export {
  buildSecurityServer,
  negotiate,
  type Choice,
  type Failure,
  type Negotiated,
  type NegotiationContext,
  type NegotiationResult,
} from './negotiate.ts';
export { buildSecurityClient, chooseServerMechanism, type ServerChoice, type ServerChoiceResult, type UeSupport } from './ue-choice.ts';
export { firstDifference, verifySecurityClientUnchanged, verifySecurityVerify, type MechanismsInput, type VerifyResult } from './verify.ts';
