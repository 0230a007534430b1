// WWW-Authenticate / Authorization Digest header values (RFC 2617 §3.2, RFC 7235 §2.1 syntax;
// RFC 3310 auts; 24.229 ik/ck/integrity-protected): scheme, then name=token|"quoted" pairs.
// Parameters keep their order, spelling and quoting; unknown ones are kept; names match case-insensitively.
import { InputError } from '../util/errors.ts';
import { err, ok, type Result } from '../util/result.ts';

/** One name=value parameter of a Digest header, with the quoting it had or should get. */
export interface DigestParam {
  readonly name: string;
  readonly value: string;
  /** true: written as a quoted-string; false: as a bare token. */
  readonly quoted: boolean;
}

/** A WWW-Authenticate / Authorization value: the scheme and its parameters in order. */
export interface DigestHeader {
  /** Auth scheme, normally "Digest". */
  readonly scheme: string;
  readonly params: readonly DigestParam[];
}

// Tables by char code, not a RegExp or a Set lookup per character: every REGISTER and 401 goes
// through this parser several times on the P-CSCF, the S-CSCF and the UE. RFC 7230 §3.2.6 tchar.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
const isTchar = (c: number): boolean => c < 128 && TCHAR[c] === 1;
const isWs = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10;
/** Unquoted values are read leniently (e.g. a base64 nonce sent bare): anything up to a separator. */
const isBare = (c: number): boolean => c > 32 && c !== 127 && c !== 44 && c !== 34 && c !== 92;
/** Never valid in a quoted-string, even escaped (RFC 7230 §3.2.6); refusing them stops header injection. */
const isForbiddenInQuoted = (c: number): boolean => c === 13 || c === 10 || c === 0;

const bad = (msg: string) => new InputError(`digest header: ${msg}`, 'AKA_BAD_INPUT');

/**
 * Parses one challenge or credentials value (without the header name) from the network: malformed
 * input is an InputError (AKA_BAD_INPUT) result, nothing is thrown.
 */
export function parseDigestHeader(text: string): Result<DigestHeader, InputError> {
  // try/catch here, not attempt(): no closure per value parsed (every REGISTER and 401).
  try {
    return ok(parseDigestHeaderOrThrow(text));
  } catch (e) {
    if (e instanceof InputError) return err(e);
    throw e;
  }
}

/** parseDigestHeader for trusted input (tests, fixtures, headers this process built): throws InputError. */
export function parseDigestHeaderOrThrow(text: string): DigestHeader {
  const n = text.length;
  let i = 0;
  while (i < n && isWs(text.charCodeAt(i))) i++;
  let start = i;
  while (i < n && isTchar(text.charCodeAt(i))) i++;
  const scheme = text.slice(start, i);
  if (scheme === '') throw bad('missing auth scheme');
  if (i < n && !isWs(text.charCodeAt(i))) throw bad(`unexpected ${JSON.stringify(text[i])} after the scheme`);
  const params: DigestParam[] = [];
  const keys: string[] = [];
  for (;;) {
    while (i < n && isWs(text.charCodeAt(i))) i++;
    while (i < n && text.charCodeAt(i) === 44) {
      i++; // empty list elements are allowed (RFC 7230 §7)
      while (i < n && isWs(text.charCodeAt(i))) i++;
    }
    if (i >= n) break;
    const at = i;
    while (i < n && isTchar(text.charCodeAt(i))) i++;
    const name = text.slice(at, i);
    if (name === '') throw bad(`expected a parameter name at offset ${at}`);
    while (i < n && isWs(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 61) throw bad(`parameter ${JSON.stringify(name.slice(0, 40))} has no "=" (one challenge per header value)`);
    i++;
    while (i < n && isWs(text.charCodeAt(i))) i++;
    let value: string;
    let quoted: boolean;
    if (text.charCodeAt(i) === 34) {
      i++;
      // Runs without an escape are sliced, not built a character at a time.
      let out = '';
      start = i;
      for (;;) {
        if (i >= n) throw bad(`unterminated quoted value of ${JSON.stringify(name.slice(0, 40))}`);
        const c = text.charCodeAt(i);
        if (c === 34) break;
        if (isForbiddenInQuoted(c) || (c === 92 && i + 1 < n && isForbiddenInQuoted(text.charCodeAt(i + 1)))) {
          throw bad(`CR, LF or NUL inside the quoted value of ${JSON.stringify(name.slice(0, 40))}`);
        }
        if (c === 92) {
          if (i + 1 >= n) throw bad(`unterminated quoted value of ${JSON.stringify(name.slice(0, 40))}`);
          out += text.slice(start, i) + text[i + 1]!;
          i += 2;
          start = i;
        } else {
          i++;
        }
      }
      value = out + text.slice(start, i);
      i++;
      quoted = true;
    } else {
      start = i;
      while (i < n && isBare(text.charCodeAt(i))) i++;
      value = text.slice(start, i);
      if (value === '') throw bad(`parameter ${JSON.stringify(name.slice(0, 40))} has an empty unquoted value`);
      quoted = false;
    }
    // RFC 7235 §2.1: each parameter name MUST only occur once per challenge (a dozen at most: a scan, no Set).
    const key = name.toLowerCase();
    if (keys.includes(key)) throw bad(`parameter ${JSON.stringify(name.slice(0, 40))} occurs twice`);
    keys.push(key);
    params.push({ name, value, quoted });
    while (i < n && isWs(text.charCodeAt(i))) i++;
    if (i < n && text.charCodeAt(i) !== 44) throw bad(`expected "," after parameter ${JSON.stringify(name.slice(0, 40))}`);
  }
  return { scheme, params };
}

function quote(v: string): string {
  return v.includes('"') || v.includes('\\') ? '"' + v.replace(/[\\"]/g, (c) => '\\' + c) + '"' : '"' + v + '"';
}

/**
 * Writes `scheme name=value, …`. A value marked unquoted is written bare only if it reads back
 * bare; CR, LF and NUL are refused (header injection).
 */
export function serializeDigestHeader(h: DigestHeader): string {
  if (!isTokenText(h.scheme)) throw bad(`scheme ${JSON.stringify(h.scheme.slice(0, 40))} is not a token`);
  let out = h.scheme;
  for (let k = 0; k < h.params.length; k++) {
    const p = h.params[k]!;
    if (!isTokenText(p.name)) throw bad(`parameter name ${JSON.stringify(p.name.slice(0, 40))} is not a token`);
    // One pass over the value: CR, LF or NUL refuse it; anything a bare value cannot hold quotes it.
    const v = p.value;
    let bare = !p.quoted && v.length > 0;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (isForbiddenInQuoted(c)) throw bad(`value of ${p.name} contains CR, LF or NUL`);
      if (bare && !isBareOut(c)) bare = false;
    }
    out += `${k === 0 ? ' ' : ', '}${p.name}=${bare ? v : quote(v)}`;
  }
  return out;
}

/** A non-empty token (RFC 7230 tchar), by the char table. */
function isTokenText(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTchar(s.charCodeAt(i))) return false;
  return true;
}
/** What a value written bare may hold (it reads back bare): no SP, comma, quote, backslash or control character. */
const isBareOut = (c: number): boolean => c > 31 && c !== 127 && c !== 32 && c !== 44 && c !== 34 && c !== 92;

/** The value of a parameter (name matched case-insensitively), or undefined. */
export function getParam(h: DigestHeader, name: string): string | undefined {
  const key = name.toLowerCase();
  for (const p of h.params) if (p.name === name || p.name.toLowerCase() === key) return p.value;
  return undefined;
}

/** All parameters as a record keyed by lowercase name. */
export function paramRecord(h: DigestHeader): Record<string, string> {
  return Object.fromEntries(h.params.map((p) => [p.name.toLowerCase(), p.value]));
}

// Quoting by convention (RFC 2617 §3.2.1/§3.2.2, RFC 3310 §3.4, 24.229 ik/ck/integrity-protected):
// these are tokens; everything else is quoted. qop is a token in credentials, quoted in a challenge.
const BARE_PARAMS = new Set(['algorithm', 'nc', 'stale']);

/** One parameter, quoted as the RFCs write it. */
export function digestParam(name: string, value: string, opts: { challenge?: boolean } = {}): DigestParam {
  const key = name.toLowerCase();
  const bare = BARE_PARAMS.has(key) || (key === 'qop' && opts.challenge !== true);
  return { name, value, quoted: !bare || !isTokenText(value) };
}

/** Returns a copy with `name` set (replaced in place, else appended). */
export function setParam(h: DigestHeader, name: string, value: string, opts: { challenge?: boolean } = {}): DigestHeader {
  const p = digestParam(name, value, opts);
  const key = name.toLowerCase();
  const idx = h.params.findIndex((q) => q.name.toLowerCase() === key);
  const params = [...h.params];
  if (idx >= 0) params[idx] = { ...p, name: h.params[idx]!.name };
  else params.push(p);
  return { scheme: h.scheme, params };
}

/** Returns a copy without the named parameters (e.g. the P-CSCF stripping ck and ik, pitfall 4). */
export function removeParams(h: DigestHeader, ...names: string[]): DigestHeader {
  const drop = new Set(names.map((s) => s.toLowerCase()));
  return { scheme: h.scheme, params: h.params.filter((p) => !drop.has(p.name.toLowerCase())) };
}

/** Builds a header from name → value pairs in order, skipping undefined values. */
export function buildDigestHeader(
  fields: Record<string, string | undefined>,
  opts: { challenge?: boolean; scheme?: string } = {},
): DigestHeader {
  const params: DigestParam[] = [];
  for (const k of Object.keys(fields)) {
    const v = fields[k];
    if (v !== undefined) params.push(digestParam(k, v, opts));
  }
  return { scheme: opts.scheme ?? 'Digest', params };
}
