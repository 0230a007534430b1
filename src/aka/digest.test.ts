// Digest AKA (RFC 3310 AKAv1-MD5, RFC 4169 AKAv2-MD5, RFC 2617) against test-vectors §6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  akaPassword,
  buildNonce,
  digestHa1,
  digestHa2,
  digestResponse,
  parseAkaAlgorithm,
  parseAuts,
  parseAutsOrThrow,
  parseNonce,
  parseNonceOrThrow,
  verifyDigestResponse,
  type DigestInput,
} from './digest.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';

// test-vectors §6 (Test Set 1 AV).
const RAND = fromHex('23553cbe9637a89d218ae64dae47bf35');
const AUTN = fromHex('55f328b43577b9b94a9ffac354dfafb3');
const RES = fromHex('a54211d5e3ba50bf');
const CK = fromHex('b40ba9a3c58b2a05bbf0d987b21bf8cb');
const IK = fromHex('f769bcd751044604127672711c6d3441');
const NONCE = 'I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=';
const REALM = 'ims.mnc001.mcc001.3gppnetwork.org';
const BASE: DigestInput = {
  username: '001010123456789@ims.mnc001.mcc001.3gppnetwork.org',
  realm: REALM,
  uri: `sip:${REALM}`,
  nonce: NONCE,
  method: 'REGISTER',
  algorithm: 'AKAv1-MD5',
  res: RES,
};

test('§6 nonce = base64(RAND ‖ AUTN), 44 characters, and parses back', () => {
  assert.equal(buildNonce(RAND, AUTN), NONCE);
  const p = parseNonceOrThrow(NONCE);
  assert.equal(toHex(p.rand), toHex(RAND));
  assert.equal(toHex(p.autn), toHex(AUTN));
  assert.equal(p.serverData.length, 0);
});

test('nonce: octets after RAND ‖ AUTN are server data, kept apart', () => {
  const p = parseNonceOrThrow(buildNonce(RAND, AUTN, fromHex('cafe')));
  assert.equal(toHex(p.autn), toHex(AUTN));
  assert.equal(toHex(p.serverData), 'cafe');
});

test('nonce shorter than 32 octets or not base64 is an InputError', () => {
  assert.throws(() => parseNonceOrThrow(Buffer.alloc(31).toString('base64')), /nonce: must decode to at least 32 octets .* got 31/);
  assert.throws(() => parseNonceOrThrow('not*base64'), InputError);
});

test('§6 HA1 = MD5(username:realm:RES as 8 raw octets)', () => {
  assert.equal(digestHa1(BASE.username, REALM, RES), 'f60d80ec8e2d1a282660eb89c54379ab');
});

test('§6 HA2 = MD5("REGISTER:" uri)', () => {
  assert.equal(digestHa2('REGISTER', BASE.uri), 'df94ff42c4e05afeddd46c372e8208b4');
});

test('§6 AKAv1-MD5 response without qop', () => {
  assert.equal(digestResponse(BASE), '486f3ee163ac4a424493c7ee626d3794');
});

test('§6 AKAv1-MD5 response with qop=auth, nc=00000001, cnonce=0a4f113b', () => {
  assert.equal(digestResponse({ ...BASE, qop: 'auth', nc: '00000001', cnonce: '0a4f113b' }), 'cbefdcc54c81aa658d67da2fba29638c');
});

test('§6 AKAv2 password = base64(HMAC-MD5(RES ‖ IK ‖ CK, "http-digest-akav2-password"))', () => {
  assert.equal(new TextDecoder().decode(akaPassword('AKAv2-MD5', RES, IK, CK)), 'shzt3q8CWaZnCAWqs3WmEQ==');
});

test('§6 AKAv2-MD5 HA1 uses the password as ASCII', () => {
  assert.equal(digestHa1(BASE.username, REALM, akaPassword('AKAv2-MD5', RES, IK, CK)), '86fcc5a6c1cb0f7b6249c59d8d55b1b3');
});

test('§6 AKAv2-MD5 response without qop', () => {
  assert.equal(digestResponse({ ...BASE, algorithm: 'AKAv2-MD5', ik: IK, ck: CK }), '8975deb6a8bfc100292443870426e9f8');
});

test('§6 sync failure: the empty password gives HA1 = MD5(username:realm:)', () => {
  assert.equal(digestHa1(BASE.username, REALM, akaPassword('AKAv1-MD5', new Uint8Array(0))), 'cc00ee7c4d398292d1404b35c3df292e');
});

test('§6 sync failure: empty-password response without qop, for AKAv1 and AKAv2 alike', () => {
  const empty = new Uint8Array(0);
  assert.equal(digestResponse({ ...BASE, res: empty }), '180933893eb8c4519e87ae2c9d5a1955');
  assert.equal(digestResponse({ ...BASE, res: empty, algorithm: 'AKAv2-MD5' }), '180933893eb8c4519e87ae2c9d5a1955');
});

test('RES is a binary password: octets 0x00 and ≥0x80 enter HA1 as they are, not as text', () => {
  const res = fromHex('00ff0080a5000001');
  const expected = createHash('md5')
    .update(Buffer.concat([Buffer.from('u:r:'), res]))
    .digest('hex');
  assert.equal(digestHa1('u', 'r', akaPassword('AKAv1-MD5', res)), expected);
  // doubango's C-string bug would cut RES at the first 0x00, i.e. give the empty password here.
  assert.notEqual(digestHa1('u', 'r', res), digestHa1('u', 'r', new Uint8Array(0)));
});

test('AKAv2 without IK/CK, qop without nc/cnonce, or a bad nc is an InputError', () => {
  assert.throws(() => digestResponse({ ...BASE, algorithm: 'AKAv2-MD5' }), /ik\/ck: AKAv2-MD5 needs IK and CK/);
  assert.throws(() => digestResponse({ ...BASE, qop: 'auth', cnonce: 'x' }), /nc: must be 8 hex digits/);
  assert.throws(() => digestResponse({ ...BASE, qop: 'auth', nc: '1', cnonce: 'x' }), /nc: must be 8 hex digits/);
  assert.throws(() => digestResponse({ ...BASE, qop: 'auth', nc: '00000001' }), /cnonce: required/);
});

test('qop=auth-int hashes the body into HA2', () => {
  const a = digestResponse({ ...BASE, qop: 'auth-int', nc: '00000001', cnonce: 'c', body: fromHex('00') });
  const b = digestResponse({ ...BASE, qop: 'auth-int', nc: '00000001', cnonce: 'c' });
  assert.notEqual(a, b);
  assert.equal(digestHa2('REGISTER', 'sip:x', 'auth-int'), digestHa2('REGISTER', 'sip:x', 'auth-int', new Uint8Array(0)));
});

test('S-CSCF: verifyDigestResponse accepts the right response (any hex case) and refuses others', () => {
  assert.equal(verifyDigestResponse({ ...BASE, response: '486f3ee163ac4a424493c7ee626d3794' }), true);
  assert.equal(verifyDigestResponse({ ...BASE, response: '486F3EE163AC4A424493C7EE626D3794' }), true);
  assert.equal(verifyDigestResponse({ ...BASE, response: '486f3ee163ac4a424493c7ee626d3795' }), false);
  assert.equal(verifyDigestResponse({ ...BASE, response: '' }), false, 'the empty response of a MAC failure');
  assert.equal(verifyDigestResponse({ ...BASE, res: new Uint8Array(0), response: '180933893eb8c4519e87ae2c9d5a1955' }), true);
});

test('the response always is 32 lowercase hex digits', () => {
  fc.assert(
    fc.property(fc.string(), fc.uint8Array({ maxLength: 16 }), (user, res) =>
      /^[0-9a-f]{32}$/.test(digestResponse({ ...BASE, username: user, res })),
    ),
  );
});

test('algorithm names match case-insensitively; others are refused', () => {
  assert.equal(parseAkaAlgorithm('akav1-md5'), 'AKAv1-MD5');
  assert.equal(parseAkaAlgorithm('AKAv2-MD5'), 'AKAv2-MD5');
  assert.throws(() => parseAkaAlgorithm('MD5'), InputError);
});

test('auts="…" decodes to 14 octets (test-vectors §2 A1) and nothing else', () => {
  assert.equal(toHex(parseAutsOrThrow('TyA5OS3dS7QxbtShRog=')), '4f2039392ddd4bb4316ed4a14688');
  assert.throws(() => parseAutsOrThrow('TyA5OS3dS7QxbtShRg=='), /auts: must decode to 14 octets, got 13/);
});

test('issue 12 §4: parseNonce and parseAuts return results with AKA_BAD_INPUT, never a throw', () => {
  const n = parseNonce('AAAA');
  assert.ok(!n.ok);
  assert.equal(n.error.code, 'AKA_BAD_INPUT');
  const a = parseAuts('AAECAwQFBgcICQoLDA0=');
  assert.ok(a.ok);
  assert.equal(a.value.length, 14);
  assert.equal(parseAuts('***').ok, false);
});
