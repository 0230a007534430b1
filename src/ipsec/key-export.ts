// Key export, the ONLY place where ESP keys leave the process as text: Wireshark `esp_sa` UAT
// records, `ip xfrm` state/policy commands, and the esp_sa parser that `imsec esp decode` reads.
// Labels verified against tshark 4.0.17 (lab README); XFRM names spec digest §13; selectors §6.2.
import { isIP } from 'node:net';
import { toHex, fromHex } from '../util/bytes.ts';
import type { EncryptionAlg, IntegrityAlg } from './algorithms.ts';
import { IpsecError } from './errors.ts';
import { sameAddress } from './sa.ts';
import { SaSet } from './sa-set.ts';
import type { EspKeys } from './keys.ts';
import { DEFAULT_REPLAY_WINDOW, type SaParams } from './types.ts';

/** Wireshark's esp_sa labels (exact strings; anything else is "invalid value" in tshark). */
export const WIRESHARK_ENC_LABEL: Readonly<Record<EncryptionAlg, string>> = {
  null: 'NULL',
  'aes-cbc': 'AES-CBC [RFC3602]',
  'des-ede3-cbc': 'TripleDES-CBC [RFC2451]',
  'aes-gcm': 'AES-GCM with 16 octet ICV [RFC4106]',
};
export const WIRESHARK_AUTH_LABEL: Readonly<Record<Exclude<IntegrityAlg, 'aes-gmac'>, string>> = {
  'hmac-md5-96': 'HMAC-MD5-96 [RFC2403]',
  'hmac-sha-1-96': 'HMAC-SHA-1-96 [RFC2404]',
  null: 'NULL',
};
/**
 * tshark 4.0.17 has no AES-GMAC (RFC 4543) entry in its esp_sa table (checked: every GMAC-looking
 * label is "invalid value"). We still write the SA, as a comment Wireshark skips, with this
 * imsec-only label so that `imsec esp decode` can read it back.
 */
export const IMSEC_GMAC_LABEL = 'AES-GMAC [RFC4543]';
export const IMSEC_ONLY_PREFIX = '#imsec-only: ';

const q = (s: string) => `"${s}"`;
const hex0x = (b: Uint8Array) => (b.length === 0 ? '' : `0x${toHex(b)}`);
const spiHex = (spi: number) => `0x${spi.toString(16).padStart(8, '0')}`;
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
  if (p.alg === 'aes-gmac') {
    const rec = [...head, q('NULL'), q(''), q(IMSEC_GMAC_LABEL), q(hex0x(keyAndSalt(p.keys.ikEsp, p.keys.salt)))];
    return IMSEC_ONLY_PREFIX + rec.join(',');
  }
  const enc = p.ealg === 'aes-gcm' ? keyAndSalt(p.keys.ckEsp, p.keys.salt) : p.keys.ckEsp;
  const rec = [...head, q(WIRESHARK_ENC_LABEL[p.ealg]), q(hex0x(enc)), q(WIRESHARK_AUTH_LABEL[p.alg]), q(hex0x(p.keys.ikEsp))];
  return rec.join(',');
}

/** esp_sa lines for every SA (the file format of ~/.config/wireshark/esp_sa), with a warning header. */
export function espSaLines(from: SaSet | readonly SaParams[]): string[] {
  const sas = from instanceof SaSet ? from.params() : from;
  const lines = ['# Wireshark esp_sa (ESP keys: secret; delete after use). Written by imsec.'];
  if (sas.some((p) => p.alg === 'aes-gmac')) lines.push('# AES-GMAC SAs are commented out: Wireshark/tshark has no AES-GMAC (RFC 4543) ESP entry.');
  for (const p of sas) lines.push(espSaRecord(p));
  return lines;
}

/** tshark arguments that load the SAs: `-o uat:esp_sa:RECORD` per SA plus the two decode switches. */
export function tsharkEspArgs(from: SaSet | readonly SaParams[]): string[] {
  const sas = from instanceof SaSet ? from.params() : from;
  const args = ['-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE'];
  for (const p of sas) if (p.alg !== 'aes-gmac') args.push('-o', `uat:esp_sa:${espSaRecord(p)}`);
  return args;
}

// ---------------------------------------------------------------- ip xfrm

const XFRM_AUTH: Readonly<Record<'hmac-md5-96' | 'hmac-sha-1-96', string>> = { 'hmac-md5-96': 'hmac(md5)', 'hmac-sha-1-96': 'hmac(sha1)' };
const XFRM_ENC: Readonly<Record<'null' | 'aes-cbc' | 'des-ede3-cbc', string>> = {
  null: 'ecb(cipher_null)',
  'aes-cbc': 'cbc(aes)',
  'des-ede3-cbc': 'cbc(des3_ede)',
};

export interface XfrmSa {
  readonly params: SaParams;
  /** Seen from the host the commands are for; decides the policy's `dir`. */
  readonly direction: 'in' | 'out';
}

/** The algorithm part of `ip xfrm state add` (spec digest §13). */
function xfrmAlgs(p: SaParams): string {
  const k = p.keys;
  if (p.ealg === 'aes-gcm') return `aead 'rfc4106(gcm(aes))' ${hex0x(keyAndSalt(k.ckEsp, k.salt))} 128`;
  if (p.alg === 'aes-gmac') return `aead 'rfc4543(gcm(aes))' ${hex0x(keyAndSalt(k.ikEsp, k.salt))} 128`;
  if (p.alg === 'null') throw new IpsecError('IPSEC_BAD_PARAMS', `alg=null is only valid with ealg=aes-gcm, got ealg=${p.ealg}`);
  const enc = p.ealg === 'null' ? `enc '${XFRM_ENC.null}' ''` : `enc '${XFRM_ENC[p.ealg]}' ${hex0x(k.ckEsp)}`;
  return `auth-trunc '${XFRM_AUTH[p.alg]}' ${hex0x(k.ikEsp)} 96 ${enc}`;
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
// Key lengths Wireshark accepts for the labels we map: AES-CBC 128 only (Annex I uses 128).
const ENC_KEY_LEN: Readonly<Record<EncryptionAlg, number>> = { null: 0, 'aes-cbc': 16, 'des-ede3-cbc': 24, 'aes-gcm': 20 };
const AUTH_KEY_LEN: Readonly<Record<IntegrityAlg, number>> = { null: 0, 'hmac-md5-96': 16, 'hmac-sha-1-96': 20, 'aes-gmac': 20 };

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
    const [proto, src, dst, spiText, encLabel, encKey, authLabel, authKey] = f as [string, string, string, string, string, string, string, string];
    if (proto !== 'IPv4' && proto !== 'IPv6') bad(line, `protocol must be IPv4 or IPv6, got ${JSON.stringify(proto)}`);
    const want = proto === 'IPv4' ? 4 : 6;
    for (const [name, a] of [['src', src], ['dst', dst]] as const) {
      if (a !== '*' && isIP(a) !== want) bad(line, `${name} must be an ${proto} address or *, got ${JSON.stringify(a)}`);
    }
    let spi: number | '*' = '*';
    if (spiText !== '*') {
      if (!/^(0x[0-9a-fA-F]{1,8}|[0-9]{1,10})$/.test(spiText)) bad(line, `SPI must be 0x… hex, decimal or *, got ${JSON.stringify(spiText)}`);
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
    const ck = key(encKey, 'encryption key', ENC_KEY_LEN[ealg]);
    const ik = key(authKey, 'authentication key', AUTH_KEY_LEN[alg]);
    let keys: EspKeys;
    if (ealg === 'aes-gcm') keys = { ckEsp: ck.slice(0, 16), ikEsp: ik, salt: ck.slice(16) };
    else if (alg === 'aes-gmac') keys = { ckEsp: ck, ikEsp: ik.slice(0, 16), salt: ik.slice(16) };
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
