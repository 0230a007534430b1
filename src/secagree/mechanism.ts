// The typed model of one sec-mechanism (RFC 3329 §2.2) with the ipsec-3gpp parameters of
// 33.203 Annex H (spec digest §4.1/§4.2), the defaults Annex H gives for absent parameters, and
// the value checks the codec and the CLI share (SPI, port, q).
import { SecAgreeError, showValue } from './errors.ts';

/** The mechanism name of 33.203 IPsec in Security-Client/-Server/-Verify. */
export const IPSEC_3GPP = 'ipsec-3gpp';

/** The `prot` parameter: ESP (the only one IMS uses) or AH. */
export type Prot = 'esp' | 'ah';
/** Annex H `mod`; `UDP-enc-tun` is the Annex M (NAT) value and is always spelled exactly so. */
export type Mod = 'trans' | 'tun' | 'UDP-enc-tun';
/** The modes imsec can run (33.203 main body and Annex M); `tun` without UDP is never chosen. */
export type UsableMod = 'trans' | 'UDP-enc-tun';

/** An RFC 3329 `extension` (generic-param) kept as received: name lower-cased, value raw. */
export interface ExtraParam {
  readonly name: string;
  /** Raw gen-value (a token, host or quoted-string with its quotes); absent for a bare `;name`. */
  readonly value?: string;
}

/**
 * One entry of a Security-Client / -Server / -Verify list. The Annex H fields are filled only for
 * `ipsec-3gpp`; for other mechanisms every parameter but `q` lands in `extra`. An absent field
 * means the parameter was absent (the defaults below give its meaning); keys are never present
 * with the value `undefined`, so parsed values deep-equal hand-written ones.
 */
export interface SecMechanism {
  /** Lower-case mechanism name: 'ipsec-3gpp', 'tls', 'digest', … */
  readonly name: string;
  /** RFC 3329 preference, 0..1 with at most three decimals. */
  readonly q?: number;
  /** Integrity algorithm, lower-case. Mandatory in Annex H but kept optional so the UE can tell
   *  an incomplete Security-Server from a malformed one. Unknown names are kept as strings. */
  readonly alg?: string;
  /** Encryption algorithm, lower-case; absent means `null` (Annex H). */
  readonly ealg?: string;
  /** Absent means `esp` (Annex H). */
  readonly prot?: Prot;
  /** Absent means `trans` (Annex H). */
  readonly mod?: Mod;
  /** The sender's inbound SPI at its protected client / server port (spec digest §6.1, §18.1). */
  readonly spiC?: number;
  readonly spiS?: number;
  /** The sender's protected client / server port. */
  readonly portC?: number;
  readonly portS?: number;
  readonly extra: readonly ExtraParam[];
}

/** The four numbers one side contributes to a security association set (spec digest §6.1). */
export interface SpiPortSet {
  readonly spiC: number;
  readonly spiS: number;
  readonly portC: number;
  readonly portS: number;
}

/** Annex H parameter names of ipsec-3gpp, in the canonical (Kamailio) output order after q. */
export const IPSEC_PARAM_ORDER = ['prot', 'mod', 'spi-c', 'spi-s', 'port-c', 'port-s', 'alg', 'ealg'] as const;
export type IpsecParamName = (typeof IPSEC_PARAM_ORDER)[number];

/** The mechanism's ealg, `null` when absent (33.203 Annex H default). */
export const effectiveEalg = (m: SecMechanism): string => m.ealg ?? 'null';
/** The mechanism's prot, `esp` when absent (Annex H default). */
export const effectiveProt = (m: SecMechanism): Prot => m.prot ?? 'esp';
/** The mechanism's mod, `trans` when absent (Annex H default). */
export const effectiveMod = (m: SecMechanism): Mod => m.mod ?? 'trans';

/** The largest SPI (32 bits); 0 is never a valid SPI. */
export const MAX_SPI = 0xffffffff;
/** The largest port number. */
export const MAX_PORT = 65535;

/**
 * SPI as sent in spi-c / spi-s: Annex H says `10DIGIT`, real UEs send `spi-c=1236`, so 1–10
 * digits with a value 1..4294967295. SPI 0 is local-only and never sent (RFC 4303 §2.1).
 */
export function parseSpi(text: string, field: string, where = ''): number {
  if (!/^[0-9]{1,10}$/.test(text)) {
    throw new SecAgreeError(
      'SECAGREE_BAD_SPI',
      `${where}${field}: SPI must be 1 to 10 decimal digits, got ${showValue(text)}`,
      field,
      text,
    );
  }
  const n = Number(text);
  if (n === 0 || n > MAX_SPI) {
    throw new SecAgreeError('SECAGREE_BAD_SPI', `${where}${field}: SPI must be 1..${MAX_SPI}, got ${text}`, field, text);
  }
  return n;
}

/** A protected port: `1*DIGIT` in Annex H, limited here to 1–5 digits and 1..65535. */
export function parsePort(text: string, field: string, where = ''): number {
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_PORT)) {
    throw new SecAgreeError('SECAGREE_BAD_PORT', `${where}${field}: port must be 1..${MAX_PORT}, got ${showValue(text)}`, field, text);
  }
  return n;
}

/** RFC 3329 §2.2 qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ). */
export const Q_TEXT = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/;

/** A qvalue's number (Q_TEXT; a trailing "." allowed). */
export function parseQ(text: string, field = 'q', where = ''): number {
  if (!Q_TEXT.test(text)) {
    throw new SecAgreeError(
      'SECAGREE_BAD_Q',
      `${where}${field}: not an RFC 3329 qvalue (0..1, at most 3 decimals), got ${showValue(text)}`,
      field,
      text,
    );
  }
  return Number(text.endsWith('.') ? text.slice(0, -1) : text);
}

/** q in thousandths: the unit in which two q values are "the same" (0.1 = 0.100). */
export const qKey = (q: number): number => Math.round(q * 1000);

/** Canonical qvalue text: at most three decimals, no trailing zeros (0.1, 0.125, 1, 0). */
export function formatQ(q: number, field = 'q'): string {
  if (!Number.isFinite(q) || q < 0 || q > 1 || Math.abs(q * 1000 - qKey(q)) > 1e-6) {
    throw new SecAgreeError('SECAGREE_BAD_Q', `${field}: q must be 0..1 with at most 3 decimals, got ${q}`, field, String(q));
  }
  const k = qKey(q);
  if (k === 1000) return '1';
  if (k === 0) return '0';
  return ('0.' + String(k).padStart(3, '0')).replace(/0+$/, '');
}

/** Checks a number used as an SPI or port in a model before it is serialized. */
export function checkSpiNumber(n: number, field: string): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_SPI) {
    throw new SecAgreeError('SECAGREE_BAD_SPI', `${field}: SPI must be an integer 1..${MAX_SPI}, got ${n}`, field, String(n));
  }
}

export function checkPortNumber(n: number, field: string): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PORT) {
    throw new SecAgreeError('SECAGREE_BAD_PORT', `${field}: port must be an integer 1..${MAX_PORT}, got ${n}`, field, String(n));
  }
}

export function checkSpiPortSet(s: SpiPortSet, who: string): void {
  checkSpiNumber(s.spiC, `${who} spi-c`);
  checkSpiNumber(s.spiS, `${who} spi-s`);
  checkPortNumber(s.portC, `${who} port-c`);
  checkPortNumber(s.portS, `${who} port-s`);
}

/** The four numbers of an entry, or the name of the first one missing. */
export function spiPortSetOf(m: SecMechanism): SpiPortSet | { missing: IpsecParamName } {
  if (m.spiC === undefined) return { missing: 'spi-c' };
  if (m.spiS === undefined) return { missing: 'spi-s' };
  if (m.portC === undefined) return { missing: 'port-c' };
  if (m.portS === undefined) return { missing: 'port-s' };
  return { spiC: m.spiC, spiS: m.spiS, portC: m.portC, portS: m.portS };
}
