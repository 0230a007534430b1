// Generic parameter lists `;name[=value]` shared by Via, name-addr (From/To/Contact/…) and SIP URIs
// (RFC 3261 §25.1: generic-param, via-params, uri-parameters). Order and spelling are kept; names
// match case-insensitively; a quoted value keeps its quotes (use `unquote`); a flag has value null.
import { SipParseError, show, type SipParseErrorCode } from './errors.ts';
import { isTokenChar, isWs, scanQuoted, skipWs, unquote } from './_syntax.ts';

/** One `;name=value` parameter (value absent for a flag parameter). */
export interface Param {
  readonly name: string;
  /** Raw value as written (a quoted-string keeps its quotes); null for a flag such as `lr` or `rport`. */
  readonly value: string | null;
}

/** An ordered, case-insensitive parameter list. */
export class Params {
  readonly items: Param[];

  constructor(items: Iterable<Param> = []) {
    this.items = [...items];
  }

  /** undefined: absent; null: present without value; string: the raw value. */
  get(name: string): string | null | undefined {
    const key = name.toLowerCase();
    return this.items.find((p) => p.name.toLowerCase() === key)?.value;
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
    return this.items.map((p) => (p.value === null ? `;${p.name}` : `;${p.name}=${p.value}`)).join('');
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
  const fail = (why: string) => new SipParseError(code, `${header ?? 'parameters'}: ${why} in ${show(s)}`, header);
  const ws = mode === 'header' ? skipWs : (_: string, i: number) => i;
  const items: Param[] = [];
  let i = ws(s, 0);
  while (i < s.length) {
    if (s[i] !== ';') throw fail(`expected ';' at offset ${i}`);
    i = ws(s, i + 1);
    const nameStart = i;
    while (i < s.length && (mode === 'header' ? isTokenChar(s[i]) : isUriParamChar(s[i]))) i++;
    const name = s.slice(nameStart, i);
    if (name.length === 0) throw fail('empty parameter name');
    i = ws(s, i);
    let value: string | null = null;
    if (s[i] === '=') {
      i = ws(s, i + 1);
      if (s[i] === '"') {
        const end = scanQuoted(s, i);
        if (end < 0) throw fail(`unterminated quoted value of ${name}`);
        value = s.slice(i, end);
        i = end;
      } else {
        const start = i;
        while (i < s.length && (mode === 'header' ? isHeaderValueChar(s[i]!) : isUriParamChar(s[i]))) i++;
        value = s.slice(start, i);
        if (value.length === 0) throw fail(`empty value of ${name}`);
      }
      i = ws(s, i);
    }
    items.push({ name, value });
  }
  return new Params(items);
}

function isHeaderValueChar(c: string): boolean {
  return !isWs(c) && c !== ';' && c !== ',' && c !== '"' && c !== '<' && c !== '>' && c.charCodeAt(0) > 0x20 && c !== '\x7f';
}

/** RFC 3261 paramchar (unreserved / escaped / "[]/:&+$"), leniently: any visible char but ; ? = < > ". */
export function isUriParamChar(c: string | undefined): boolean {
  if (c === undefined) return false;
  const code = c.charCodeAt(0);
  return code > 0x20 && code !== 0x7f && c !== ';' && c !== '?' && c !== '=' && c !== '<' && c !== '>' && c !== '"';
}
