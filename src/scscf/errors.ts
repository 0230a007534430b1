// Errors of the S-CSCF API (sendMessage, start). Protocol outcomes are SIP responses and events, not
// errors; these are for the caller of the API. Messages name identities, never keys.
import { ImsecError } from '../util/errors.ts';

export type ScscfErrorCode =
  /** No binding for the IMPU (not registered, or expired). */
  | 'SCSCF_NOT_REGISTERED'
  /** The binding's first hop (Path or Contact) names no usable host and port. */
  | 'SCSCF_BAD_BINDING'
  /** Timer F ran out before a final response (RFC 3261 §17.1.2.2). */
  | 'SCSCF_TIMEOUT'
  /** The transport failed to send. */
  | 'SCSCF_TRANSPORT'
  /** The S-CSCF was stopped. */
  | 'SCSCF_STOPPED'
  /** Bad start options. */
  | 'SCSCF_BAD_OPTIONS';

export class ScscfError extends ImsecError {
  declare readonly code: ScscfErrorCode;
  constructor(code: ScscfErrorCode, message: string) {
    super(code, message);
  }
}
