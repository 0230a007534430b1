// P-CSCF algorithm policy: defaults, deprecated pairs, the alg/ealg list syntax (digest §12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ALLOW, parseAlgPairList, resolveAllowList } from './policy.ts';
import { SecAgreeError } from './errors.ts';

test('the default allow list is sha1/aes-cbc, sha1/null, null/aes-gcm, aes-gmac/null, without deprecated pairs', () => {
  assert.deepEqual(resolveAllowList().allow, DEFAULT_ALLOW);
  assert.deepEqual(
    resolveAllowList({}).allow.map((p) => `${p.alg}/${p.ealg}`),
    ['hmac-sha-1-96/aes-cbc', 'hmac-sha-1-96/null', 'null/aes-gcm', 'aes-gmac/null'],
  );
});

test('allowDeprecated appends hmac-md5-96 and des-ede3-cbc pairs after the default ones', () => {
  const { allow } = resolveAllowList({ allowDeprecated: true });
  assert.equal(allow.length, 8);
  assert.deepEqual(allow.slice(0, 4), DEFAULT_ALLOW);
  assert.ok(allow.slice(4).every((p) => p.alg === 'hmac-md5-96' || p.ealg === 'des-ede3-cbc'));
});

test('deprecated pairs in an explicit list are disabled unless allowDeprecated', () => {
  const list = parseAlgPairList('hmac-md5-96/null,hmac-sha-1-96/null');
  assert.deepEqual(resolveAllowList({ allow: list }), { allow: [list[1]], disabled: [list[0]] });
  assert.deepEqual(resolveAllowList({ allow: list, allowDeprecated: true }).allow, list);
});

test('parses alg/ealg lists with whitespace and case, "alg" alone meaning ealg=null', () => {
  assert.deepEqual(parseAlgPairList(' HMAC-SHA-1-96 / aes-cbc , hmac-sha-1-96'), [
    { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' },
    { alg: 'hmac-sha-1-96', ealg: 'null' },
  ]);
});

test('rejects unknown names, invalid pairs and empty items with SECAGREE_BAD_POLICY naming the item', () => {
  for (const [text, re] of [
    ['hmac-sha-256/null', /"hmac-sha-256\/null" is not alg\/ealg with known names/],
    ['null/aes-cbc', /alg=null cannot be combined with ealg=aes-cbc/],
    ['hmac-sha-1-96/aes-gcm', /cannot be combined/],
    ['hmac-sha-1-96/null,', /empty item/],
    ['a/b/c', /not alg\/ealg/],
  ] as const) {
    assert.throws(
      () => parseAlgPairList(text),
      (e: unknown) => e instanceof SecAgreeError && e.code === 'SECAGREE_BAD_POLICY' && re.test(e.message),
    );
  }
  assert.throws(() => resolveAllowList({ allow: [{ alg: 'aes-gmac', ealg: 'aes-cbc' }] }), /not a valid alg\/ealg pair/);
});
