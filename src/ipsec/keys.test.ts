// Annex I against the computed vectors of test-vectors.md §5 (inputs: TS 35.208 Test Set 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandKeys, kdf } from './keys.ts';
import { fromHex, toHex } from '../util/bytes.ts';

const CK = fromHex('b40ba9a3c58b2a05bbf0d987b21bf8cb');
const IK = fromHex('f769bcd751044604127672711c6d3441');

test('hmac-md5-96: IK_ESP = IK_IM', () => {
  assert.equal(toHex(expandKeys(IK, CK, 'hmac-md5-96', 'null').ikEsp), 'f769bcd751044604127672711c6d3441');
});

test('hmac-sha-1-96: IK_ESP = IK_IM ‖ 00000000 (20 octets)', () => {
  assert.equal(toHex(expandKeys(IK, CK, 'hmac-sha-1-96', 'aes-cbc').ikEsp), 'f769bcd751044604127672711c6d344100000000');
});

test('aes-cbc: CK_ESP = CK_IM', () => {
  assert.equal(toHex(expandKeys(IK, CK, 'hmac-sha-1-96', 'aes-cbc').ckEsp), 'b40ba9a3c58b2a05bbf0d987b21bf8cb');
});

test('des-ede3-cbc: CK_ESP = CK1 ‖ CK2 ‖ CK1 without parity adjustment', () => {
  assert.equal(toHex(expandKeys(IK, CK, 'hmac-md5-96', 'des-ede3-cbc').ckEsp), 'b40ba9a3c58b2a05bbf0d987b21bf8cbb40ba9a3c58b2a05');
});

test('aes-gcm: CK_ESP = CK_IM, salt = last 4 octets of KDF(CK‖IK, 0x59, "AES_GCM_SALT")', () => {
  const k = expandKeys(IK, CK, 'null', 'aes-gcm');
  assert.equal(toHex(k.ckEsp), 'b40ba9a3c58b2a05bbf0d987b21bf8cb');
  assert.equal(toHex(k.salt!), '89273db6');
  assert.equal(k.ikEsp.length, 0);
});

test('aes-gmac: IK_ESP = IK_IM, salt = last 4 octets of KDF(CK‖IK, 0x58, "AES_GMAC_SALT")', () => {
  const k = expandKeys(IK, CK, 'aes-gmac', 'null');
  assert.equal(toHex(k.ikEsp), 'f769bcd751044604127672711c6d3441');
  assert.equal(toHex(k.salt!), 'dbc2b1c2');
});

test('KDF full outputs match the digest debugging values', () => {
  const key = new Uint8Array([...CK, ...IK]);
  assert.equal(
    toHex(kdf(key, 0x59, new TextEncoder().encode('AES_GCM_SALT'))),
    '990208b8e98def9647b3267bbc4fb85ba56472b9fe616bae6ed8e3d589273db6',
  );
  assert.equal(
    toHex(kdf(key, 0x58, new TextEncoder().encode('AES_GMAC_SALT'))),
    'de2d8fa4a81e8872bed63550622ea1e4b741f4e0ef633fa3ecbf4e12dbc2b1c2',
  );
});

test('rejects wrong key lengths and invalid pairs with a named error', () => {
  assert.throws(() => expandKeys(IK.subarray(0, 15), CK, 'hmac-md5-96', 'null'), /ik: must be 16 octets/);
  assert.throws(() => expandKeys(IK, CK, 'null', 'aes-cbc'), /alg=null cannot be combined with ealg=aes-cbc/);
  assert.throws(() => expandKeys(IK, CK, 'hmac-sha-1-96', 'aes-gcm'), /cannot be combined/);
});

test('the expanded keys are copies: wiping a Buffer input does not change them', () => {
  const ik = Buffer.from(IK);
  const ck = Buffer.from(CK);
  const k = expandKeys(ik, ck, 'hmac-md5-96', 'aes-cbc');
  ik.fill(0);
  ck.fill(0);
  assert.equal(toHex(k.ikEsp), 'f769bcd751044604127672711c6d3441');
  assert.equal(toHex(k.ckEsp), 'b40ba9a3c58b2a05bbf0d987b21bf8cb');
});
