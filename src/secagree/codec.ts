// Parse and serialize Security-Client / Security-Server / Security-Verify values (RFC 3329 §2.2
// ABNF, 33.203 Annex H parameters; spec digest §4). Order: normalise hyphens → scan
// mechanisms and raw params → type the Annex H params → check q uniqueness over the merged list.
import { SecAgreeError, showValue } from './errors.ts';
import { err, ok, type Result } from '../util/result.ts';
import { parseCommonForm } from './common-form.ts';
import {
  IPSEC_3GPP,
  IPSEC_PARAM_ORDER,
  checkPortNumber,
  checkSpiNumber,
  formatQ,
  parsePort,
  parseQ,
  parseSpi,
  qKey,
  type ExtraParam,
  type IpsecParamName,
  type Mod,
  type Prot,
  type SecMechanism,
} from './mechanism.ts';

/** The three RFC 3329 headers of security agreement (33.203 Annex H). */
export type SecHeaderName = 'Security-Client' | 'Security-Server' | 'Security-Verify';

/** Above this many characters (all values together) the input is refused before scanning. */
export const MAX_HEADER_CHARS = 65536;
/** A UE lists one entry per (alg, ealg, mod) it supports: a few dozen at most. */
export const MAX_MECHANISMS = 256;

// U+2010 hyphen, U+2011 non-breaking hyphen (the Word source of Annex H), U+2012–U+2014 dashes,
// U+2212 minus, U+FE63 small and U+FF0D full-width hyphen-minus: all read as "-" (digest §4.2).
const UNICODE_HYPHENS = /[\u2010-\u2014\u2212\uFE63\uFF0D]/g;
/** Replaces Unicode dashes (from copy-paste of specs) with ASCII hyphen-minus, so `hmac‑sha‑1‑96` reads as `hmac-sha-1-96`. */
export const normaliseHyphens = (s: string): string => s.replace(UNICODE_HYPHENS, '-');

const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/; // RFC 3261 §25.1 token
// A table by char code, not a RegExp per character (the scan runs on every REGISTER).
const TOKEN_CHARS = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~") TOKEN_CHARS[c.charCodeAt(0)] = 1;
const isTokenCode = (code: number): boolean => code < 128 && TOKEN_CHARS[code] === 1;
// LWS, tolerating bare line breaks and the no-break space that copy-paste brings.
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\u00a0';
// qdtext / quoted-pair content: anything but CR, LF and the other C0 controls (tab is LWS).
const isQuotedChar = (c: string): boolean => c === '\t' || (c >= ' ' && c !== '\x7f');

interface RawParam {
  readonly name: string;
  readonly value?: string;
}
interface RawMechanism {
  readonly name: string;
  readonly params: RawParam[];
}

/** A cursor over one header value; reads return '' instead of running past the end. */
class Cursor {
  pos = 0;
  constructor(
    readonly s: string,
    readonly where: string,
  ) {}
  peek(): string | undefined {
    return this.s[this.pos];
  }
  skipSpace(): void {
    while (isSpace(this.s[this.pos])) this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (this.pos < this.s.length && isTokenCode(this.s.charCodeAt(this.pos))) this.pos++;
    return this.s.slice(start, this.pos);
  }
  fail(code: 'SECAGREE_SYNTAX' | 'SECAGREE_EMPTY_MECHANISM', what: string): never {
    const rest = this.s.slice(this.pos);
    throw new SecAgreeError(code, `${this.where}: ${what} at offset ${this.pos} (${showValue(rest)})`, this.where, rest.slice(0, 80));
  }
  /** gen-value (RFC 3261): token, IPv6reference or quoted-string, returned raw. */
  value(): string {
    const start = this.pos;
    if (this.peek() === '"') {
      this.pos++;
      for (;;) {
        const c = this.s[this.pos];
        if (c === undefined) {
          this.pos = start;
          this.fail('SECAGREE_SYNTAX', 'unterminated quoted string');
        }
        if (!isQuotedChar(c)) this.fail('SECAGREE_SYNTAX', 'control character in quoted string');
        this.pos++;
        if (c === '"') return this.s.slice(start, this.pos);
        if (c === '\\') {
          const e = this.s[this.pos];
          if (e === undefined || !isQuotedChar(e)) this.fail('SECAGREE_SYNTAX', 'bad escape in quoted string');
          this.pos++;
        }
      }
    }
    if (this.peek() === '[') {
      const m = /^\[[0-9A-Fa-f:.]+\]/.exec(this.s.slice(this.pos, this.pos + 64));
      if (!m) this.fail('SECAGREE_SYNTAX', 'bad IPv6 reference');
      this.pos += m[0].length;
      return m[0];
    }
    return this.token();
  }
}

/** Scans one header value into mechanisms with raw, lower-cased parameter names. */
function scan(value: string, header: string, firstIndex: number): RawMechanism[] {
  const cur = new Cursor(value, header);
  const out: RawMechanism[] = [];
  for (;;) {
    cur.skipSpace();
    const name = cur.token();
    if (name === '') {
      const c = cur.peek();
      if (c === undefined || c === ',' || c === ';') cur.fail('SECAGREE_EMPTY_MECHANISM', `empty mechanism ${firstIndex + out.length + 1}`);
      cur.fail('SECAGREE_SYNTAX', 'expected a mechanism name');
    }
    const params: RawParam[] = [];
    cur.skipSpace();
    while (cur.peek() === ';') {
      cur.pos++;
      cur.skipSpace();
      const pname = cur.token();
      if (pname === '') cur.fail('SECAGREE_SYNTAX', `expected a parameter name after ";" in mechanism ${name}`);
      cur.skipSpace();
      if (cur.peek() === '=') {
        cur.pos++;
        cur.skipSpace();
        const v = cur.value();
        if (v === '') cur.fail('SECAGREE_SYNTAX', `expected a value for ${pname.toLowerCase()}`);
        params.push({ name: pname.toLowerCase(), value: v });
        cur.skipSpace();
      } else {
        params.push({ name: pname.toLowerCase() });
      }
    }
    out.push({ name: name.toLowerCase(), params });
    const c = cur.peek();
    if (c === undefined) return out;
    if (c !== ',') cur.fail('SECAGREE_SYNTAX', `unexpected ${showValue(c)}`);
    cur.pos++;
  }
}

const unquote = (v: string): string => (v.startsWith('"') ? v.slice(1, -1).replace(/\\(.)/gs, '$1') : v);

const KNOWN_IPSEC = new Set<string>(IPSEC_PARAM_ORDER);

/** Bit of each typed parameter in typeMechanism's `seen` mask (a duplicate is refused). */
const PARAM_BIT: Readonly<Record<string, number>> = {
  q: 1,
  prot: 2,
  mod: 4,
  'spi-c': 8,
  'spi-s': 16,
  'port-c': 32,
  'port-s': 64,
  alg: 128,
  ealg: 256,
};

/**
 * Types the parameters of one scanned mechanism (Annex H for ipsec-3gpp, q for all). Runs for every
 * mechanism of every Security-Client: duplicates are a bit mask (no Set), the values go to locals and
 * the mechanism is one literal whose present fields are added in one order (one hidden-class chain).
 */
function typeMechanism(raw: RawMechanism, where: string): SecMechanism {
  let q: number | undefined;
  let prot: Prot | undefined;
  let mod: Mod | undefined;
  let spiC: number | undefined;
  let spiS: number | undefined;
  let portC: number | undefined;
  let portS: number | undefined;
  let alg: string | undefined;
  let ealg: string | undefined;
  const extra: ExtraParam[] = [];
  let seen = 0;
  const ipsec = raw.name === IPSEC_3GPP;
  const at = `${where} `;
  for (const p of raw.params) {
    const bit = p.name === 'q' || (ipsec && KNOWN_IPSEC.has(p.name)) ? PARAM_BIT[p.name]! : 0;
    if (bit === 0) {
      extra.push(p.value === undefined ? { name: p.name } : { name: p.name, value: p.value });
      continue;
    }
    if ((seen & bit) !== 0) throw new SecAgreeError('SECAGREE_DUPLICATE_PARAM', `${at}${p.name}: parameter given twice`, p.name, p.value);
    seen |= bit;
    if (p.value === undefined) throw new SecAgreeError('SECAGREE_BAD_PARAM', `${at}${p.name}: missing value`, p.name);
    if (p.name === 'q') {
      q = parseQ(p.value, 'q', at);
      continue;
    }
    const v = unquote(p.value);
    switch (p.name as IpsecParamName) {
      case 'spi-c':
        spiC = parseSpi(v, 'spi-c', at);
        break;
      case 'spi-s':
        spiS = parseSpi(v, 'spi-s', at);
        break;
      case 'port-c':
        portC = parsePort(v, 'port-c', at);
        break;
      case 'port-s':
        portS = parsePort(v, 'port-s', at);
        break;
      case 'prot':
        prot = parseProt(v, at);
        break;
      case 'mod':
        mod = parseMod(v, at);
        break;
      case 'alg':
        alg = parseAlgName(v, 'alg', at);
        break;
      case 'ealg':
        ealg = parseAlgName(v, 'ealg', at);
        break;
    }
  }
  // Only the parameters present become fields (parse(serialize(x)) deep-equals x).
  const m: { -readonly [K in keyof SecMechanism]?: SecMechanism[K] } = { name: raw.name };
  if (q !== undefined) m.q = q;
  if (prot !== undefined) m.prot = prot;
  if (mod !== undefined) m.mod = mod;
  if (spiC !== undefined) m.spiC = spiC;
  if (spiS !== undefined) m.spiS = spiS;
  if (portC !== undefined) m.portC = portC;
  if (portS !== undefined) m.portS = portS;
  if (alg !== undefined) m.alg = alg;
  if (ealg !== undefined) m.ealg = ealg;
  m.extra = extra;
  return m as SecMechanism;
}

function parseProt(v: string, at: string): Prot {
  const l = v.toLowerCase();
  if (l === 'esp' || l === 'ah') return l;
  throw new SecAgreeError('SECAGREE_BAD_PARAM', `${at}prot: must be esp or ah, got ${showValue(v)}`, 'prot', v);
}

// `UDP-enc-tun` is compared case-insensitively but always emitted exactly (digest §4.2).
function parseMod(v: string, at: string): Mod {
  const l = v.toLowerCase();
  if (l === 'trans' || l === 'tun') return l;
  if (l === 'udp-enc-tun') return 'UDP-enc-tun';
  throw new SecAgreeError('SECAGREE_BAD_PARAM', `${at}mod: must be trans, tun or UDP-enc-tun, got ${showValue(v)}`, 'mod', v);
}

// Unknown algorithm names are kept (negotiation skips them, digest §12); only non-tokens fail.
function parseAlgName(v: string, field: 'alg' | 'ealg', at: string): string {
  if (!TOKEN_RE.test(v)) throw new SecAgreeError('SECAGREE_BAD_PARAM', `${at}${field}: not an algorithm name: ${showValue(v)}`, field, v);
  return v.toLowerCase();
}

/**
 * Parses a Security-Client / -Server / -Verify header. `values` are the values of every instance
 * of the header in the message (repeated headers), each possibly a comma list; they are merged
 * in order. Names are case-insensitive and lower-cased, unicode hyphens become "-", and alg/ealg
 * are lower-cased. RFC 3329 §2.2 forbids two equal q values in one header; repeated instances are one
 * header (RFC 3261 §7.3.1), so the check runs over the merged list — the rule serializeMechanisms
 * applies too (`checkDistinctQ`), so whatever parses also serializes.
 * A header from the wire is untrusted input: the result carries a SecAgreeError naming the header,
 * the mechanism, the field and the value; nothing is thrown for bad input (issue 12 §4).
 */
export function parseSecurityHeader(
  values: string | readonly string[],
  header: SecHeaderName | string = 'security header',
): Result<SecMechanism[], SecAgreeError> {
  // try/catch here, not attempt(): no closure per header parsed (every REGISTER's Security-Client).
  try {
    return ok(parseSecurityHeaderOrThrow(values, header));
  } catch (e) {
    if (e instanceof SecAgreeError) return err(e);
    throw e;
  }
}

/** parseSecurityHeader for trusted input (tests, fixtures, values this process built): throws SecAgreeError. */
export function parseSecurityHeaderOrThrow(
  values: string | readonly string[],
  header: SecHeaderName | string = 'security header',
): SecMechanism[] {
  const list = typeof values === 'string' ? [values] : values;
  let total = 0;
  for (const v of list) total += v.length;
  if (total > MAX_HEADER_CHARS) {
    throw new SecAgreeError('SECAGREE_TOO_LONG', `${header}: ${total} characters, more than ${MAX_HEADER_CHARS}`, header);
  }
  if (list.length === 0) throw new SecAgreeError('SECAGREE_EMPTY_MECHANISM', `${header}: no value`, header);
  // What UEs and P-CSCFs send is read in one pass; anything else (and every error) by the scanner.
  return parseCommonForm(list, MAX_MECHANISMS) ?? scanAll(list, header);
}

/** The full reader (every form RFC 3329 allows, every refusal), without the common-form shortcut: exported for the test that compares both. */
export function scanAll(list: readonly string[], header: string): SecMechanism[] {
  const out: SecMechanism[] = [];
  for (const value of list) {
    const raws = scan(normaliseHyphens(value), header, out.length);
    for (const raw of raws) {
      const index = out.length + 1;
      if (index > MAX_MECHANISMS) throw new SecAgreeError('SECAGREE_TOO_LONG', `${header}: more than ${MAX_MECHANISMS} mechanisms`, header);
      out.push(typeMechanism(raw, `${header} mechanism ${index} (${raw.name})`));
    }
  }
  checkDistinctQ(out, header);
  return out;
}

/**
 * RFC 3329 §2.2: no two mechanisms of one header share a q value (0.1 and 0.100 are equal). The one
 * rule for parsing and serializing, over the whole list (every instance of the header merged).
 */
export function checkDistinctQ(ms: readonly SecMechanism[], header = 'security header'): void {
  // One q or none (a Security-Server, a UE's Security-Client) cannot repeat: no Map for those.
  let withQ = 0;
  for (const m of ms) if (m.q !== undefined) withQ++;
  if (withQ < 2) return;
  const qs = new Map<number, number>();
  ms.forEach((m, i) => {
    if (m.q === undefined) return;
    const other = qs.get(qKey(m.q));
    if (other !== undefined) {
      throw new SecAgreeError(
        'SECAGREE_DUPLICATE_Q',
        `${header}: mechanisms ${other} and ${i + 1} both have q=${formatQ(m.q)} (RFC 3329 §2.2 requires distinct q values)`,
        'q',
        formatQ(m.q),
      );
    }
    qs.set(qKey(m.q), i + 1);
  });
}

/**
 * Canonical text of one mechanism: `name;q=…;prot=…;mod=…;spi-c=…;spi-s=…;port-c=…;port-s=…;
 * alg=…;ealg=…` (Kamailio's order) followed by the extensions in their order. Only parameters
 * present in the model are written, so parse(serialize(x)) deep-equals x. Names, alg and ealg
 * are written in lower case, `UDP-enc-tun` exactly, every hyphen ASCII. The parameter order of
 * a parsed input is not kept (the model has none but for extensions): Security-Verify and
 * Security-Client are compared semantically (verify.ts), so the canonical order is enough. A UE
 * that wants a byte-exact Security-Verify echoes the received Security-Server text instead.
 * @throws SecAgreeError when the model holds something that would not parse back
 */
export function serializeMechanism(m: SecMechanism): string {
  const name = m.name.toLowerCase();
  if (!TOKEN_RE.test(name))
    throw new SecAgreeError('SECAGREE_BAD_PARAM', `mechanism name: not a token: ${showValue(m.name)}`, 'name', m.name);
  const parts = [name];
  if (m.q !== undefined) parts.push(`q=${formatQ(m.q)}`);
  const ipsec = name === IPSEC_3GPP;
  // Kamailio's order, one call per parameter (no table of pairs per mechanism: a 401 each).
  annexH(parts, ipsec, name, 'prot', m.prot);
  annexH(parts, ipsec, name, 'mod', m.mod);
  annexH(parts, ipsec, name, 'spi-c', m.spiC);
  annexH(parts, ipsec, name, 'spi-s', m.spiS);
  annexH(parts, ipsec, name, 'port-c', m.portC);
  annexH(parts, ipsec, name, 'port-s', m.portS);
  annexH(parts, ipsec, name, 'alg', m.alg);
  annexH(parts, ipsec, name, 'ealg', m.ealg);
  for (const e of m.extra) {
    const en = e.name.toLowerCase();
    if (!TOKEN_RE.test(en) || en === 'q' || (ipsec && KNOWN_IPSEC.has(en))) {
      throw new SecAgreeError(
        'SECAGREE_BAD_PARAM',
        `${name}: extension name ${showValue(e.name)} is not a token or is a known parameter`,
        'extra',
        e.name,
      );
    }
    if (e.value === undefined) {
      parts.push(en);
      continue;
    }
    const v = normaliseHyphens(e.value);
    if (!isGenValue(v))
      throw new SecAgreeError(
        'SECAGREE_BAD_PARAM',
        `${name}: extension ${en}: not a token, host or quoted-string: ${showValue(e.value)}`,
        en,
        e.value,
      );
    parts.push(`${en}=${v}`);
  }
  return parts.join(';');
}

/** `p=v` onto `parts` when the model has `p` (an Annex H parameter of an ipsec-3gpp mechanism only). */
function annexH(parts: string[], ipsec: boolean, name: string, p: IpsecParamName, v: string | number | undefined): void {
  if (v === undefined) return;
  if (!ipsec) throw new SecAgreeError('SECAGREE_BAD_PARAM', `${name}: ${p} is an ipsec-3gpp parameter; put it in extra`, p, String(v));
  parts.push(`${p}=${formatIpsecValue(p, v)}`);
}

function formatIpsecValue(p: IpsecParamName, v: string | number): string {
  switch (p) {
    case 'spi-c':
    case 'spi-s':
      checkSpiNumber(v as number, p);
      return String(v);
    case 'port-c':
    case 'port-s':
      checkPortNumber(v as number, p);
      return String(v);
    case 'prot':
      if (v === 'esp' || v === 'ah') return v;
      break;
    case 'mod':
      if (v === 'trans' || v === 'tun' || v === 'UDP-enc-tun') return v;
      break;
    case 'alg':
    case 'ealg': {
      const s = normaliseHyphens(String(v)).toLowerCase();
      if (TOKEN_RE.test(s)) return s;
      break;
    }
  }
  throw new SecAgreeError('SECAGREE_BAD_PARAM', `${p}: cannot serialize ${showValue(String(v))}`, p, String(v));
}

function isGenValue(v: string): boolean {
  if (TOKEN_RE.test(v) || /^\[[0-9A-Fa-f:.]+\]$/.test(v)) return true;
  return /^"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"$/.test(v);
}

/** A whole header value: the mechanisms joined by ", ". Refuses an empty list and equal q values. */
export function serializeMechanisms(ms: readonly SecMechanism[]): string {
  if (ms.length === 0) throw new SecAgreeError('SECAGREE_EMPTY_MECHANISM', 'a security header needs at least one mechanism');
  checkDistinctQ(ms);
  return ms.map(serializeMechanism).join(', ');
}
