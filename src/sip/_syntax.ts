// Shared lexical helpers of RFC 3261 §25.1 (token, quoted-string, LWS) used by every header codec.
// Internal to src/sip (leading underscore): the codecs export what callers need.

/** RFC 3261 §25.1 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~". */
export const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/** Token characters by code (ASCII): the codecs test one character at a time, on every message. */
const TOKEN_CODE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~") TOKEN_CODE[c.charCodeAt(0)] = 1;

export function isToken(s: string): boolean {
  return TOKEN_RE.test(s);
}

export function isTokenChar(c: string | undefined): boolean {
  return c !== undefined && c.length === 1 && TOKEN_CODE[c.charCodeAt(0)] === 1;
}

/** isTokenChar by character code (NaN, past the end of a string, is not one). */
export function isTokenCode(code: number): boolean {
  return TOKEN_CODE[code] === 1;
}

/** SP or HTAB (the only whitespace left after line unfolding). */
export function isWs(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

export function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s[i])) i++;
  return i;
}

/** Trims SP and HTAB only (String#trim would also eat Unicode spaces that are content). */
export function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWs(s[a])) a++;
  while (b > a && isWs(s[b - 1])) b--;
  return s.slice(a, b);
}

/**
 * RFC 3261 §25.1 quoted-string starting at s[i] === '"'; quoted-pair is "\" followed by any
 * character but CR/LF. Returns the index after the closing quote, or -1 when unterminated.
 */
export function scanQuoted(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j];
    if (c === '\\') {
      j++;
      if (j >= s.length) return -1;
    } else if (c === '"') {
      return j + 1;
    }
  }
  return -1;
}

/** The content of a quoted-string (with its quotes) with quoted-pairs resolved. */
export function unquote(quoted: string): string {
  if (quoted.length < 2 || quoted[0] !== '"' || quoted[quoted.length - 1] !== '"') return quoted;
  return quoted.slice(1, -1).replace(/\\(.)/gs, '$1');
}

/** Writes s as a quoted-string, escaping '"' and '\'. */
export function quote(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * Splits a header value at top-level commas (RFC 3261 §7.3.1), never inside a quoted-string or
 * between angle brackets. Elements are trimmed; empty ones are dropped.
 */
export function splitTopLevel(value: string): string[] {
  if (value.indexOf(',') < 0) {
    // Nearly every value: one element (no comma at all, so none at top level).
    const t = trimWs(value);
    return t.length === 0 ? [] : [t];
  }
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"') {
      const end = scanQuoted(value, i);
      if (end < 0) break; // unterminated: the rest is one element; the codec will reject it
      i = end - 1;
    } else if (c === '<') {
      depth++;
    } else if (c === '>') {
      if (depth > 0) depth--;
    } else if (c === ',' && depth === 0) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out.map(trimWs).filter((e) => e.length > 0);
}
