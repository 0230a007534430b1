// The SIP message model (RFC 3261 §7): requests, responses, and an ordered header list with
// case-insensitive access, compact forms expanded to canonical names (§7.3.3) and comma-list
// splitting (§7.3.1). Content-Length is not stored: the body is the truth and the serializer writes it.
import { SipError, SipParseError, show } from './errors.ts';
import { isToken, isWs, splitTopLevel, trimWs } from './_syntax.ts';

/** One header field as received or to send: name as written and value (folding undone). */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/** RFC 3261 §7.3.3 and §20 compact forms (plus RFC 3265/3515/3892/4028/3841/4474). */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  i: 'Call-ID',
  m: 'Contact',
  f: 'From',
  t: 'To',
  v: 'Via',
  l: 'Content-Length',
  c: 'Content-Type',
  k: 'Supported',
  e: 'Content-Encoding',
  s: 'Subject',
  o: 'Event',
  u: 'Allow-Events',
  r: 'Refer-To',
  b: 'Referred-By',
  x: 'Session-Expires',
  a: 'Accept-Contact',
  j: 'Reject-Contact',
  d: 'Request-Disposition',
  y: 'Identity',
  n: 'Identity-Info',
};

/** Canonical name → its compact form (the inverse of COMPACT_FORMS). */
export const COMPACT_OF: ReadonlyMap<string, string> = new Map(Object.entries(COMPACT_FORMS).map(([c, n]) => [n, c]));

const CANONICAL_LIST = [
  'Accept',
  'Accept-Contact',
  'Accept-Encoding',
  'Accept-Language',
  'Alert-Info',
  'Allow',
  'Allow-Events',
  'Authentication-Info',
  'Authorization',
  'Call-ID',
  'Call-Info',
  'Contact',
  'Content-Disposition',
  'Content-Encoding',
  'Content-Language',
  'Content-Length',
  'Content-Type',
  'CSeq',
  'Date',
  'Error-Info',
  'Event',
  'Expires',
  'From',
  'Identity',
  'Identity-Info',
  'In-Reply-To',
  'Max-Forwards',
  'Min-Expires',
  'Min-SE',
  'MIME-Version',
  'Organization',
  'P-Access-Network-Info',
  'P-Asserted-Identity',
  'P-Associated-URI',
  'P-Called-Party-ID',
  'P-Charging-Function-Addresses',
  'P-Charging-Vector',
  'P-Preferred-Identity',
  'P-Visited-Network-ID',
  'Path',
  'Priority',
  'Privacy',
  'Proxy-Authenticate',
  'Proxy-Authorization',
  'Proxy-Require',
  'RAck',
  'Reason',
  'Record-Route',
  'Refer-To',
  'Referred-By',
  'Reject-Contact',
  'Reply-To',
  'Request-Disposition',
  'Require',
  'Retry-After',
  'Route',
  'RSeq',
  'Security-Client',
  'Security-Server',
  'Security-Verify',
  'Server',
  'Service-Route',
  'Session-Expires',
  'Subject',
  'Subscription-State',
  'Supported',
  'Timestamp',
  'To',
  'Unsupported',
  'User-Agent',
  'Via',
  'Warning',
  'WWW-Authenticate',
];
const CANONICAL = new Map(CANONICAL_LIST.map((n) => [n.toLowerCase(), n]));

/**
 * Headers whose values are never split at commas: RFC 3261 §7.3.1 names WWW-Authenticate,
 * Authorization, Proxy-Authenticate and Proxy-Authorization; the others are single-valued headers
 * whose grammar admits a comma (dates, free text, name-addr with a display name, comma-bearing params).
 */
const NEVER_SPLIT = new Set(
  [
    'WWW-Authenticate',
    'Authorization',
    'Proxy-Authenticate',
    'Proxy-Authorization',
    'Authentication-Info',
    'Date',
    'Retry-After',
    'Subject',
    'User-Agent',
    'Server',
    'Organization',
    'Call-ID',
    'CSeq',
    'Content-Type',
    'Content-Length',
    'Content-Disposition',
    'Max-Forwards',
    'Expires',
    'Min-Expires',
    'MIME-Version',
    'Priority',
    'Timestamp',
    'From',
    'To',
    'Reply-To',
    'Refer-To',
    'Referred-By',
    'Event',
    'Subscription-State',
    'Session-Expires',
    'Min-SE',
    'RSeq',
    'RAck',
    'Identity',
    'P-Charging-Vector',
    'P-Charging-Function-Addresses',
    'P-Called-Party-ID',
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

// Per spelling of a name as it reaches us: its canonical name and lookup key, and whether it is a
// token. Names reach here on every append and lookup; memoised, but bounded (names come from the
// network), so a flood of odd names costs no memory.
interface NameInfo {
  readonly canon: string;
  readonly key: string;
  readonly token: boolean;
  /** The spelling itself is a token (what a received header line must have). */
  readonly rawToken: boolean;
}
const NAME_CACHE = new Map<string, NameInfo>();
const NAME_CACHE_MAX = 1024;

function nameInfo(name: string): NameInfo {
  const hit = NAME_CACHE.get(name);
  if (hit !== undefined) return hit;
  const canon = canonicalHeaderName(name);
  const info = { canon, key: canon.toLowerCase(), token: isToken(canon), rawToken: isToken(name) };
  if (NAME_CACHE.size < NAME_CACHE_MAX) NAME_CACHE.set(name, info);
  return info;
}

// The spellings met last in received lines, direct-mapped by length and first character: a line's
// name is matched where it stands (no substring per header line); a miss goes through nameInfo.
const SPELLINGS: ({ readonly spelling: string; readonly info: NameInfo } | undefined)[] = new Array(256).fill(undefined);

/** nameInfo of `line.slice(0, end)`, without making the slice when this spelling was met lately. */
function nameInfoAt(line: string, end: number): NameInfo {
  const slot = (end * 31 + line.charCodeAt(0)) & 255;
  const hit = SPELLINGS[slot];
  if (hit !== undefined && hit.spelling.length === end && line.startsWith(hit.spelling)) return hit.info;
  const spelling = line.slice(0, end);
  const info = nameInfo(spelling);
  // Only what the bounded cache holds is remembered, as its own copy (a longer slice would keep the
  // whole received head alive).
  if (NAME_CACHE.get(spelling) === info) SPELLINGS[slot] = { spelling: end > 12 ? (' ' + spelling).slice(1) : spelling, info };
  return info;
}

function key(name: string): string {
  return nameInfo(name).key;
}

/**
 * A header line with its lookup key (the lower-cased canonical name), computed once, and the parse
 * of its value (see `parsedValue`): a line is immutable and a clone shares it, so a proxy's forwarded
 * copy is validated without parsing again the From, To, CSeq and Via lines it kept. The parse sits in
 * private fields: not a property (a line compares equal, parsed or not).
 */
class Field implements HeaderField {
  /** The parser that made `#parsed` (undefined: not parsed yet). */
  #parsedBy: ((value: string) => unknown) | undefined = undefined;
  #parsed: unknown = undefined;

  constructor(
    readonly name: string,
    readonly value: string,
    readonly key: string,
  ) {}

  static parsed<T>(f: Field, parse: (value: string) => T): T {
    if (f.#parsedBy === parse) return f.#parsed as T;
    const v = parse(f.value);
    f.#parsedBy = parse;
    f.#parsed = v;
    return v;
  }

  static remember<T>(f: Field, parse: (value: string) => T, value: T): void {
    f.#parsedBy = parse;
    f.#parsed = value;
  }
}

/** A field of `name: value`. */
function makeField(name: string, value: string, key: string): Field {
  return new Field(name, value, key);
}

/**
 * `parse(line.value)`, computed once per header line and parser (the result is shared by every
 * message holding that line, a clone included: treat it as read-only). A throw is not remembered.
 * `line` must be one of `SipHeaders.entries()`.
 */
export function parsedValue<T>(line: HeaderField, parse: (value: string) => T): T {
  return Field.parsed(line as Field, parse);
}

/** Sets the parse of `line` (one of `entries()`) when the caller made it already (a Via it stamped). */
export function rememberParsed<T>(line: HeaderField, parse: (value: string) => T, value: T): void {
  Field.remember(line as Field, parse, value);
}

/** The canonical field for `name: value`, checked: a token name, no CR/LF in the value (header injection). */
function field(name: string, value: string): Field {
  const info = nameInfo(name);
  if (!info.token) throw new SipError('SIP_INVALID_ARGUMENT', `header name must be a token, got ${show(info.canon)}`);
  if (value.includes('\r') || value.includes('\n'))
    throw new SipError('SIP_INVALID_ARGUMENT', `${info.canon}: value must not contain CR or LF, got ${show(value)}`);
  return makeField(info.canon, value, info.key);
}

/** An ordered header list. Names are canonicalised on the way in; lookups ignore case. */
export class SipHeaders {
  private fields: Field[] = [];

  constructor(fields: Iterable<HeaderField | readonly [string, string]> = []) {
    for (const f of fields) {
      if (Array.isArray(f)) this.fields.push(field((f as readonly [string, string])[0], (f as readonly [string, string])[1]));
      else this.fields.push(field((f as HeaderField).name, (f as HeaderField).value));
    }
  }

  /** The first value: for list headers the first comma-separated element (e.g. the top Via). */
  get(name: string): string | undefined {
    const k = key(name);
    for (const f of this.fields) {
      if (f.key !== k) continue;
      if (NEVER_SPLIT.has(k)) return f.value;
      // No comma at all (nearly every value): the first element is the trimmed value, no array made.
      const first = f.value.indexOf(',') < 0 ? trimWs(f.value) : splitTopLevel(f.value)[0];
      if (first !== undefined && first.length > 0) return first;
    }
    return undefined;
  }

  /** Every value, in order, comma lists split (except the headers that must never be split). */
  getAll(name: string): string[] {
    const k = key(name);
    const split = !NEVER_SPLIT.has(k);
    const out: string[] = [];
    for (const f of this.fields) {
      if (f.key !== k) continue;
      if (!split) out.push(f.value);
      else if (f.value.indexOf(',') < 0) {
        // One element (no comma at all): splitTopLevel's answer without its array.
        const t = trimWs(f.value);
        if (t.length > 0) out.push(t);
      } else for (const v of splitTopLevel(f.value)) out.push(v);
    }
    return out;
  }

  /** The values as they stand on their header lines, unsplit. */
  raw(name: string): string[] {
    const k = key(name);
    const out: string[] = [];
    for (const f of this.fields) if (f.key === k) out.push(f.value);
    return out;
  }

  has(name: string): boolean {
    const k = key(name);
    for (const f of this.fields) if (f.key === k) return true;
    return false;
  }

  /** Replaces every line of this header by the given values, at the position of the first one. */
  set(name: string, value: string | readonly string[]): this {
    if (typeof value === 'string') {
      // The common case (Max-Forwards, Security-Verify, … on every forwarded request): one value
      // over at most one line, replaced in place (no arrays, no closures, no splices).
      const f = field(name, value);
      const fields = this.fields;
      let at = -1;
      let n = 0;
      for (let i = 0; i < fields.length; i++) {
        if (fields[i]!.key !== f.key) continue;
        if (n++ === 0) at = i;
      }
      if (n <= 1) {
        if (at < 0) fields.push(f);
        else fields[at] = f;
        return this;
      }
    }
    const values = typeof value === 'string' ? [value] : value;
    const added = values.map((v) => field(name, v));
    const k = key(name);
    const at = this.fields.findIndex((f) => f.key === k);
    this.remove(name);
    this.fields.splice(at < 0 ? this.fields.length : at, 0, ...added);
    return this;
  }

  append(name: string, value: string): this {
    this.fields.push(field(name, value));
    return this;
  }

  /** Inserts above the topmost line of this header (Via, Record-Route, Path), or first of all. */
  prepend(name: string, value: string): this {
    const f = field(name, value);
    const at = this.fields.findIndex((x) => x.key === f.key);
    this.fields.splice(at < 0 ? 0 : at, 0, f);
    return this;
  }

  /** Removes every line of this header; returns how many. */
  remove(name: string): number {
    const k = key(name);
    let n = 0;
    for (let i = this.fields.length - 1; i >= 0; i--) {
      if (this.fields[i]!.key === k) {
        this.fields.splice(i, 1);
        n++;
      }
    }
    return n;
  }

  /** Removes the first value (e.g. a proxy's own Via, RFC 3261 §16.7), rewriting a comma-joined line. */
  removeFirst(name: string): string | undefined {
    const k = key(name);
    const i = this.fields.findIndex((f) => f.key === k);
    if (i < 0) return undefined;
    const f = this.fields[i]!;
    const parts = NEVER_SPLIT.has(k) ? [f.value] : splitTopLevel(f.value);
    if (parts.length <= 1) this.fields.splice(i, 1);
    else this.fields[i] = makeField(f.name, parts.slice(1).join(', '), k);
    return parts[0];
  }

  /**
   * Replaces the first value (e.g. the top Via, stamped with received/rport): in place when it stands
   * alone on its line, else above the rest of its comma-joined line; first of all when there is none.
   */
  replaceFirst(name: string, value: string): this {
    const f = field(name, value);
    const fields = this.fields;
    let i = 0;
    while (i < fields.length && fields[i]!.key !== f.key) i++;
    if (i === fields.length) {
      fields.unshift(f);
      return this;
    }
    const old = fields[i]!;
    const parts = NEVER_SPLIT.has(f.key) || old.value.indexOf(',') < 0 ? undefined : splitTopLevel(old.value);
    if (parts === undefined || parts.length <= 1) fields[i] = f;
    else fields.splice(i, 1, f, makeField(old.name, parts.slice(1).join(', '), f.key));
    return this;
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

  /** A copy; the lines were checked when they came in (fields are immutable), so they are shared. */
  clone(): SipHeaders {
    const c = new SipHeaders();
    c.fields = this.fields.slice();
    return c;
  }
}

/**
 * The header lines of a received message (unfolded, from `lines[from]` on) as SipHeaders, each line
 * `Name: value` (HCOLON allows SP/HTAB before the colon), names canonicalised. Content-Length is not
 * stored (the body is the truth): its values are pushed to `contentLengths` for the parser to check.
 * Throws SipParseError (SIP_BAD_HEADER) for a line without a colon or whose name is not a token.
 */
export function headersFromLines(lines: readonly string[], from: number, contentLengths: string[]): SipHeaders {
  const h = new SipHeaders();
  const fields = h['fields'];
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon < 0) throw new SipParseError('SIP_BAD_HEADER', `header line without ':': ${show(line)}`);
    let end = colon;
    while (end > 0 && isWs(line[end - 1])) end--;
    const info = nameInfoAt(line, end);
    if (!info.rawToken || isWs(line[0])) throw new SipParseError('SIP_BAD_HEADER', `bad header name ${show(line.slice(0, colon))}`);
    // No CR or LF can be left in a value: the head was split at LF and a bare CR refused.
    let a = colon + 1;
    let b = line.length;
    while (a < b && isWs(line[a])) a++;
    while (b > a && isWs(line[b - 1])) b--;
    // Values are kept long after the message (an IMPU, a Contact, a Service-Route in a registration):
    // as slices of the decoded head they would keep the whole head alive (1-2 KB per registration).
    // A slice of up to 12 characters is a copy already (V8); a longer one is flattened, through a
    // cons string, into a copy of the value only (a memcpy, no decode; the name is not copied).
    const value = b - a > 12 ? (' ' + line.slice(a, b)).slice(1) : line.slice(a, b);
    if (info.key === 'content-length') contentLengths.push(value);
    else fields.push(makeField(info.canon, value, info.key));
  }
  return h;
}

const EMPTY = new Uint8Array(0);

/** A body's copy for a clone: an empty body (nearly every REGISTER and its responses) is the shared empty array, no ArrayBuffer of its own. */
function copyBody(body: Uint8Array): Uint8Array {
  return body.length === 0 ? EMPTY : body.slice();
}

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
    const c = new SipRequest(this.method, this.uri, this.headers.clone(), copyBody(this.body));
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
    return new SipResponse(this.status, this.reason, this.headers.clone(), copyBody(this.body));
  }
}

/** A SIP request or response. */
export type SipMessage = SipRequest | SipResponse;
