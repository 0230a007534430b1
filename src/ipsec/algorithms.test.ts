// The algorithm table against what the code built from it really does: expandKeys' key lengths,
// the transforms' IV / ICV / block sizes, and the sec-agree tokens round-tripping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allValidPairs,
  ENCRYPTION,
  ENCRYPTION_ALGS,
  encryptionAlgOfToken,
  encryptionInfo,
  INTEGRITY,
  INTEGRITY_ALGS,
  integrityAlgOfToken,
  integrityInfo,
  SALT_LEN,
} from './algorithms.ts';
import { createTransform } from './esp/transform.ts';
import { expandKeys } from './keys.ts';

const IK = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const CK = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 - i);

test("every valid pair: expandKeys and the transform have the table's sizes", () => {
  for (const { alg, ealg } of allValidPairs()) {
    const i = integrityInfo(alg);
    const e = encryptionInfo(ealg);
    const k = expandKeys(IK, CK, alg, ealg);
    assert.equal(k.ikEsp.length, i.keyLen, `${alg}/${ealg} IK_ESP`);
    assert.equal(k.ckEsp.length, e.keyLen, `${alg}/${ealg} CK_ESP`);
    assert.equal(k.salt?.length, i.salt || e.salt ? SALT_LEN : undefined, `${alg}/${ealg} salt`);
    const t = createTransform(alg, ealg, k);
    assert.equal(t.icvLen, Math.max(i.icvLen, e.icvLen), `${alg}/${ealg} ICV`);
    assert.equal(t.ivLen, Math.max(i.ivLen, e.ivLen), `${alg}/${ealg} IV`);
    assert.equal(t.blockLen, e.blockLen, `${alg}/${ealg} block`);
  }
});

test('Annex I rules: copy, IK ‖ 0^32, K1 ‖ K2 ‖ K1', () => {
  const sha = expandKeys(IK, CK, 'hmac-sha-1-96', 'des-ede3-cbc');
  assert.deepEqual(sha.ikEsp, Uint8Array.from([...IK, 0, 0, 0, 0]));
  assert.deepEqual(sha.ckEsp, Uint8Array.from([...CK, ...CK.subarray(0, 8)]));
  const md5 = expandKeys(IK, CK, 'hmac-md5-96', 'aes-cbc');
  assert.deepEqual(md5.ikEsp, IK);
  assert.deepEqual(md5.ckEsp, CK);
  assert.notEqual(md5.ikEsp.buffer, IK.buffer, 'a copy, never a view');
});

test('tokens: each algorithm has one, found back case-insensitively; unknown tokens are undefined', () => {
  for (const a of INTEGRITY_ALGS) assert.equal(integrityAlgOfToken(INTEGRITY[a].token.toUpperCase()), a);
  for (const e of ENCRYPTION_ALGS) assert.equal(encryptionAlgOfToken(ENCRYPTION[e].token), e);
  assert.equal(integrityAlgOfToken('hmac-sha-256-128'), undefined);
  assert.equal(encryptionAlgOfToken('aes-ctr'), undefined);
});

test('HMACs and AEADs: an HMAC-96 truncates to 96 bits; an AEAD ICV is 128 bits in XFRM', () => {
  for (const a of INTEGRITY_ALGS) {
    const i = integrityInfo(a);
    if (i.xfrm.kind === 'auth') assert.equal(i.xfrm.truncBits, i.icvLen * 8, a);
    if (i.xfrm.kind === 'aead') assert.equal(i.xfrm.icvBits, i.icvLen * 8, a);
    assert.equal(i.hmac !== undefined, i.xfrm.kind === 'auth', `${a}: an XFRM auth algorithm is an HMAC`);
  }
  for (const e of ENCRYPTION_ALGS) {
    const x = encryptionInfo(e);
    if (x.xfrm.kind === 'aead') assert.equal(x.xfrm.icvBits, x.icvLen * 8, e);
  }
});
