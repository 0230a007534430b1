// Command-line values: one parser per kind of value and one formatter for SPIs, so every command
// accepts and refuses the same spellings with the same message. Errors are InputError (exit 2,
// output.ts); a key's value is never echoed.
import { isIP } from 'node:net';
import { spiText } from '../ipsec/types.ts';
import { fromHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';

/** An SPI as imsec prints it everywhere: `0x` and 8 hex digits. */
export const formatSpi = (spi: number): string => spiText(spi);

const show = (text: string) => JSON.stringify(text.slice(0, 60));

/** A decimal integer in [min, max]: digits only (no sign, exponent, hex or blanks). */
export function parseIntArg(text: string, flag: string, min: number, max: number, what = 'an integer'): number {
  const n = /^[0-9]{1,15}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new InputError(`${flag}: must be ${what} ${min}..${max}, got ${show(text)}`);
  return n;
}

/** A UDP/TCP port; `min` 0 where 0 means "any free port". */
export function parsePortArg(text: string, flag: string, min = 0): number {
  return parseIntArg(text, flag, min, 65535, 'a port');
}

/** Key material in hex (optional 0x) of exactly `octets` octets; the value is never shown. */
export function parseKeyHex(text: string, flag: string, octets: number): Uint8Array {
  if (!/^(?:0[xX])?(?:[0-9a-fA-F]{2})*$/.test(text)) throw new InputError(`${flag}: not an even-length hex string (value not shown)`);
  return fromHex(text, flag, octets);
}

/**
 * `ADDR:PORT`, `[IPv6]:PORT`, a host name with a port; with `defaultPort` also `ADDR`, `[IPv6]` or a
 * bare IPv6 address. Ports from `minPort` (default 0) to 65535.
 */
export function parseHostPortArg(
  text: string,
  flag: string,
  o: { readonly defaultPort?: number; readonly minPort?: number } = {},
): { address: string; port: number } {
  const bad = (): never => {
    const form = o.defaultPort === undefined ? 'ADDR:PORT or [IPv6]:PORT' : `ADDR[:PORT] or [IPv6][:PORT] (default port ${o.defaultPort})`;
    throw new InputError(`${flag}: expected ${form}, got ${show(text)}`);
  };
  const t = text.trim();
  let address: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::([0-9]*))?$/.exec(t);
  const plain = /^([A-Za-z0-9._-]+)(?::([0-9]*))?$/.exec(t);
  if (bracketed) {
    address = bracketed[1]!;
    portText = bracketed[2];
    if (isIP(address) !== 6) bad();
  } else if (plain) {
    address = plain[1]!;
    portText = plain[2];
  } else if (o.defaultPort !== undefined && isIP(t) === 6) {
    address = t;
  } else {
    return bad();
  }
  if (portText === undefined) return o.defaultPort === undefined ? bad() : { address, port: o.defaultPort };
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= (o.minPort ?? 0) && port <= 65535)) bad();
  return { address, port };
}
