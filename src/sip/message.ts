// The SIP message model (RFC 3261 §7): requests, responses, and an ordered header list with
// case-insensitive access, compact forms expanded to canonical names (§7.3.3) and comma-list
// splitting (§7.3.1). Content-Length is not stored: the body is the truth and the serializer writes it.
import { SipError, show } from './errors.ts';
import { isToken, splitTopLevel } from './_syntax.ts';

/** One header field as received or to send: name as written and value (folding undone). */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/** RFC 3261 §7.3.3 and §20 compact forms (plus RFC 3265/3515/3892/4028/3841/4474). */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  i: 'Call-ID', m: 'Contact', f: 'From', t: 'To', v: 'Via', l: 'Content-Length', c: 'Content-Type',
  k: 'Supported', e: 'Content-Encoding', s: 'Subject', o: 'Event', u: 'Allow-Events', r: 'Refer-To',
  b: 'Referred-By', x: 'Session-Expires', a: 'Accept-Contact', j: 'Reject-Contact', d: 'Request-Disposition',
  y: 'Identity', n: 'Identity-Info',
};

/** Canonical name → its compact form (the inverse of COMPACT_FORMS). */
export const COMPACT_OF: ReadonlyMap<string, string> = new Map(Object.entries(COMPACT_FORMS).map(([c, n]) => [n, c]));

const CANONICAL_LIST = [
  'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow', 'Allow-Events',
  'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact', 'Content-Disposition',
  'Content-Encoding', 'Content-Language', 'Content-Length', 'Content-Type', 'CSeq', 'Date', 'Error-Info',
  'Event', 'Expires', 'From', 'Identity', 'Identity-Info', 'In-Reply-To', 'Max-Forwards', 'Min-Expires',
  'Min-SE', 'MIME-Version', 'Organization', 'P-Access-Network-Info', 'P-Asserted-Identity',
  'P-Associated-URI', 'P-Called-Party-ID', 'P-Charging-Function-Addresses', 'P-Charging-Vector',
  'P-Preferred-Identity', 'P-Visited-Network-ID', 'Path', 'Priority', 'Privacy', 'Proxy-Authenticate',
  'Proxy-Authorization', 'Proxy-Require', 'RAck', 'Reason', 'Record-Route', 'Refer-To', 'Referred-By',
  'Reject-Contact', 'Reply-To', 'Request-Disposition', 'Require', 'Retry-After', 'Route', 'RSeq',
  'Security-Client', 'Security-Server', 'Security-Verify', 'Server', 'Service-Route', 'Session-Expires',
  'Subject', 'Subscription-State', 'Supported', 'Timestamp', 'To', 'Unsupported', 'User-Agent', 'Via',
  'Warning', 'WWW-Authenticate',
];
const CANONICAL = new Map(CANONICAL_LIST.map((n) => [n.toLowerCase(), n]));

/**
 * Headers whose values are never split at commas: RFC 3261 §7.3.1 names WWW-Authenticate,
 * Authorization, Proxy-Authenticate and Proxy-Authorization; the others are single-valued headers
 * whose grammar admits a comma (dates, free text, name-addr with a display name, comma-bearing params).
 */
const NEVER_SPLIT = new Set(
  [
    'WWW-Authenticate', 'Authorization', 'Proxy-Authenticate', 'Proxy-Authorization', 'Authentication-Info',
    'Date', 'Retry-After', 'Subject', 'User-Agent', 'Server', 'Organization', 'Call-ID', 'CSeq',
    'Content-Type', 'Content-Length', 'Content-Disposition', 'Max-Forwards', 'Expires', 'Min-Expires',
    'MIME-Version', 'Priority', 'Timestamp', 'From', 'To', 'Reply-To', 'Refer-To', 'Referred-By', 'Event',
    'Subscription-State', 'Session-Expires', 'Min-SE', 'RSeq', 'RAck', 'Identity', 'P-Charging-Vector',
    'P-Charging-Function-Addresses', 'P-Called-Party-ID',
  ].map((n) => n.toLowerCase()),
);

/** Expands a compact form and restores the canonical spelling of known headers; others stay as given. */
export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  if (lower.length === 1) return COMPACT_FORMS[lower] ?? name;
  return CANONICAL.get(lower) ?? name;
}

/** Whether getAll splits this header's values at top-level commas. */
export function isListHeader(name: string): boolean {
  return !NEVER_SPLIT.has(key(name));
}

// Lookup keys by exact spelling. Header names reach here on every get/has/remove, for every field;
// memoised, but bounded (names come from the network), so a flood of odd names costs no memory.
const KEY_CACHE = new Map<string, string>();
const KEY_CACHE_MAX = 1024;

function key(name: string): string {
  const hit = KEY_CACHE.get(name);
  if (hit !== undefined) return hit;
  const k = canonicalHeaderName(name).toLowerCase();
  if (KEY_CACHE.size < KEY_CACHE_MAX) KEY_CACHE.set(name, k);
  return k;
}

function checkField(name: string, value: string): void {
  if (!isToken(name)) throw new SipError('SIP_INVALID_ARGUMENT', `header name must be a token, got ${show(name)}`);
  // CR/LF in a value would start a new header on the wire (header injection).
  if (/[\r\n]/.test(value)) throw new SipError('SIP_INVALID_ARGUMENT', `${name}: value must not contain CR or LF, got ${show(value)}`);
}

/** An ordered header list. Names are canonicalised on the way in; lookups ignore case. */
export class SipHeaders {
  private readonly fields: HeaderField[] = [];

  constructor(fields: Iterable<HeaderField | readonly [string, string]> = []) {
    for (const f of fields) {
      const [name, value] = Array.isArray(f) ? (f as readonly [string, string]) : [(f as HeaderField).name, (f as HeaderField).value];
      this.append(name, value);
    }
  }

  /** The first value: for list headers the first comma-separated element (e.g. the top Via). */
  get(name: string): string | undefined {
    const k = key(name);
    for (const f of this.fields) {
      if (key(f.name) !== k) continue;
      if (!isListHeader(f.name)) return f.value;
      const first = splitTopLevel(f.value)[0];
      if (first !== undefined) return first;
    }
    return undefined;
  }

  /** Every value, in order, comma lists split (except the headers that must never be split). */
  getAll(name: string): string[] {
    const k = key(name);
    const split = isListHeader(name);
    const out: string[] = [];
    for (const f of this.fields) if (key(f.name) === k) out.push(...(split ? splitTopLevel(f.value) : [f.value]));
    return out;
  }

  /** The values as they stand on their header lines, unsplit. */
  raw(name: string): string[] {
    const k = key(name);
    return this.fields.filter((f) => key(f.name) === k).map((f) => f.value);
  }

  has(name: string): boolean {
    const k = key(name);
    return this.fields.some((f) => key(f.name) === k);
  }

  /** Replaces every line of this header by the given values, at the position of the first one. */
  set(name: string, value: string | readonly string[]): this {
    const values = typeof value === 'string' ? [value] : value;
    const canon = canonicalHeaderName(name);
    for (const v of values) checkField(canon, v);
    const k = key(name);
    const at = this.fields.findIndex((f) => key(f.name) === k);
    this.remove(name);
    this.fields.splice(at < 0 ? this.fields.length : at, 0, ...values.map((v) => ({ name: canon, value: v })));
    return this;
  }

  append(name: string, value: string): this {
    const canon = canonicalHeaderName(name);
    checkField(canon, value);
    this.fields.push({ name: canon, value });
    return this;
  }

  /** Inserts above the topmost line of this header (Via, Record-Route, Path), or first of all. */
  prepend(name: string, value: string): this {
    const canon = canonicalHeaderName(name);
    checkField(canon, value);
    const k = key(name);
    const at = this.fields.findIndex((f) => key(f.name) === k);
    this.fields.splice(at < 0 ? 0 : at, 0, { name: canon, value });
    return this;
  }

  /** Removes every line of this header; returns how many. */
  remove(name: string): number {
    const k = key(name);
    let n = 0;
    for (let i = this.fields.length - 1; i >= 0; i--) {
      if (key(this.fields[i]!.name) === k) {
        this.fields.splice(i, 1);
        n++;
      }
    }
    return n;
  }

  /** Removes the first value (e.g. a proxy's own Via, RFC 3261 §16.7), rewriting a comma-joined line. */
  removeFirst(name: string): string | undefined {
    const k = key(name);
    const i = this.fields.findIndex((f) => key(f.name) === k);
    if (i < 0) return undefined;
    const f = this.fields[i]!;
    const parts = isListHeader(f.name) ? splitTopLevel(f.value) : [f.value];
    if (parts.length <= 1) this.fields.splice(i, 1);
    else this.fields[i] = { name: f.name, value: parts.slice(1).join(', ') };
    return parts[0];
  }

  /** The header lines in order. */
  entries(): readonly HeaderField[] {
    return this.fields;
  }

  [Symbol.iterator](): Iterator<HeaderField> {
    return this.fields[Symbol.iterator]();
  }

  get size(): number {
    return this.fields.length;
  }

  clone(): SipHeaders {
    return new SipHeaders(this.fields);
  }
}

const EMPTY = new Uint8Array(0);

/** A SIP request (RFC 3261 §7.1): method, Request-URI, header fields in order, body. */
export class SipRequest {
  readonly kind = 'request' as const;
  /**
   * Serialize with the compact header names of RFC 3261 §7.3.3 (Via → v, Content-Length → l, …):
   * for a sender keeping a large request under the §18.1.1 size limits (the UE's REGISTER over UDP).
   */
  compact = false;
  constructor(
    public method: string,
    /** The Request-URI as written (parse it with `parseUri`). */
    public uri: string,
    public headers: SipHeaders = new SipHeaders(),
    public body: Uint8Array = EMPTY,
  ) {}

  clone(): SipRequest {
    const c = new SipRequest(this.method, this.uri, this.headers.clone(), this.body.slice());
    c.compact = this.compact;
    return c;
  }
}

/** A SIP response (RFC 3261 §7.2): status code, reason phrase, header fields in order, body. */
export class SipResponse {
  readonly kind = 'response' as const;
  constructor(
    public status: number,
    public reason: string,
    public headers: SipHeaders = new SipHeaders(),
    public body: Uint8Array = EMPTY,
  ) {}

  clone(): SipResponse {
    return new SipResponse(this.status, this.reason, this.headers.clone(), this.body.slice());
  }
}

/** A SIP request or response. */
export type SipMessage = SipRequest | SipResponse;
