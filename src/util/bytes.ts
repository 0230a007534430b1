// Byte helpers shared by every layer: strict hex/base64 codecs, xor, concat, constant-time compare.
import { timingSafeEqual } from 'node:crypto';
import { InputError } from './errors.ts';

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Parses hex (optionally with a 0x prefix, no separators) into bytes.
 * `field` names the value in the error; `length`, when given, is the exact octet count required.
 */
export function fromHex(hex: string, field = 'hex', length?: number): Uint8Array {
  const s = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (!HEX_RE.test(s))
    // The value is not echoed: it may be a mistyped key.
    throw new InputError(`${field}: not a hex string of whole octets (${hex.length} characters)`);
  const out = Buffer.from(s, 'hex');
  if (length !== undefined && out.length !== length) {
    throw new InputError(`${field}: must be ${length} octets (${length * 2} hex digits), got ${out.length}`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 (RFC 4648 §4, padding optional) to bytes. */
export function fromBase64(b64: string, field = 'base64'): Uint8Array {
  if (!B64_RE.test(b64) || b64.length % 4 === 1) {
    throw new InputError(`${field}: not valid base64 (${b64.length} characters)`);
  }
  const out = Buffer.from(b64, 'base64');
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** a ⊕ b; both must have the same length. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new RangeError(`xor of ${a.length} and ${b.length} octets`);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time equality for MACs and ICVs (lengths are public). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Best-effort wipe of secret intermediates; JavaScript guarantees nothing about copies. */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}
