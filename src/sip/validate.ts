// Checks the headers every request and response must carry (RFC 3261 §8.1.1, §8.2.2 via 400) and
// returns them parsed, so the transaction layer and the TU never re-parse. A failure is a value with
// a SipParseError whose message is the reason phrase for a 400; nothing is thrown.
import { SipParseError, show } from './errors.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { parseCSeq, type CSeq } from './cseq.ts';
import { parseNameAddr, type NameAddr } from './name-addr.ts';
import { parseUri, uriScheme } from './uri.ts';
import { parseVia, type Via } from './via.ts';

export interface MessageInfo {
  /** Every Via value, top first. */
  readonly vias: readonly Via[];
  readonly cseq: CSeq;
  readonly callId: string;
  readonly from: NameAddr;
  readonly to: NameAddr;
}

export interface RequestInfo extends MessageInfo {
  /** Absent when the request carries none (tolerated: RFC 2543 peers). */
  readonly maxForwards?: number;
}

export type Validation<T> = { readonly ok: true; readonly info: T } | { readonly ok: false; readonly error: SipParseError };

function common(msg: SipRequest | SipResponse): MessageInfo {
  const h = msg.headers;
  for (const name of ['Via', 'From', 'To', 'Call-ID', 'CSeq']) {
    if (!h.has(name)) throw new SipParseError('SIP_MISSING_HEADER', `missing ${name}`, name);
  }
  for (const name of ['From', 'To', 'Call-ID', 'CSeq']) {
    if (h.raw(name).length > 1) throw new SipParseError('SIP_BAD_HEADER', `more than one ${name}`, name);
  }
  const vias = h.getAll('Via').map(parseVia);
  if (vias.length === 0) throw new SipParseError('SIP_MISSING_HEADER', 'empty Via', 'Via');
  const callId = h.get('Call-ID')!;
  // callid = word [ "@" word ]: no LWS, not empty.
  if (callId.length === 0 || /[\s]/.test(callId)) throw new SipParseError('SIP_BAD_CALL_ID', `Call-ID ${show(callId)}`, 'Call-ID');
  return {
    vias,
    cseq: parseCSeq(h.get('CSeq')!),
    callId,
    from: parseNameAddr(h.get('From')!, 'From'),
    to: parseNameAddr(h.get('To')!, 'To'),
  };
}

export function validateRequest(req: SipRequest): Validation<RequestInfo> {
  try {
    const base = common(req);
    // RFC 3261 §8.1.1.5: "The method MUST match that of the request"; RFC 4475 §3.1.2.17 answers 400.
    if (base.cseq.method !== req.method) {
      throw new SipParseError('SIP_CSEQ_MISMATCH', `CSeq method ${show(base.cseq.method)} differs from ${show(req.method)}`, 'CSeq');
    }
    // The Request-URI of a scheme we know must parse (other schemes are the TU's to judge: 416).
    const scheme = uriScheme(req.uri);
    if (scheme === 'sip' || scheme === 'sips' || scheme === 'tel') parseUri(req.uri);
    const mfs = req.headers.raw('Max-Forwards');
    if (mfs.length > 1) throw new SipParseError('SIP_BAD_MAX_FORWARDS', 'more than one Max-Forwards', 'Max-Forwards');
    const mf = mfs[0];
    let maxForwards: number | undefined;
    if (mf !== undefined) {
      // Max-Forwards = 1*DIGIT, 0..255 (§20.22; RFC 4475 §3.1.2.4 rejects 300).
      if (!/^[0-9]{1,10}$/.test(mf) || Number(mf) > 255) throw new SipParseError('SIP_BAD_MAX_FORWARDS', `Max-Forwards ${show(mf)}`, 'Max-Forwards');
      maxForwards = Number(mf);
    }
    return { ok: true, info: { ...base, ...(maxForwards !== undefined && { maxForwards }) } };
  } catch (e) {
    return { ok: false, error: asParseError(e) };
  }
}

export function validateResponse(res: SipResponse): Validation<MessageInfo> {
  try {
    return { ok: true, info: common(res) };
  } catch (e) {
    return { ok: false, error: asParseError(e) };
  }
}

function asParseError(e: unknown): SipParseError {
  return e instanceof SipParseError ? e : new SipParseError('SIP_BAD_HEADER', e instanceof Error ? e.message : String(e));
}
