// Key export, the ONLY place where ESP keys leave the process as text: Wireshark `esp_sa` UAT
// records, `ip xfrm` state/policy commands, and the esp_sa parser that `imsec esp decode` reads.
// Labels verified against tshark 4.0.17 (lab README); XFRM names spec digest §13; selectors §6.2.
import { isIP } from 'node:net';
import { toHex, fromHex } from '../util/bytes.ts';
import {
  ENCRYPTION,
  ENCRYPTION_ALGS,
  INTEGRITY_ALGS,
  encryptionInfo,
  integrityInfo,
  SALT_LEN,
  type EncryptionAlg,
  type IntegrityAlg,
} from './algorithms.ts';
import { IpsecError } from './errors.ts';
import { sameAddress, spiText } from './sa.ts';
import { SaSet } from './sa-set.ts';
import type { EspKeys } from './keys.ts';
import { DEFAULT_REPLAY_WINDOW, type SaParams } from './types.ts';

/** Wireshark's esp_sa labels (exact strings; anything else is "invalid value" in tshark): the algorithm table's. */
export const WIRESHARK_ENC_LABEL: Readonly<Record<EncryptionAlg, string>> = Object.freeze(
  Object.fromEntries(ENCRYPTION_ALGS.map((e) => [e, ENCRYPTION[e].wireshark])) as Record<EncryptionAlg, string>,
);
/** The integrity labels tshark has (every algorithm but aes-gmac). */
export const WIRESHARK_AUTH_LABEL: Readonly<Partial<Record<IntegrityAlg, string>>> = Object.freeze(
  Object.fromEntries(
    INTEGRITY_ALGS.flatMap((a) => {
      const w = integrityInfo(a).wireshark;
      return w === undefined ? [] : [[a, w]];
    }),
  ),
);
/**
 * tshark 4.0.17 has no AES-GMAC (RFC 4543) entry in its esp_sa table (checked: every GMAC-looking
 * label is "invalid value"). We still write the SA, as a comment Wireshark skips, with this
 * imsec-only label so that `imsec esp decode` can read it back.
 */
export const IMSEC_GMAC_LABEL = 'AES-GMAC [RFC4543]';
export const IMSEC_ONLY_PREFIX = '#imsec-only: ';

const q = (s: string) => `"${s}"`;
const hex0x = (b: Uint8Array) => (b.length === 0 ? '' : `0x${toHex(b)}`);
const spiHex = spiText;
const family = (addr: string) => (isIP(addr) === 6 ? 'IPv6' : 'IPv4');

/** RFC 4106 / RFC 4543 key material as Wireshark and XFRM take it: key ‖ 4-octet salt. */
function keyAndSalt(key: Uint8Array, salt: Uint8Array | undefined): Uint8Array {
  const out = new Uint8Array(key.length + (salt?.length ?? 0));
  out.set(key);
  if (salt) out.set(salt, key.length);
  return out;
}

/**
 * One esp_sa record for an SA. For udp-enc-tunnel the addresses are the outer (tunnel) ones,
 * which is what Wireshark matches. AES-GMAC yields a commented imsec-only line.
 */
export function espSaRecord(p: SaParams): string {
  const head = [family(p.src), p.src, p.dst, spiHex(p.spi)].map(q);
  const i = integrityInfo(p.alg);
  const e = encryptionInfo(p.ealg);
  // Salted algorithms (GCM, GMAC) take key ‖ salt, as RFC 4106/4543 and Wireshark do.
  const enc = e.salt ? keyAndSalt(p.keys.ckEsp, p.keys.salt) : p.keys.ckEsp;
  const auth = i.salt ? keyAndSalt(p.keys.ikEsp, p.keys.salt) : p.keys.ikEsp;
  if (i.wireshark === undefined) {
    const rec = [...head, q(e.wireshark), q(hex0x(enc)), q(IMSEC_GMAC_LABEL), q(hex0x(auth))];
    return IMSEC_ONLY_PREFIX + rec.join(',');
  }
  const rec = [...head, q(e.wireshark), q(hex0x(enc)), q(i.wireshark), q(hex0x(auth))];
  return rec.join(',');
}

/** esp_sa lines for every SA (the file format of ~/.config/wireshark/esp_sa), with a warning header. */
export function espSaLines(from: SaSet | readonly SaParams[]): string[] {
  const sas = from instanceof SaSet ? from.params() : from;
  const lines = ['# Wireshark esp_sa (ESP keys: secret; delete after use). Written by imsec.'];
  if (sas.some((p) => !hasWiresharkEntry(p)))
    lines.push('# AES-GMAC SAs are commented out: Wireshark/tshark has no AES-GMAC (RFC 4543) ESP entry.');
  for (const p of sas) lines.push(espSaRecord(p));
  return lines;
}

const hasWiresharkEntry = (p: SaParams): boolean => integrityInfo(p.alg).wireshark !== undefined;

/** tshark arguments that load the SAs: `-o uat:esp_sa:RECORD` per SA plus the two decode switches. */
export function tsharkEspArgs(from: SaSet | readonly SaParams[]): string[] {
  const sas = from instanceof SaSet ? from.params() : from;
  const args = ['-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE'];
  for (const p of sas) if (hasWiresharkEntry(p)) args.push('-o', `uat:esp_sa:${espSaRecord(p)}`);
  return args;
}

// ---------------------------------------------------------------- ip xfrm

/** One SA for {@link xfrmCommands}: its parameters and direction as seen from the host the commands are for. */
export interface XfrmSa {
  readonly params: SaParams;
  /** Seen from the host the commands are for; decides the policy's `dir`. */
  readonly direction: 'in' | 'out';
}

/** The algorithm part of `ip xfrm state add` (spec digest §13), by the table's XFRM names. */
function xfrmAlgs(p: SaParams): string {
  const k = p.keys;
  const x = encryptionInfo(p.ealg).xfrm;
  const a = integrityInfo(p.alg).xfrm;
  if (x.kind === 'aead') return `aead '${x.name}' ${hex0x(keyAndSalt(k.ckEsp, k.salt))} ${x.icvBits}`;
  if (a.kind === 'aead') return `aead '${a.name}' ${hex0x(keyAndSalt(k.ikEsp, k.salt))} ${a.icvBits}`;
  if (a.kind !== 'auth') throw new IpsecError('IPSEC_BAD_PARAMS', `alg=${p.alg} is only valid with ealg=aes-gcm, got ealg=${p.ealg}`);
  if (x.kind !== 'crypt') throw new IpsecError('IPSEC_BAD_PARAMS', `ealg=${p.ealg} has no XFRM cipher`);
  const enc = k.ckEsp.length === 0 ? `enc '${x.name}' ''` : `enc '${x.name}' ${hex0x(k.ckEsp)}`;
  return `auth-trunc '${a.name}' ${hex0x(k.ikEsp)} ${a.truncBits} ${enc}`;
}

/**
 * `ip xfrm state add` + `ip xfrm policy add` for each SA. Selector: the SA's addresses (the inner
 * ones in tunnel mode) and its port pair, protocol any (no `proto`: iproute2 then still accepts
 * sport/dport, kernel selector proto 0 = any, as Kamailio programs it). `reqidBase` numbers reqids.
 */
export function xfrmCommands(from: SaSet | readonly XfrmSa[], opts: { reqidBase?: number; netns?: string } = {}): string[] {
  const sas = from instanceof SaSet ? from.all.map((sa) => ({ params: sa.params, direction: sa.direction })) : from;
  const ip = opts.netns ? `ip -n ${opts.netns}` : 'ip';
  const out: string[] = [];
  sas.forEach(({ params: p, direction }, i) => {
    const reqid = (opts.reqidBase ?? 1) + i;
    const tunnel = p.mode === 'udp-enc-tunnel';
    const mode = tunnel ? 'tunnel' : 'transport';
    const win = p.replayWindow ?? DEFAULT_REPLAY_WINDOW;
    let state = `${ip} xfrm state add src ${p.src} dst ${p.dst} proto esp spi ${spiHex(p.spi)} reqid ${reqid} mode ${mode} replay-window ${win} ${xfrmAlgs(p)}`;
    if (tunnel) {
      const e = p.encap ?? { srcPort: 4500, dstPort: 4500 };
      state += ` encap espinudp ${e.srcPort} ${e.dstPort} ${isIP(p.src) === 6 ? '::' : '0.0.0.0'}`;
    }
    const innerSrc = tunnel ? (p.innerSrc ?? p.src) : p.src;
    const innerDst = tunnel ? (p.innerDst ?? p.dst) : p.dst;
    const plen = (a: string) => (isIP(a) === 6 ? 128 : 32);
    const policy =
      `${ip} xfrm policy add src ${innerSrc}/${plen(innerSrc)} dst ${innerDst}/${plen(innerDst)} sport ${p.srcPort} dport ${p.dstPort} ` +
      `dir ${direction} tmpl src ${p.src} dst ${p.dst} proto esp reqid ${reqid} mode ${mode}`;
    out.push(state, policy);
  });
  return out;
}

// ---------------------------------------------------------------- esp_sa parser

/** One esp_sa record, as the decoder uses it. `'*'` is Wireshark's wildcard. */
export interface EspSaEntry {
  /** 1-based line number in the input (for messages). */
  readonly line: number;
  readonly family: 'IPv4' | 'IPv6';
  readonly src: string | '*';
  readonly dst: string | '*';
  readonly spi: number | '*';
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  readonly keys: EspKeys;
  /** The line came from an `#imsec-only:` comment (AES-GMAC). */
  readonly imsecOnly: boolean;
}

const ENC_BY_LABEL = new Map<string, EncryptionAlg>(Object.entries(WIRESHARK_ENC_LABEL).map(([k, v]) => [v, k as EncryptionAlg]));
const AUTH_BY_LABEL = new Map<string, IntegrityAlg>([
  ...Object.entries(WIRESHARK_AUTH_LABEL).map(([k, v]) => [v, k as IntegrityAlg] as const),
  [IMSEC_GMAC_LABEL, 'aes-gmac'],
]);
// Key lengths we accept for the labels we map: the Annex I lengths (AES-CBC 128 only), salted algorithms key ‖ salt.
const withSalt = (info: { keyLen: number; salt?: unknown }): number => info.keyLen + (info.salt ? SALT_LEN : 0);

/** Splits `"a","b",…` (fields may hold commas inside quotes; `\"` escapes as in Wireshark's UAT). */
function splitRecord(s: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] !== '"') return undefined;
    let v = '';
    i++;
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i];
      i++;
    }
    if (s[i] !== '"') return undefined;
    i++;
    fields.push(v);
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (i >= s.length) return fields;
    if (s[i] !== ',') return undefined;
    i++;
  }
}

function bad(line: number, msg: string): never {
  throw new IpsecError('IPSEC_BAD_ESP_SA', `esp_sa line ${line}: ${msg}`);
}

/**
 * Parses an esp_sa file: one record per line, `#` comments and blank lines ignored, an optional
 * `uat:esp_sa:` prefix tolerated, `#imsec-only:` lines read as records. Throws IpsecError
 * 'IPSEC_BAD_ESP_SA' naming the line (never echoing a key).
 */
export function parseEspSa(text: string): EspSaEntry[] {
  const out: EspSaEntry[] = [];
  text.split(/\r?\n/).forEach((raw, idx) => {
    const line = idx + 1;
    let s = raw.trim();
    let imsecOnly = false;
    if (s.startsWith(IMSEC_ONLY_PREFIX.trim())) {
      s = s.slice(IMSEC_ONLY_PREFIX.trim().length).trim();
      imsecOnly = true;
    } else if (s === '' || s.startsWith('#')) return;
    if (s.startsWith('-o ')) s = s.slice(3).trim();
    s = s.replace(/^'(.*)'$/, '$1');
    if (s.startsWith('uat:esp_sa:')) s = s.slice('uat:esp_sa:'.length);
    const f = splitRecord(s);
    if (!f || f.length !== 8) bad(line, `expected 8 double-quoted comma-separated fields${f ? `, got ${f.length}` : ''}`);
    const [proto, src, dst, spiText, encLabel, encKey, authLabel, authKey] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (proto !== 'IPv4' && proto !== 'IPv6') bad(line, `protocol must be IPv4 or IPv6, got ${JSON.stringify(proto)}`);
    const want = proto === 'IPv4' ? 4 : 6;
    for (const [name, a] of [
      ['src', src],
      ['dst', dst],
    ] as const) {
      if (a !== '*' && isIP(a) !== want) bad(line, `${name} must be an ${proto} address or *, got ${JSON.stringify(a)}`);
    }
    let spi: number | '*' = '*';
    if (spiText !== '*') {
      if (!/^(0x[0-9a-fA-F]{1,8}|[0-9]{1,10})$/.test(spiText))
        bad(line, `SPI must be 0x… hex, decimal or *, got ${JSON.stringify(spiText)}`);
      spi = Number(spiText);
      if (spi > 0xffffffff) bad(line, `SPI out of range: ${spiText}`);
    }
    const ealg = ENC_BY_LABEL.get(encLabel) ?? bad(line, `unsupported encryption ${JSON.stringify(encLabel)}`);
    const alg = AUTH_BY_LABEL.get(authLabel) ?? bad(line, `unsupported authentication ${JSON.stringify(authLabel)}`);
    const key = (text: string, field: string, len: number): Uint8Array => {
      if (len === 0) {
        if (text !== '' && text !== '0x') bad(line, `${field}: must be empty for this algorithm`);
        return new Uint8Array(0);
      }
      if (!/^0x([0-9a-fA-F]{2})+$/.test(text)) bad(line, `${field}: must be 0x followed by hex`);
      const b = fromHex(text);
      if (b.length !== len) bad(line, `${field}: must be ${len} octets, got ${b.length}`);
      return b;
    };
    const e = encryptionInfo(ealg);
    const i = integrityInfo(alg);
    const ck = key(encKey, 'encryption key', withSalt(e));
    const ik = key(authKey, 'authentication key', withSalt(i));
    let keys: EspKeys;
    if (e.salt) keys = { ckEsp: ck.slice(0, e.keyLen), ikEsp: ik, salt: ck.slice(e.keyLen) };
    else if (i.salt) keys = { ckEsp: ck, ikEsp: ik.slice(0, i.keyLen), salt: ik.slice(i.keyLen) };
    else keys = { ckEsp: ck, ikEsp: ik };
    out.push({ line, family: proto, src, dst, spi, alg, ealg, keys, imsecOnly });
  });
  return out;
}

/** The first entry that matches a packet (Wireshark also takes the first match). */
export function findEspSa(entries: readonly EspSaEntry[], pkt: { src: string; dst: string; spi: number }): EspSaEntry | undefined {
  const fam = isIP(pkt.src) === 6 ? 'IPv6' : 'IPv4';
  const same = (pattern: string, addr: string) => pattern === '*' || sameAddress(pattern, addr);
  return entries.find((e) => e.family === fam && same(e.src, pkt.src) && same(e.dst, pkt.dst) && (e.spi === '*' || e.spi === pkt.spi));
}
