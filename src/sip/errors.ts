// Errors of the SIP layer. SipParseError: input that does not parse (the caller answers 400, 505 or
// drops, switching on `code`); SipError: misuse of the API and transport failures. Messages name the
// header and quote the offending value (shortened), never more of the message than that.
import { ImsecError } from '../util/errors.ts';
import type { SipMessage } from './message.ts';

/** Why a SIP message or header did not parse. */
export type SipParseErrorCode =
  /** Request-Line / Status-Line does not follow RFC 3261 §7.1 / §7.2. */
  | 'SIP_BAD_START_LINE'
  /** A SIP-Version other than SIP/2.0 (RFC 3261 §8.2.2: answer 505). */
  | 'SIP_BAD_VERSION'
  /** A header line without a colon, a non-token name, bad encoding or a stray continuation line. */
  | 'SIP_BAD_HEADER'
  /** A mandatory header (RFC 3261 §8.1.1) is absent, or Content-Length on a stream. */
  | 'SIP_MISSING_HEADER'
  /** Content-Length not a number, or several that disagree. */
  | 'SIP_BAD_CONTENT_LENGTH'
  /** Beyond a configured limit: message size, header count or header line length. */
  | 'SIP_TOO_LARGE'
  /** The datagram ends before the body that Content-Length announces (RFC 3261 §18.3). */
  | 'SIP_TRUNCATED'
  /** A SIP/SIPS/tel URI that does not parse. */
  | 'SIP_BAD_URI'
  | 'SIP_BAD_VIA'
  | 'SIP_BAD_NAME_ADDR'
  | 'SIP_BAD_CSEQ'
  | 'SIP_BAD_PARAMS'
  | 'SIP_BAD_MAX_FORWARDS'
  | 'SIP_BAD_CALL_ID'
  /** CSeq method differs from the request method (RFC 4475 §3.1.2.17). */
  | 'SIP_CSEQ_MISMATCH';

/** A SIP message or header that does not parse (untrusted input: returned in results, not thrown, by the parsers). */
export class SipParseError extends ImsecError {
  declare readonly code: SipParseErrorCode;
  /**
   * @param header the header at fault, canonical name, when there is one.
   * @param partial the message as far as it parsed (start line and headers, empty body), when the
   *   fault lies after the headers (Content-Length, truncation, version): enough to build a 400/505.
   */
  constructor(
    code: SipParseErrorCode,
    message: string,
    readonly header?: string,
    readonly partial?: SipMessage,
  ) {
    super(code, message);
  }
}

/** Why a SIP operation failed (transport, transaction, usage). */
export type SipErrorCode =
  /** A caller passed a value the API refuses (bad header name/value, ACK to sendRequest, …). */
  | 'SIP_INVALID_ARGUMENT'
  /** A transaction was asked to move to a state its machine does not allow from the current one. */
  | 'SIP_ILLEGAL_TRANSITION'
  /** A client transaction with that branch and method already exists. */
  | 'SIP_DUPLICATE_TRANSACTION'
  /** The transport is closed. */
  | 'SIP_TRANSPORT_CLOSED'
  /** No peer at the destination (stream transports, memory network). */
  | 'SIP_UNREACHABLE'
  /** The transport reported a failure while sending. */
  | 'SIP_TRANSPORT_FAILED'
  /** The request (or receive context) of a transaction read after the machine released it (Completed and later keep only what absorbing retransmissions needs). */
  | 'SIP_TRANSACTION_RELEASED';

/** A failure of the SIP layer other than parsing (transport, transaction, usage), with a code. */
export class SipError extends ImsecError {
  declare readonly code: SipErrorCode;
  constructor(code: SipErrorCode, message: string) {
    super(code, message);
  }
}

/** Shortens a value for an error message. */
export function show(value: string, max = 60): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}
