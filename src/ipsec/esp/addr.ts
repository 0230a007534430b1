// Textual IP addresses ⇄ 4/16 octets. Parsing accepts what node:net accepts (IPv6 zone ids are
// dropped); formatting is RFC 5952 (lowercase, no leading zeros, longest zero run as "::",
// ::ffff:a.b.c.d for IPv4-mapped).
import { isIPv4, isIPv6 } from 'node:net';

function parseV4(s: string): Uint8Array | undefined {
  if (!isIPv4(s)) return undefined;
  const out = new Uint8Array(4);
  const parts = s.split('.');
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
  return out;
}

function parseV6(s: string): Uint8Array | undefined {
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!isIPv6(s)) return undefined;
  const out = new Uint8Array(16);
  const lastColon = s.lastIndexOf(':');
  let v4: Uint8Array | undefined;
  if (s.includes('.', lastColon)) {
    v4 = parseV4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    s = `${s.slice(0, lastColon + 1)}0:0`; // two placeholder groups, overwritten below
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(Math.max(fill, 0)).fill('0'), ...tail];
  if (groups.length !== 8) return undefined;
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i]!, 16);
    if (!(g >= 0 && g <= 0xffff)) return undefined;
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  }
  if (v4) out.set(v4, 12);
  return out;
}

/** 4 octets for IPv4, 16 for IPv6, undefined for anything else. */
export function parseAddress(s: string): Uint8Array | undefined {
  return s.includes(':') ? parseV6(s) : parseV4(s);
}

/**
 * Writes the octets of an IP address in text at b[off] and returns how many (4 or 16), 0 when `s`
 * is no address (nothing written then). The per-packet form of parseAddress: dotted quads, the
 * common case, are read without allocating; anything else goes through parseAddress.
 */
export function writeAddress(s: string, b: Uint8Array, off: number): 0 | 4 | 16 {
  if (writeV4(s, b, off)) return 4;
  if (!s.includes(':')) return 0; // writeV4 accepts exactly what isIPv4 accepts
  const a = parseV6(s);
  if (!a) return 0;
  b.set(a, off);
  return 16;
}

/** A dotted quad as isIPv4 accepts it (no leading zeros, each part 0..255), written at b[off]; false otherwise. */
function writeV4(s: string, b: Uint8Array, off: number): boolean {
  const n = s.length;
  if (n < 7 || n > 15) return false;
  let part = 0;
  let v = 0;
  let digits = 0;
  let octets = 0; // the parts read so far, 8 bits each: written only once the whole text is valid
  for (let i = 0; i <= n; i++) {
    const c = i === n ? 0x2e : s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 3 || (i === n) !== (part === 3)) return false;
      octets = octets * 256 + v;
      part++;
      v = 0;
      digits = 0;
      continue;
    }
    if (c < 0x30 || c > 0x39 || (digits === 1 && v === 0)) return false; // not a digit, or after a leading 0
    v = v * 10 + (c - 0x30);
    if (++digits > 3 || v > 255) return false;
  }
  if (part !== 4) return false;
  b[off] = octets >>> 24;
  b[off + 1] = (octets >>> 16) & 0xff;
  b[off + 2] = (octets >>> 8) & 0xff;
  b[off + 3] = octets & 0xff;
  return true;
}

/** 4 or 6 for an IP address in text, undefined for anything else. */
export function addressFamily(s: string): 4 | 6 | undefined {
  const b = parseAddress(s);
  return b ? (b.length === 4 ? 4 : 6) : undefined;
}

/** 4 or 16 octets as an address in text (IPv6 in RFC 5952 form). */
export function formatAddress(b: Uint8Array): string {
  if (b.length !== 4 && b.length !== 16) throw new RangeError(`an IP address has 4 or 16 octets, got ${b.length}`);
  return formatAddressAt(b, 0, b.length);
}

/** The address of `len` (4 or 16) octets at b[off] in text: formatAddress without a view per address (per-packet use). */
export function formatAddressAt(b: Uint8Array, off: number, len: 4 | 16): string {
  if (len === 4) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  if (off !== 0 || b.length !== 16) b = b.subarray(off, off + 16);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // RFC 5952 §4.2: compress the longest run of ≥ 2 zero groups (the first one on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Parses or throws a misuse error naming the field. */
export function addressOrThrow(s: string, field: string, onError: (msg: string) => Error): Uint8Array {
  const b = parseAddress(s);
  if (!b) throw onError(`${field}: not an IPv4 or IPv6 address: ${JSON.stringify(String(s).slice(0, 64))}`);
  return b;
}
