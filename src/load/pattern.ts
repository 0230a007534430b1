// Subscriber ranges: an identity pattern with one counter field, expanded for n = first … first+count-1.
// `00101{n:10}@ims.example` → 001010000000001@ims.example for n = 1 ({n:W} zero-pads to W digits,
// {n} does not pad). `{{` and `}}` are literal braces. Used by `imsec load` and `imsec subscriber add`.
import { InputError } from '../util/errors.ts';

export interface IdentityPattern {
  /** The text as given. */
  readonly source: string;
  readonly prefix: string;
  readonly suffix: string;
  /** Zero-padded width of the counter (0: no padding); undefined when the pattern has no counter. */
  readonly width: number | undefined;
}

const MAX_WIDTH = 15; // 10^15 < 2^53: every counter value stays an exact integer

/** Parses a pattern; `flag` names the option in errors. A pattern without `{n}` is one fixed identity. */
export function parsePattern(text: string, flag: string): IdentityPattern {
  let prefix = '';
  let suffix = '';
  let width: number | undefined;
  for (let i = 0; i < text.length;) {
    const c = text[i]!;
    const out = (s: string) => (width === undefined ? (prefix += s) : (suffix += s));
    if (c === '{' && text[i + 1] === '{') {
      out('{');
      i += 2;
      continue;
    }
    if (c === '}' && text[i + 1] === '}') {
      out('}');
      i += 2;
      continue;
    }
    if (c === '}')
      throw new InputError(`${flag}: unmatched '}' at offset ${i} in ${JSON.stringify(text)} (write '}}' for a literal brace)`);
    if (c !== '{') {
      out(c);
      i++;
      continue;
    }
    const m = /^\{n(?::(\d{1,2}))?\}/.exec(text.slice(i));
    if (!m)
      throw new InputError(`${flag}: expected {n} or {n:WIDTH} at offset ${i} in ${JSON.stringify(text)} (write '{{' for a literal brace)`);
    if (width !== undefined) throw new InputError(`${flag}: only one {n} counter per pattern, got ${JSON.stringify(text)}`);
    width = m[1] === undefined ? 0 : Number(m[1]);
    if (width > MAX_WIDTH) throw new InputError(`${flag}: counter width at most ${MAX_WIDTH}, got ${width}`);
    i += m[0].length;
  }
  return { source: text, prefix, suffix, width };
}

/** The identity for counter value n (n ≥ 0; one that does not fit the width is an error). */
export function expand(p: IdentityPattern, n: number): string {
  if (p.width === undefined) return p.prefix;
  const digits = String(n);
  if (p.width > 0 && digits.length > p.width)
    throw new InputError(`counter ${n} does not fit {n:${p.width}} in ${JSON.stringify(p.source)}`);
  return p.prefix + (p.width > 0 ? digits.padStart(p.width, '0') : digits) + p.suffix;
}

export interface SubscriberRange {
  readonly impi: IdentityPattern;
  readonly impu: IdentityPattern;
  readonly first: number;
  readonly count: number;
}

/**
 * Checks a range up front so no identity fails half-way: a counter in both patterns when count > 1
 * (else every UE would share one identity) and the last value fitting the widths.
 */
export function subscriberRange(o: { impi: string; impu?: string; first?: number; count?: number }): SubscriberRange {
  const impi = parsePattern(o.impi, '--impi');
  const impu = parsePattern(o.impu ?? `sip:${o.impi.replace(/^sips?:/, '')}`, '--impu');
  const first = o.first ?? 1;
  const count = o.count ?? 1;
  if (!Number.isSafeInteger(first) || first < 0) throw new InputError(`--first: a counter value >= 0, got ${first}`);
  if (!Number.isSafeInteger(count) || count < 1) throw new InputError(`--count: at least 1, got ${count}`);
  if (count > 1) {
    if (impi.width === undefined)
      throw new InputError(`--impi: --count ${count} needs a {n} counter in the pattern, got ${JSON.stringify(o.impi)}`);
    if (impu.width === undefined)
      throw new InputError(`--impu: --count ${count} needs a {n} counter in the pattern, got ${JSON.stringify(impu.source)}`);
  }
  expand(impi, first + count - 1);
  expand(impu, first + count - 1);
  return { impi, impu, first, count };
}

/** The i-th subscriber of the range (0-based). */
export function rangeAt(r: SubscriberRange, i: number): { impi: string; impu: string; n: number } {
  const n = r.first + i;
  return { impi: expand(r.impi, n), impu: expand(r.impu, n), n };
}
