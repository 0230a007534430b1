// The common form of a Security-Client / -Server / -Verify value, parsed in one pass over char
// codes: what UEs and P-CSCFs send (ASCII tokens, `;name=value` parameters, commas between
// mechanisms, valid Annex H numbers and names, no quoted strings, no IPv6 references, no repeated
// parameter). Anything else gives undefined and codec.ts's full scanner reads the value, so every
// refusal and its message come from one place, and whatever this accepts parses to what the full
// scanner would give (codec.property.test.ts checks both agree). Why a second reader: the full one
// (a cursor, an object per raw parameter, a RegExp per number) was ~4 % of the P-CSCF's busy time
// in a 10k-UE registration burst, every REGISTER carrying five mechanisms of seven parameters.
import { ENCRYPTION, INTEGRITY } from '../ipsec/algorithms.ts';
import { IPSEC_3GPP, MAX_PORT, MAX_SPI, Q_TEXT, qKey, type ExtraParam, type Mod, type Prot, type SecMechanism } from './mechanism.ts';

// RFC 3261 §25.1 token characters, by char code (codec.ts's set).
const TOKEN = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~") TOKEN[c.charCodeAt(0)] = 1;
const isToken = (c: number): boolean => c < 128 && TOKEN[c] === 1;
const SP = 32;
const HTAB = 9;
const SEMI = 59;
const EQUALS = 61;
const COMMA = 44;

// Bits of the typed parameters (a repeated one sends the value to the full scanner, which refuses it).
const Q = 1;
const PROT = 2;
const MOD = 4;
const SPI_C = 8;
const SPI_S = 16;
const PORT_C = 32;
const PORT_S = 64;
const ALG = 128;
const EALG = 256;

/** Whether s[start, end) is `lower` ignoring ASCII case (`lower` is lower case). */
function isLower(s: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((s.charCodeAt(start + i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}
// `| 0x20` folds A-Z onto a-z but also maps some punctuation onto others ('-' 0x2d has the bit
// already, so it stays); the compared texts hold only letters, digits, '-' and '.', whose folded
// codes meet no other token character's ('\r' would, but it is no token). Digits have the bit set.

/** The typed parameter s[start, end) names (case-insensitive), 0 for any other. */
function paramBit(s: string, start: number, end: number): number {
  switch (end - start) {
    case 1:
      return isLower(s, start, end, 'q') ? Q : 0;
    case 3:
      return isLower(s, start, end, 'mod') ? MOD : isLower(s, start, end, 'alg') ? ALG : 0;
    case 4:
      return isLower(s, start, end, 'prot') ? PROT : isLower(s, start, end, 'ealg') ? EALG : 0;
    case 5:
      return isLower(s, start, end, 'spi-c') ? SPI_C : isLower(s, start, end, 'spi-s') ? SPI_S : 0;
    case 6:
      return isLower(s, start, end, 'port-c') ? PORT_C : isLower(s, start, end, 'port-s') ? PORT_S : 0;
    default:
      return 0;
  }
}

/** 1 to `maxDigits` decimal digits with a value 1..max (parseSpi / parsePort), else -1. */
function number(s: string, start: number, end: number, maxDigits: number, max: number): number {
  if (end - start > maxDigits) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n >= 1 && n <= max ? n : -1;
}

// alg / ealg names as the tables spell them: a known name costs no string (and is shared).
const ALG_NAMES: readonly string[] = [...new Set([...Object.values(INTEGRITY), ...Object.values(ENCRYPTION)].map((a) => a.token))];

/** An alg / ealg token lower-cased (parseAlgName: a token is always a valid name). */
function algName(s: string, start: number, end: number): string {
  for (const a of ALG_NAMES) if (isLower(s, start, end, a)) return a;
  return s.slice(start, end).toLowerCase();
}

/** The `extra` of a mechanism without unknown parameters (all of a UE's): one shared, frozen list, not an empty array per mechanism. */
const NO_EXTRA: readonly ExtraParam[] = Object.freeze([]);

function skipSpace(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== SP && c !== HTAB) return i;
    i++;
  }
}

/**
 * The mechanisms of `values` (every instance of the header, in order) when each is in the common
 * form, else undefined. The caller has checked the total length and that there is a value.
 */
export function parseCommonForm(values: readonly string[], maxMechanisms: number): SecMechanism[] | undefined {
  const out: SecMechanism[] = [];
  let withQ = 0;
  for (const s of values) {
    const n = s.length;
    let i = 0;
    for (;;) {
      i = skipSpace(s, i);
      const ns = i;
      while (i < n && isToken(s.charCodeAt(i))) i++;
      if (i === ns) return undefined;
      const name = isLower(s, ns, i, IPSEC_3GPP) ? IPSEC_3GPP : s.slice(ns, i).toLowerCase();
      const ipsec = name === IPSEC_3GPP;
      let q: number | undefined;
      let prot: Prot | undefined;
      let mod: Mod | undefined;
      let spiC: number | undefined;
      let spiS: number | undefined;
      let portC: number | undefined;
      let portS: number | undefined;
      let alg: string | undefined;
      let ealg: string | undefined;
      let extra: ExtraParam[] | undefined;
      let seen = 0;
      i = skipSpace(s, i);
      while (i < n && s.charCodeAt(i) === SEMI) {
        i = skipSpace(s, i + 1);
        const ps = i;
        while (i < n && isToken(s.charCodeAt(i))) i++;
        const pe = i;
        if (ps === pe) return undefined;
        i = skipSpace(s, i);
        let vs = -1;
        let ve = -1;
        if (s.charCodeAt(i) === EQUALS) {
          vs = i = skipSpace(s, i + 1);
          while (i < n && isToken(s.charCodeAt(i))) i++;
          ve = i;
          if (vs === ve) return undefined; // empty, a quoted string or an IPv6 reference
          i = skipSpace(s, i);
        }
        const typed = paramBit(s, ps, pe);
        const bit = typed === Q || ipsec ? typed : 0;
        if (bit === 0) {
          const pname = s.slice(ps, pe).toLowerCase();
          (extra ??= []).push(vs < 0 ? { name: pname } : { name: pname, value: s.slice(vs, ve) });
          continue;
        }
        if ((seen & bit) !== 0 || vs < 0) return undefined;
        seen |= bit;
        switch (bit) {
          case Q: {
            const t = s.slice(vs, ve);
            if (!Q_TEXT.test(t)) return undefined;
            q = Number(t.endsWith('.') ? t.slice(0, -1) : t);
            withQ++;
            break;
          }
          case SPI_C:
            spiC = number(s, vs, ve, 10, MAX_SPI);
            if (spiC < 0) return undefined;
            break;
          case SPI_S:
            spiS = number(s, vs, ve, 10, MAX_SPI);
            if (spiS < 0) return undefined;
            break;
          case PORT_C:
            portC = number(s, vs, ve, 5, MAX_PORT);
            if (portC < 0) return undefined;
            break;
          case PORT_S:
            portS = number(s, vs, ve, 5, MAX_PORT);
            if (portS < 0) return undefined;
            break;
          case PROT:
            if (isLower(s, vs, ve, 'esp')) prot = 'esp';
            else if (isLower(s, vs, ve, 'ah')) prot = 'ah';
            else return undefined;
            break;
          case MOD:
            if (isLower(s, vs, ve, 'trans')) mod = 'trans';
            else if (isLower(s, vs, ve, 'udp-enc-tun')) mod = 'UDP-enc-tun';
            else if (isLower(s, vs, ve, 'tun')) mod = 'tun';
            else return undefined;
            break;
          case ALG:
            alg = algName(s, vs, ve);
            break;
          case EALG:
            ealg = algName(s, vs, ve);
            break;
        }
      }
      // codec.ts typeMechanism's literal and field order: one hidden-class chain for both readers.
      const m: { -readonly [K in keyof SecMechanism]?: SecMechanism[K] } = { name };
      if (q !== undefined) m.q = q;
      if (prot !== undefined) m.prot = prot;
      if (mod !== undefined) m.mod = mod;
      if (spiC !== undefined) m.spiC = spiC;
      if (spiS !== undefined) m.spiS = spiS;
      if (portC !== undefined) m.portC = portC;
      if (portS !== undefined) m.portS = portS;
      if (alg !== undefined) m.alg = alg;
      if (ealg !== undefined) m.ealg = ealg;
      m.extra = extra ?? NO_EXTRA;
      if (out.push(m as SecMechanism) > maxMechanisms) return undefined;
      if (i >= n) break;
      if (s.charCodeAt(i) !== COMMA) return undefined;
      i++;
    }
  }
  // RFC 3329 §2.2: distinct q values (rare: a UE's Security-Client has none), else the full reader refuses.
  if (withQ > 1) {
    const keys = new Set<number>();
    for (const m of out) {
      if (m.q === undefined) continue;
      if (keys.has(qKey(m.q))) return undefined;
      keys.add(qKey(m.q));
    }
  }
  return out;
}
