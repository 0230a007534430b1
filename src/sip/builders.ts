// Builders: identifiers (branch §8.1.1.7, tags §19.3, Call-ID §8.1.1.4), responses (§8.2.6), the
// ACK of a non-2xx final response (§17.1.1.3), CANCEL (§9.1), and a plain request (§8.1.1).
import { randomHex, type RandomHex } from '../util/random-hex.ts';
import { SipError, SipParseError } from './errors.ts';
import { SipHeaders, SipRequest, SipResponse, type HeaderField } from './message.ts';
import { parseCSeqOrThrow } from './cseq.ts';
import { formatNameAddr, parseNameAddrOrThrow, type NameAddr } from './name-addr.ts';
import { BRANCH_MAGIC_COOKIE } from './via.ts';
import { reasonPhrase } from './reason-phrases.ts';

// Each takes its randomness from `rand` (default: the pooled CSPRNG), so tests and simulations can
// inject a seeded source (util/random-hex.ts seededRandomHex) and get reproducible messages.

/** A branch that is "unique across space and time" and starts with the magic cookie (§8.1.1.7). */
export function newBranch(rand: RandomHex = randomHex): string {
  return `${BRANCH_MAGIC_COOKIE}${rand(12)}`;
}

/** §19.3: "at least 32 bits of randomness" — 64 here. */
export function newTag(rand: RandomHex = randomHex): string {
  return rand(8);
}

/** §8.1.1.4: a globally unique Call-ID; `host` is appended as `@host` when given. */
export function newCallId(host?: string, rand: RandomHex = randomHex): string {
  const id = rand(16);
  return host === undefined ? id : `${id}@${host}`;
}

/** Headers to add, as fields or `[name, value]` pairs, in order. */
export type ExtraHeaders = Iterable<HeaderField | readonly [string, string]>;

/** Options of `createResponse`: reason phrase, To tag, extra headers and body. */
export interface CreateResponseOptions {
  /** The To tag to add when the request's To has none (default: a new random tag). Keep it for every response of one transaction. */
  readonly toTag?: string;
  readonly body?: Uint8Array;
}

/** Adds `;tag=` to a To value that lacks one (unparseable values get it appended as text). */
export function withToTag(to: string, tag: string): string {
  let na: NameAddr;
  try {
    na = parseNameAddrOrThrow(to, 'To');
  } catch (e) {
    if (e instanceof SipParseError) return `${to};tag=${tag}`;
    throw e;
  }
  if (na.params.has('tag')) return to;
  na.params.set('tag', tag);
  return formatNameAddr(na);
}

/**
 * RFC 3261 §8.2.6.2: "The From field of the response MUST equal the From header field of the request.
 * The Call-ID … MUST equal … The CSeq … MUST equal … The Via header field values in the response MUST
 * equal the Via header field values in the request and MUST maintain the same ordering." The To is
 * copied, with a tag added when absent, unless the status is 100 ("a UAS MUST add a tag … except 100").
 * §8.2.6.1: a 100 Trying copies the Timestamp header. Headers missing from the request are skipped,
 * so this also answers a malformed request with a 400.
 */
export function createResponse(
  request: SipRequest,
  status: number,
  reason?: string,
  extraHeaders: ExtraHeaders = [],
  options: CreateResponseOptions = {},
): SipResponse {
  if (!Number.isInteger(status) || status < 100 || status > 699)
    throw new SipError('SIP_INVALID_ARGUMENT', `status must be 100..699, got ${status}`);
  const h = new SipHeaders();
  // One pass over the request's lines (names are stored canonical): the Vias in order, the first
  // From, To, Call-ID and CSeq.
  let from: string | undefined;
  let to: string | undefined;
  let callId: string | undefined;
  let cseq: string | undefined;
  for (const f of request.headers.entries()) {
    const n = f.name;
    if (n === 'Via') h.append('Via', f.value);
    else if (n === 'From') from ??= f.value;
    else if (n === 'To') to ??= f.value;
    else if (n === 'Call-ID') callId ??= f.value;
    else if (n === 'CSeq') cseq ??= f.value;
  }
  if (from !== undefined) h.append('From', from);
  if (to !== undefined) h.append('To', status > 100 ? withToTag(to, options.toTag ?? newTag()) : to);
  if (callId !== undefined) h.append('Call-ID', callId);
  if (cseq !== undefined) h.append('CSeq', cseq);
  if (status === 100) for (const v of request.headers.raw('Timestamp')) h.append('Timestamp', v);
  for (const f of extraHeaders) Array.isArray(f) ? h.append(f[0], f[1]) : h.append((f as HeaderField).name, (f as HeaderField).value);
  return new SipResponse(status, reason ?? reasonPhrase(status), h, options.body);
}

/**
 * RFC 3261 §17.1.1.3: the ACK for a non-2xx final response to `invite`. Request-URI, Call-ID, From
 * equal to the INVITE's; To from the response; a single Via equal to the INVITE's top Via; CSeq number
 * of the INVITE with method ACK; the INVITE's Route headers.
 */
export function createAck(invite: SipRequest, response: SipResponse): SipRequest {
  return derived(invite, 'ACK', response.headers.raw('To')[0]);
}

/**
 * RFC 3261 §9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the
 * CANCEL request MUST be identical to those in the request being cancelled, including tags. A CANCEL
 * constructed by a client MUST have only a single Via header field value matching the top Via value in
 * the request being cancelled." Route headers are copied too.
 */
export function createCancel(invite: SipRequest): SipRequest {
  return derived(invite, 'CANCEL', invite.headers.raw('To')[0]);
}

function derived(invite: SipRequest, method: 'ACK' | 'CANCEL', to: string | undefined): SipRequest {
  const topVia = invite.headers.get('Via');
  const cseq = invite.headers.get('CSeq');
  const callId = invite.headers.get('Call-ID');
  const from = invite.headers.get('From');
  if (!topVia || !cseq || !callId || !from || !to)
    throw new SipError('SIP_INVALID_ARGUMENT', `${method}: the INVITE lacks Via, From, To, Call-ID or CSeq`);
  const h = new SipHeaders([
    ['Via', topVia],
    ['Max-Forwards', '70'],
    ['From', from],
    ['To', to],
    ['Call-ID', callId],
    // The INVITE is one this process sent: its CSeq parses.
    ['CSeq', `${parseCSeqOrThrow(cseq).seq} ${method}`],
  ]);
  for (const r of invite.headers.raw('Route')) h.append('Route', r);
  return new SipRequest(method, invite.uri, h);
}

/** What `createRequest` needs: method, Request-URI, From/To, Call-ID, CSeq, Via sent-by and extra headers. */
export interface CreateRequestOptions {
  readonly method: string;
  readonly uri: string;
  /** The complete top Via value, e.g. `SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK…;rport`. */
  readonly via: string;
  readonly from: string;
  readonly to: string;
  readonly callId: string;
  readonly cseq: number;
  readonly maxForwards?: number;
  /** Further headers in order (Contact, Route, Supported, Security-Client, Authorization, …). */
  readonly headers?: ExtraHeaders;
  readonly body?: Uint8Array;
}

/** §8.1.1: a request with the six mandatory headers (Via, Max-Forwards, From, To, Call-ID, CSeq) first. */
export function createRequest(o: CreateRequestOptions): SipRequest {
  // Appended one by one: no array of pairs built (and spread) per request.
  const h = new SipHeaders()
    .append('Via', o.via)
    .append('Max-Forwards', o.maxForwards === undefined ? '70' : String(o.maxForwards))
    .append('From', o.from)
    .append('To', o.to)
    .append('Call-ID', o.callId)
    .append('CSeq', `${o.cseq} ${o.method}`);
  if (o.headers !== undefined)
    for (const f of o.headers) Array.isArray(f) ? h.append(f[0], f[1]) : h.append((f as HeaderField).name, (f as HeaderField).value);
  return new SipRequest(o.method, o.uri, h, o.body);
}
