// Checks the headers every request and response must carry (RFC 3261 §8.1.1, §8.2.2 via 400) and
// returns them parsed, so the transaction layer and the TU never re-parse. A failure is a value with
// a SipParseError whose message is the reason phrase for a 400; nothing is thrown. Inside, the
// checks exit early by throwing SipParseError, which the entry points turn into the result (anything
// else is a bug and propagates).
import { SipParseError, show } from './errors.ts';
import { parsedValue, rememberParsed, type HeaderField, type SipRequest, type SipResponse } from './message.ts';
import { parseCSeqOrThrow, type CSeq } from './cseq.ts';
import { parseNameAddrOrThrow, type NameAddr } from './name-addr.ts';
import { parseUriOrThrow, uriScheme } from './uri.ts';
import { parseViaOrThrow, type Via } from './via.ts';
import { splitTopLevel } from './_syntax.ts';

/** What validation extracted from a message: the parsed Via, From, To, Call-ID and CSeq. */
export interface MessageInfo {
  /** Every Via value, top first. */
  readonly vias: readonly Via[];
  readonly cseq: CSeq;
  readonly callId: string;
  readonly from: NameAddr;
  readonly to: NameAddr;
}

/** What validation extracted from a request: the message fields and the parsed Request-URI. */
export interface RequestInfo extends MessageInfo {
  /** Absent when the request carries none (tolerated: RFC 2543 peers). */
  readonly maxForwards?: number;
}

/** A validated message with its parsed mandatory headers, or the reason it is not a valid message. */
export type Validation<T> = { readonly ok: true; readonly info: T } | { readonly ok: false; readonly error: SipParseError };

// The parsers of the lines validation reads, as stable functions: each line's parse is kept on the
// line (message.ts parsedValue), so a message sharing lines with one validated before (a proxy's
// forwarded copy, a clone) is not parsed again.
const parseViaLine = (line: string): Via[] => splitTopLevel(line).map(parseViaOrThrow);
const parseFrom = (value: string): NameAddr => parseNameAddrOrThrow(value, 'From');
const parseTo = (value: string): NameAddr => parseNameAddrOrThrow(value, 'To');

/** Records `via` as the parse of `line`, a Via line holding that one value (the layer's stamped top Via). */
export function rememberViaLine(line: HeaderField, via: Via): void {
  rememberParsed(line, parseViaLine, [via]);
}

/**
 * The URI of a message's To (the first To line), from the parse validation keeps on the line:
 * undefined when there is no To or it does not parse. What parseNameAddr of `headers.get('To')` gives.
 */
export function toUri(msg: SipRequest | SipResponse): string | undefined {
  for (const f of msg.headers.entries()) {
    if (f.name !== 'To') continue;
    try {
      return parsedValue(f, parseTo).uri;
    } catch (e) {
      if (e instanceof SipParseError) return undefined;
      throw e;
    }
  }
  return undefined;
}

/**
 * The top Via of a validated message (what parseVia of `headers.get('Via')` gives), from the parse
 * validation keeps on its line; throws SipParseError when it does not parse, TypeError when there is none.
 */
export function topVia(msg: SipRequest | SipResponse): Via {
  for (const f of msg.headers.entries()) {
    if (f.name !== 'Via') continue;
    const vias = parsedValue(f, parseViaLine);
    if (vias.length > 0) return vias[0]!;
  }
  throw new TypeError('no Via');
}

function common(msg: SipRequest | SipResponse): MessageInfo {
  // One pass over the header lines (names are stored canonical, compact forms expanded).
  let via: HeaderField[] | undefined;
  let from: HeaderField | undefined;
  let to: HeaderField | undefined;
  let callId: string | undefined;
  let cseq: HeaderField | undefined;
  let repeated = 0; // bits: From, To, Call-ID, CSeq seen twice
  for (const f of msg.headers.entries()) {
    const n = f.name;
    if (n === 'Via') (via ??= []).push(f);
    else if (n === 'From') from === undefined ? (from = f) : (repeated |= 1);
    else if (n === 'To') to === undefined ? (to = f) : (repeated |= 2);
    else if (n === 'Call-ID') callId === undefined ? (callId = f.value) : (repeated |= 4);
    else if (n === 'CSeq') cseq === undefined ? (cseq = f) : (repeated |= 8);
  }
  if (via === undefined) throw missing('Via');
  if (from === undefined) throw missing('From');
  if (to === undefined) throw missing('To');
  if (callId === undefined) throw missing('Call-ID');
  if (cseq === undefined) throw missing('CSeq');
  if (repeated !== 0) {
    const name = repeated & 1 ? 'From' : repeated & 2 ? 'To' : repeated & 4 ? 'Call-ID' : 'CSeq';
    throw new SipParseError('SIP_BAD_HEADER', `more than one ${name}`, name);
  }
  const vias: Via[] = [];
  for (const line of via) for (const v of parsedValue(line, parseViaLine)) vias.push(v);
  if (vias.length === 0) throw new SipParseError('SIP_MISSING_HEADER', 'empty Via', 'Via');
  // callid = word [ "@" word ]: no LWS, not empty.
  if (callId.length === 0 || /[\s]/.test(callId)) throw new SipParseError('SIP_BAD_CALL_ID', `Call-ID ${show(callId)}`, 'Call-ID');
  return {
    vias,
    cseq: parsedValue(cseq, parseCSeqOrThrow),
    callId,
    from: parsedValue(from, parseFrom),
    to: parsedValue(to, parseTo),
  };
}

function missing(name: string): SipParseError {
  return new SipParseError('SIP_MISSING_HEADER', `missing ${name}`, name);
}

/** Checks the mandatory headers of a request (RFC 3261 §8.1.1, §8.2) and parses them; a failure is a 400 to send. */
export function validateRequest(req: SipRequest): Validation<RequestInfo> {
  try {
    return { ok: true, info: requestInfo(req) };
  } catch (e) {
    return failed(e);
  }
}

function requestInfo(req: SipRequest): RequestInfo {
  const base = common(req);
  // RFC 3261 §8.1.1.5: "The method MUST match that of the request"; RFC 4475 §3.1.2.17 answers 400.
  if (base.cseq.method !== req.method) {
    throw new SipParseError('SIP_CSEQ_MISMATCH', `CSeq method ${show(base.cseq.method)} differs from ${show(req.method)}`, 'CSeq');
  }
  // The Request-URI of a scheme we know must parse (other schemes are the TU's to judge: 416).
  const scheme = uriScheme(req.uri);
  if (scheme === 'sip' || scheme === 'sips' || scheme === 'tel') parseUriOrThrow(req.uri);
  const mfs = req.headers.raw('Max-Forwards');
  if (mfs.length > 1) throw new SipParseError('SIP_BAD_MAX_FORWARDS', 'more than one Max-Forwards', 'Max-Forwards');
  const mf = mfs[0];
  let maxForwards: number | undefined;
  if (mf !== undefined) {
    // Max-Forwards = 1*DIGIT, 0..255 (§20.22; RFC 4475 §3.1.2.4 rejects 300).
    if (!/^[0-9]{1,10}$/.test(mf) || Number(mf) > 255)
      throw new SipParseError('SIP_BAD_MAX_FORWARDS', `Max-Forwards ${show(mf)}`, 'Max-Forwards');
    maxForwards = Number(mf);
  }
  if (maxForwards === undefined) return base;
  return { vias: base.vias, cseq: base.cseq, callId: base.callId, from: base.from, to: base.to, maxForwards };
}

/** Checks the mandatory headers of a response (RFC 3261 §8.1.3) and parses them; an invalid response is dropped. */
export function validateResponse(res: SipResponse): Validation<MessageInfo> {
  try {
    return { ok: true, info: common(res) };
  } catch (e) {
    return failed(e);
  }
}

/** What `attempt` does, without a closure and a second result object per message: a SipParseError is the verdict, anything else a bug. */
function failed(e: unknown): { readonly ok: false; readonly error: SipParseError } {
  if (e instanceof SipParseError) return { ok: false, error: e };
  throw e;
}
