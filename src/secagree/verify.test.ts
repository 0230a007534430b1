// Bidding-down protection: Security-Verify = Security-Server sent, Security-Client unchanged
// (33.203 Annex H; digest §5.6, §10.7, §18.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSecurityHeaderOrThrow } from './codec.ts';
import { verifySecurityClientUnchanged, verifySecurityVerify, type VerifyResult } from './verify.ts';
import type { SecAgreeCode } from './errors.ts';

const SENT = 'ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=4096;spi-s=4097;port-c=5062;port-s=5063;alg=hmac-sha-1-96;ealg=aes-cbc';
const CLIENT =
  'ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=1236;spi-s=1237;port-c=7004;port-s=7005, ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1236;spi-s=1237;port-c=7004;port-s=7005';

function mismatch(r: VerifyResult, code: SecAgreeCode, field: string, re: RegExp): void {
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.error.code, code);
  assert.equal(r.error.field, field);
  assert.match(r.error.message, re);
}

test('a verbatim Security-Verify matches', () => {
  assert.deepEqual(verifySecurityVerify(SENT, SENT), { ok: true });
  assert.deepEqual(verifySecurityVerify(SENT, parseSecurityHeaderOrThrow(SENT)), { ok: true });
});

test('given the text that went out, a verbatim copy is accepted as it is; any other text is still compared field by field', () => {
  const sent = parseSecurityHeaderOrThrow(SENT);
  // Proof that the copy is not parsed: with the text, an exact echo passes even when the parsed form says otherwise.
  assert.deepEqual(verifySecurityVerify([SENT], parseSecurityHeaderOrThrow(SENT.replace('4097', '4099')), SENT), { ok: true });
  assert.deepEqual(verifySecurityVerify(SENT, sent, SENT), { ok: true });
  const reordered = 'ipsec-3gpp;q=0.1;mod=trans;prot=esp;spi-c=4096;spi-s=4097;port-c=5062;port-s=5063;alg=hmac-sha-1-96;ealg=aes-cbc';
  assert.deepEqual(verifySecurityVerify([reordered], sent, SENT), { ok: true });
  mismatch(
    verifySecurityVerify([SENT.replace('4097', '4098')], sent, SENT),
    'SECAGREE_VERIFY_MISMATCH',
    'spi-s',
    /sent 4097, received 4098/,
  );
  assert.equal(verifySecurityVerify([SENT, SENT], sent, SENT).ok, false, 'two copies are not the one sent');
  assert.equal(verifySecurityVerify([], sent, SENT).ok, false, 'none is not the one sent');
});

test('Security-Verify is compared semantically: case, U+2011 hyphens, whitespace and parameter order do not matter', () => {
  const copy =
    ' IPSEC-3GPP ; EALG=AES-CBC;alg=hmac-sha-1-96 ; q=0.100;mod=TRANS;prot=esp;spi\u2011c=4096;spi-s=04097;port-c=5062;port-s=5063';
  assert.deepEqual(verifySecurityVerify(copy, SENT), { ok: true });
});

test('absent prot/mod/ealg equal their Annex H defaults esp/trans/null', () => {
  assert.deepEqual(
    verifySecurityVerify(
      'ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4',
      'ipsec-3gpp;q=0.1;prot=esp;mod=trans;alg=hmac-sha-1-96;ealg=null;spi-c=1;spi-s=2;port-c=3;port-s=4',
    ),
    { ok: true },
  );
});

test('Security-Verify with a changed ealg is a mismatch', () => {
  mismatch(
    verifySecurityVerify(SENT.replace('ealg=aes-cbc', 'ealg=null'), SENT),
    'SECAGREE_VERIFY_MISMATCH',
    'ealg',
    /Security-Verify mechanism 1: ealg differs: sent aes-cbc, received null/,
  );
});

test('Security-Verify with a changed alg, q, mod, SPI or port names that field', () => {
  mismatch(verifySecurityVerify(SENT.replace('hmac-sha-1-96', 'hmac-md5-96'), SENT), 'SECAGREE_VERIFY_MISMATCH', 'alg', /alg differs/);
  mismatch(verifySecurityVerify(SENT.replace('q=0.1', 'q=0.2'), SENT), 'SECAGREE_VERIFY_MISMATCH', 'q', /sent 0\.1, received 0\.2/);
  mismatch(verifySecurityVerify(SENT.replace(';q=0.1', ''), SENT), 'SECAGREE_VERIFY_MISMATCH', 'q', /received \(absent\)/);
  mismatch(verifySecurityVerify(SENT.replace('mod=trans', 'mod=UDP-enc-tun'), SENT), 'SECAGREE_VERIFY_MISMATCH', 'mod', /mod differs/);
  mismatch(
    verifySecurityVerify(SENT.replace('spi-s=4097', 'spi-s=4098'), SENT),
    'SECAGREE_VERIFY_MISMATCH',
    'spi-s',
    /sent 4097, received 4098/,
  );
  mismatch(verifySecurityVerify(SENT.replace('port-c=5062', 'port-c=5064'), SENT), 'SECAGREE_VERIFY_MISMATCH', 'port-c', /port-c differs/);
  mismatch(verifySecurityVerify(`${SENT};x=1`, SENT), 'SECAGREE_VERIFY_MISMATCH', 'extensions', /sent \(none\), received x=1/);
});

test('Security-Verify with an entry added, removed or reordered is a mismatch', () => {
  const two = `${SENT}, ${SENT.replace('q=0.1', 'q=0.2').replace('aes-cbc', 'null')}`;
  mismatch(verifySecurityVerify(SENT, two), 'SECAGREE_VERIFY_MISMATCH', 'mechanism count', /sent 2, received 1/);
  mismatch(verifySecurityVerify(two, SENT), 'SECAGREE_VERIFY_MISMATCH', 'mechanism count', /sent 1, received 2/);
  const swapped = two.split(', ').reverse();
  mismatch(verifySecurityVerify(swapped, two), 'SECAGREE_VERIFY_MISMATCH', 'q', /mechanism 1: q differs/);
  mismatch(verifySecurityVerify(`tls;q=0.1`, SENT), 'SECAGREE_VERIFY_MISMATCH', 'name', /sent ipsec-3gpp, received tls/);
});

test('an unparsable Security-Verify is a mismatch, not a throw', () => {
  mismatch(
    verifySecurityVerify(SENT.replace('spi-c=4096', 'spi-c=0'), SENT),
    'SECAGREE_VERIFY_MISMATCH',
    'spi-c',
    /does not parse .*spi-c/,
  );
});

test('the Security-Client of the protected REGISTER may be split differently but not changed', () => {
  assert.deepEqual(verifySecurityClientUnchanged(CLIENT, CLIENT.split(', ')), { ok: true });
  mismatch(
    verifySecurityClientUnchanged(CLIENT, CLIENT.replaceAll('spi-c=1236', 'spi-c=1238')),
    'SECAGREE_CLIENT_CHANGED',
    'spi-c',
    /Security-Client mechanism 1: spi-c differs: first 1236, now 1238/,
  );
  mismatch(
    verifySecurityClientUnchanged(CLIENT, CLIENT.split(', ')[1]!),
    'SECAGREE_CLIENT_CHANGED',
    'alg',
    /first hmac-md5-96, now hmac-sha-1-96/,
  );
});

test('Security-Client that dropped its weaker entry (bidding down by removal) is a change', () => {
  mismatch(verifySecurityClientUnchanged(CLIENT, CLIENT.split(', ')[0]!), 'SECAGREE_CLIENT_CHANGED', 'mechanism count', /first 2, now 1/);
});
