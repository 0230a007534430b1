// The error type of the sec-agree layer (RFC 3329, 33.203 Annex H): one class, one code union.
// Parse failures are thrown (the CLI exits 2); negotiation and verification failures are returned
// as values carrying a SecAgreeError, so callers can answer 494/403 without a try/catch.
import { InputError } from '../util/errors.ts';

/** Why a sec-agree header was refused or a negotiation / bidding-down check failed. */
export type SecAgreeCode =
  // codec: the header does not parse or a value is out of range
  | 'SECAGREE_SYNTAX'
  | 'SECAGREE_TOO_LONG'
  | 'SECAGREE_EMPTY_MECHANISM'
  | 'SECAGREE_BAD_Q'
  | 'SECAGREE_DUPLICATE_Q'
  | 'SECAGREE_BAD_SPI'
  | 'SECAGREE_BAD_PORT'
  | 'SECAGREE_BAD_PARAM'
  | 'SECAGREE_DUPLICATE_PARAM'
  | 'SECAGREE_BAD_POLICY'
  // P-CSCF negotiation (33.203 §7.2, Annex M; spec digest §5.4, §10.6)
  | 'SECAGREE_NO_COMMON_ALG'
  | 'SECAGREE_NAT_NO_UDP_ENC_TUN'
  | 'SECAGREE_CLIENT_INCONSISTENT'
  | 'SECAGREE_CLIENT_INCOMPLETE'
  // UE choice (24.229 §5.1.1.5.1; spec digest §5.5, §10.5)
  | 'SECAGREE_NO_SERVER_MECHANISM'
  | 'SECAGREE_SERVER_INCOMPLETE'
  // bidding-down protection (33.203 Annex H; spec digest §5.6, §10.7)
  | 'SECAGREE_VERIFY_MISMATCH'
  | 'SECAGREE_CLIENT_CHANGED';

/** A sec-agree failure: an InputError (bad input from the peer, CLI exit 2) naming the header, field and value. */
export class SecAgreeError extends InputError {
  declare readonly code: SecAgreeCode;
  /**
   * @param field the header field or parameter at fault (e.g. `spi-c`, `mechanism 2`), when one is
   * @param value the offending value as received (truncated), when there is one
   */
  constructor(
    code: SecAgreeCode,
    message: string,
    readonly field?: string,
    readonly value?: string,
  ) {
    super(message, code);
  }
}

/** Quotes a received value for an error message, cut short so huge inputs stay readable. */
export function showValue(v: string): string {
  return JSON.stringify(v.length > 80 ? v.slice(0, 80) + '…' : v);
}
