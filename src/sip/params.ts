// Generic parameter lists `;name[=value]` shared by Via, name-addr (From/To/Contact/…) and SIP URIs
// (RFC 3261 §25.1: generic-param, via-params, uri-parameters). Order and spelling are kept; names
// match case-insensitively; a quoted value keeps its quotes (use `unquote`); a flag has value null.
import { SipParseError, show, type SipParseErrorCode } from './errors.ts';
import { isTokenCode, scanQuoted, skipWs, unquote } from './_syntax.ts';

/** One `;name=value` parameter (value absent for a flag parameter). */
export interface Param {
  readonly name: string;
  /** Raw value as written (a quoted-string keeps its quotes); null for a flag such as `lr` or `rport`. */
  readonly value: string | null;
}

/** An ordered, case-insensitive parameter list. */
export class Params {
  readonly items: Param[];

  /**
   * A copy of `items`; with `own` true the array itself is taken over (a parser's fresh array: one
   * array fewer per Via, name-addr and URI parsed).
   */
  constructor(items: Iterable<Param> = [], own = false) {
    this.items = own && Array.isArray(items) ? (items as Param[]) : [...items];
  }

  /** undefined: absent; null: present without value; string: the raw value. */
  get(name: string): string | null | undefined {
    // A loop, not find(): no closure per lookup (branch, rport, received, tag … on every message).
    const items = this.items;
    const key = name.toLowerCase();
    for (let i = 0; i < items.length; i++) {
      const n = items[i]!.name;
      if (n === name || n.toLowerCase() === key) return items[i]!.value;
    }
    return undefined;
  }

  /** The value with a quoted-string's quotes and escapes removed. */
  getUnquoted(name: string): string | null | undefined {
    const v = this.get(name);
    return typeof v === 'string' ? unquote(v) : v;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replaces the value in place, or appends. `value` is raw: quote it yourself when needed. */
  set(name: string, value: string | null = null): this {
    const key = name.toLowerCase();
    const i = this.items.findIndex((p) => p.name.toLowerCase() === key);
    if (i >= 0) this.items[i] = { name: this.items[i]!.name, value };
    else this.items.push({ name, value });
    return this;
  }

  delete(name: string): boolean {
    const key = name.toLowerCase();
    const before = this.items.length;
    for (let i = this.items.length - 1; i >= 0; i--) if (this.items[i]!.name.toLowerCase() === key) this.items.splice(i, 1);
    return this.items.length !== before;
  }

  get size(): number {
    return this.items.length;
  }

  clone(): Params {
    return new Params(this.items);
  }

  /** `;a=b;c` (empty string when there are none). */
  toString(): string {
    let out = '';
    for (const p of this.items) out += p.value === null ? ';' + p.name : ';' + p.name + '=' + p.value;
    return out;
  }
}

/** Header params allow LWS around ';' and '=' (SEMI, EQUAL); URI params allow none. */
export type ParamMode = 'header' | 'uri';

/**
 * Parses `*( ";" name [ "=" value ] )` covering the whole of `s` (leading LWS allowed in header mode).
 * Header-mode values are a quoted-string or a run of visible characters other than ; , " < >
 * (a token, a host, an IPv6 address for `received`); URI-mode values stop at ';' and '?'.
 */
export function parseParams(s: string, mode: ParamMode, code: SipParseErrorCode = 'SIP_BAD_PARAMS', header?: string): Params {
  // Character codes, no closure per call: every Via, From, To, Contact and URI comes through here.
  const lws = mode === 'header';
  const items: Param[] = [];
  const n = s.length;
  let i = lws ? skipWs(s, 0) : 0;
  while (i < n) {
    if (s.charCodeAt(i) !== SEMI) throw paramsError(s, code, header, `expected ';' at offset ${i}`);
    i++;
    if (lws) i = skipWs(s, i);
    const nameStart = i;
    if (lws) while (i < n && isTokenCode(s.charCodeAt(i))) i++;
    else while (i < n && isUriParamCode(s.charCodeAt(i))) i++;
    const name = s.slice(nameStart, i);
    if (name.length === 0) throw paramsError(s, code, header, 'empty parameter name');
    if (lws) i = skipWs(s, i);
    let value: string | null = null;
    if (s.charCodeAt(i) === EQUAL) {
      i++;
      if (lws) i = skipWs(s, i);
      if (s.charCodeAt(i) === DQUOTE) {
        const end = scanQuoted(s, i);
        if (end < 0) throw paramsError(s, code, header, `unterminated quoted value of ${name}`);
        value = s.slice(i, end);
        i = end;
      } else {
        const start = i;
        if (lws) while (i < n && isHeaderValueCode(s.charCodeAt(i))) i++;
        else while (i < n && isUriParamCode(s.charCodeAt(i))) i++;
        value = s.slice(start, i);
        if (value.length === 0) throw paramsError(s, code, header, `empty value of ${name}`);
      }
      if (lws) i = skipWs(s, i);
    }
    items.push({ name, value });
  }
  return new Params(items, true);
}

const SEMI = 0x3b;
const EQUAL = 0x3d;
const DQUOTE = 0x22;

function paramsError(s: string, code: SipParseErrorCode, header: string | undefined, why: string): SipParseError {
  return new SipParseError(code, `${header ?? 'parameters'}: ${why} in ${show(s)}`, header);
}

/** isHeaderValueChar by code: visible, not ; , " < > (non-ASCII counts as visible). */
function isHeaderValueCode(c: number): boolean {
  return c > 0x20 && c !== 0x7f && c !== SEMI && c !== 0x2c && c !== DQUOTE && c !== 0x3c && c !== 0x3e;
}

/** isUriParamChar by code. */
function isUriParamCode(c: number): boolean {
  return c > 0x20 && c !== 0x7f && c !== SEMI && c !== 0x3f && c !== EQUAL && c !== 0x3c && c !== 0x3e && c !== DQUOTE;
}

/** RFC 3261 paramchar (unreserved / escaped / "[]/:&+$"), leniently: any visible char but ; ? = < > ". */
export function isUriParamChar(c: string | undefined): boolean {
  if (c === undefined) return false;
  const code = c.charCodeAt(0);
  return code > 0x20 && code !== 0x7f && c !== ';' && c !== '?' && c !== '=' && c !== '<' && c !== '>' && c !== '"';
}
