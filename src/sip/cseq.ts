// CSeq (RFC 3261 §8.1.1.5, §20.16): a sequence number below 2^31 … expressible in 32 bits, and a method.
import { err, ok, type Result } from '../util/result.ts';
import { SipParseError, show } from './errors.ts';
import { isToken, skipWs, trimWs } from './_syntax.ts';

/** A CSeq header value (RFC 3261 §20.16): sequence number and method. */
export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

/** RFC 3261 §8.1.1.5: "The sequence number MUST be expressible as a 32-bit unsigned integer". */
export const CSEQ_MAX = 0xffffffff;

/** Parses a CSeq value from the network: a SipParseError (SIP_BAD_CSEQ) comes back as a result. */
export function parseCSeq(value: string): Result<CSeq, SipParseError> {
  // attempt()'s contract inline: no closure per call (the P-CSCF parses several per REGISTER).
  try {
    return ok(parseCSeqOrThrow(value));
  } catch (e) {
    if (e instanceof SipParseError) return err(e);
    throw e;
  }
}

/** parseCSeq for trusted input (tests, a CSeq this process wrote): throws SipParseError. */
export function parseCSeqOrThrow(value: string): CSeq {
  const s = trimWs(value);
  let i = 0;
  while (i < s.length && s[i]! >= '0' && s[i]! <= '9') i++;
  const digits = s.slice(0, i);
  if (digits.length === 0) throw cseqError(value, 'missing sequence number');
  if (i === s.length || !(s[i] === ' ' || s[i] === '\t')) throw cseqError(value, 'expected LWS after the sequence number');
  const method = s.slice(skipWs(s, i));
  if (!isToken(method)) throw cseqError(value, 'bad method');
  const seq = digits.length > 10 ? Infinity : Number(digits);
  if (seq > CSEQ_MAX) throw cseqError(value, 'sequence number above 2^32-1');
  return { seq, method };
}

function cseqError(value: string, why: string): SipParseError {
  return new SipParseError('SIP_BAD_CSEQ', `CSeq: ${why} in ${show(value)}`, 'CSeq');
}

/** Formats a CSeq header value: `<number> <METHOD>`. */
export function formatCSeq(c: CSeq): string {
  return `${c.seq} ${c.method}`;
}
