// Digest AKA on SIP: RFC 3310 (AKAv1-MD5) and RFC 4169 (AKAv2-MD5) on top of RFC 2617 Digest.
// nonce = base64(RAND ‖ AUTN ‖ server data); the password is RES as raw octets (v1) or
// base64(HMAC-MD5(RES ‖ IK ‖ CK, "http-digest-akav2-password")) (v2); empty for resync (§3.4).
import * as crypto from 'node:crypto';
import { createHash, createHmac } from 'node:crypto';
import { concatBytes, equalBytes, fromBase64, toBase64 } from '../util/bytes.ts';
import { akaInputError, checkLen } from './errors.ts';
import { InputError } from '../util/errors.ts';
import { attempt, type Result } from '../util/result.ts';
import { AUTN_LEN, AUTS_LEN } from './hss.ts';
import { KEY_LEN, RAND_LEN } from './milenage.ts';

/** The Digest AKA algorithms: AKAv1-MD5 (RFC 3310, password = RES) and AKAv2-MD5 (RFC 4169, password from RES, IK and CK). */
export const AKA_ALGORITHMS = ['AKAv1-MD5', 'AKAv2-MD5'] as const;
/** One of {@link AKA_ALGORITHMS}. */
export type AkaAlgorithm = (typeof AKA_ALGORITHMS)[number];

/** Case-insensitive match of an `algorithm` value (RFC 2617 tokens) to a supported AKA algorithm. */
export function parseAkaAlgorithm(s: string): AkaAlgorithm {
  const found = AKA_ALGORITHMS.find((a) => a.toLowerCase() === s.toLowerCase());
  if (!found) throw akaInputError('algorithm', `unsupported: ${JSON.stringify(s.slice(0, 40))} (supported: ${AKA_ALGORITHMS.join(', ')})`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// nonce (RFC 3310 §3.2)

/** base64(RAND ‖ AUTN ‖ serverData). */
export function buildNonce(rand: Uint8Array, autn: Uint8Array, serverData: Uint8Array = new Uint8Array(0)): string {
  checkLen(rand, RAND_LEN, 'rand');
  checkLen(autn, AUTN_LEN, 'autn');
  return toBase64(concatBytes(rand, autn, serverData));
}

/** Splits a nonce from the wire: RAND = octets 0..15, AUTN = 16..31, the rest server data. A result (issue 12 §4). */
export function parseNonce(b64: string): Result<{ rand: Uint8Array; autn: Uint8Array; serverData: Uint8Array }, InputError> {
  return attempt(InputError, () => parseNonceOrThrow(b64));
}

/** parseNonce for trusted input (tests, fixtures): throws InputError (AKA_BAD_INPUT). */
export function parseNonceOrThrow(b64: string): { rand: Uint8Array; autn: Uint8Array; serverData: Uint8Array } {
  const raw = fromBase64(b64, 'nonce');
  const min = RAND_LEN + AUTN_LEN;
  if (raw.length < min) throw akaInputError('nonce', `must decode to at least ${min} octets (RAND ‖ AUTN), got ${raw.length}`);
  return { rand: raw.slice(0, 16), autn: raw.slice(16, 32), serverData: raw.slice(32) };
}

/** auts="…" (RFC 3310 §3.4) from the wire: base64 of the 14-octet AUTS. A result (issue 12 §4). */
export function parseAuts(b64: string): Result<Uint8Array, InputError> {
  return attempt(InputError, () => parseAutsOrThrow(b64));
}

/** parseAuts for trusted input (tests, fixtures): throws InputError (AKA_BAD_INPUT). */
export function parseAutsOrThrow(b64: string): Uint8Array {
  const raw = fromBase64(b64, 'auts');
  if (raw.length !== AUTS_LEN) throw akaInputError('auts', `must decode to ${AUTS_LEN} octets, got ${raw.length}`);
  return raw;
}

// ---------------------------------------------------------------------------------------------
// password and response (RFC 2617 §3.2.2)

const AKAV2_LABEL = 'http-digest-akav2-password';

/**
 * The Digest password as octets. An empty RES gives the empty password (sync failure, RFC 3310
 * §3.4; used for both algorithms). v1: RES itself, binary, may hold 0x00 (pitfall 6).
 * v2: the ASCII of base64(HMAC-MD5(key = RES ‖ IK ‖ CK, "http-digest-akav2-password")).
 */
export function akaPassword(algorithm: AkaAlgorithm, res: Uint8Array, ik?: Uint8Array, ck?: Uint8Array): Uint8Array {
  if (res.length === 0) return new Uint8Array(0);
  if (algorithm === 'AKAv1-MD5') return res.slice();
  if (ik === undefined || ck === undefined) throw akaInputError('ik/ck', 'AKAv2-MD5 needs IK and CK');
  checkLen(ik, KEY_LEN, 'ik');
  checkLen(ck, KEY_LEN, 'ck');
  const key = concatBytes(res, ik, ck);
  const mac = createHmac('md5', key).update(AKAV2_LABEL).digest();
  key.fill(0);
  const pw = new TextEncoder().encode(mac.toString('base64'));
  mac.fill(0);
  return pw;
}

/** The parameters of one Digest AKA response computation (RFC 2617 §3.2.2 with the AKA password). */
export interface DigestInput {
  readonly username: string;
  readonly realm: string;
  /** digest-uri, e.g. sip:ims.mnc001.mcc001.3gppnetwork.org */
  readonly uri: string;
  /** The nonce string exactly as in the challenge. */
  readonly nonce: string;
  /** SIP method (REGISTER). */
  readonly method: string;
  readonly algorithm: AkaAlgorithm;
  /** RES (or XRES on the S-CSCF); empty for the sync-failure response. */
  readonly res: Uint8Array;
  /** IK and CK: needed by AKAv2-MD5 only. */
  readonly ik?: Uint8Array;
  readonly ck?: Uint8Array;
  /** 'auth' or 'auth-int'; absent: the RFC 2069-compatible form without qop. */
  readonly qop?: 'auth' | 'auth-int';
  /** 8 hex digits, with qop. */
  readonly nc?: string;
  readonly cnonce?: string;
  /** Message body for qop=auth-int (default empty). */
  readonly body?: Uint8Array;
}

const NC_RE = /^[0-9a-fA-F]{8}$/;

// crypto.hash (Node ≥ 20.12): one call, no Hash object per digest; createHash where it is missing.
const oneShot = (crypto as { hash?: (alg: string, data: string | Uint8Array, enc: 'hex') => string }).hash;

function md5Hex(...parts: (string | Uint8Array)[]): string {
  if (oneShot && parts.length === 1 && typeof parts[0] === 'string') return oneShot('md5', parts[0], 'hex');
  if (oneShot) {
    // Strings are hashed as UTF-8, as Hash.update does.
    if (parts.every((p) => typeof p === 'string')) return oneShot('md5', parts.join(''), 'hex');
    const data = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    const hex = oneShot('md5', data, 'hex');
    data.fill(0); // it holds the password (RES, or RES ‖ IK ‖ CK for AKAv2)
    return hex;
  }
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** HA1 = MD5(username ":" realm ":" password), password as octets (RFC 2617 §3.2.2.2). Lowercase hex. */
export function digestHa1(username: string, realm: string, password: Uint8Array): string {
  if (!oneShot) return md5Hex(username, ':', realm, ':', password);
  // One buffer for `username:realm:` ‖ password (not one Buffer per part), wiped after: it holds the password.
  const head = `${username}:${realm}:`;
  const n = Buffer.byteLength(head);
  const data = Buffer.alloc(n + password.length);
  data.write(head, 0);
  data.set(password, n);
  const hex = oneShot('md5', data, 'hex');
  data.fill(0);
  return hex;
}

const NO_BODY = new Uint8Array(0);
// HA2 without auth-int depends on method and uri only: the S-CSCF checks every REGISTER against the same
// `REGISTER:sip:<domain>`, and a UE answers with it too. The last one is kept (public values, no secret).
let ha2Text = '';
let ha2Hex = '';

/** HA2 = MD5(method ":" uri) or, for auth-int, MD5(method ":" uri ":" MD5(body)) (RFC 2617 §3.2.2.3). */
export function digestHa2(method: string, uri: string, qop?: 'auth' | 'auth-int', body: Uint8Array = NO_BODY): string {
  if (qop === 'auth-int') return md5Hex(method, ':', uri, ':', md5Hex(body));
  const text = `${method}:${uri}`;
  if (text !== ha2Text) {
    ha2Hex = md5Hex(text);
    ha2Text = text;
  }
  return ha2Hex;
}

/** The Digest `response` value, lowercase hex (RFC 2617 §3.2.2.1). HA1 is built from octets, never a string. */
export function digestResponse(d: DigestInput): string {
  if (d.qop !== undefined) {
    if (d.qop !== 'auth' && d.qop !== 'auth-int')
      throw akaInputError('qop', `must be auth or auth-int, got ${JSON.stringify(String(d.qop))}`);
    if (d.nc === undefined || !NC_RE.test(d.nc)) throw akaInputError('nc', 'must be 8 hex digits when qop is given');
    if (d.cnonce === undefined) throw akaInputError('cnonce', 'required when qop is given');
  }
  const password = akaPassword(d.algorithm, d.res, d.ik, d.ck);
  const ha1 = digestHa1(d.username, d.realm, password);
  password.fill(0);
  const ha2 = digestHa2(d.method, d.uri, d.qop, d.body);
  // One string per hash (no parts array joined); strings are hashed as UTF-8 either way.
  if (d.qop === undefined) return md5Hex(`${ha1}:${d.nonce}:${ha2}`);
  return md5Hex(`${ha1}:${d.nonce}:${d.nc!}:${d.cnonce!}:${d.qop}:${ha2}`);
}

const utf8 = new TextEncoder();

/**
 * S-CSCF side: recomputes the response from XRES (or the empty password for a resync request)
 * and compares in constant time. Hex case is ignored; a malformed `response` is simply false.
 */
export function verifyDigestResponse(d: DigestInput & { readonly response: string }): boolean {
  const expected = utf8.encode(digestResponse(d));
  const got = utf8.encode(d.response.toLowerCase());
  return equalBytes(expected, got);
}
