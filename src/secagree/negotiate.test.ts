// P-CSCF negotiation rules (33.203 §7.2, Annex H, Annex M; digest §5.4, §10.6, §15A.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSecurityHeaderOrThrow, serializeMechanism } from './codec.ts';
import { buildSecurityServer, negotiate, type NegotiationResult } from './negotiate.ts';
import { SecAgreeError, type SecAgreeCode } from './errors.ts';

const SPIS = 'spi-c=1236;spi-s=1237;port-c=7004;port-s=7005';
const client = (...entries: string[]) =>
  parseSecurityHeaderOrThrow(entries.map((e) => `ipsec-3gpp;${e};${SPIS}`).join(', '), 'Security-Client');
const NO_NAT = { natDetected: false };
const NAT = { natDetected: true };

function chosen(r: NegotiationResult): string {
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return `${r.alg}/${r.ealg}/${r.mod}`;
}
function failed(r: NegotiationResult, code: SecAgreeCode, re: RegExp): void {
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.error.code, code);
  assert.match(r.error.message, re);
}

test('Kamailio-issue offer (md5/null, sha1/null): picks hmac-sha-1-96/null and the UE SPIs and ports', () => {
  const r = negotiate(client('alg=hmac-md5-96;ealg=null', 'alg=hmac-sha-1-96;ealg=null'), {}, NO_NAT);
  assert.deepEqual(r, {
    ok: true,
    alg: 'hmac-sha-1-96',
    ealg: 'null',
    mod: 'trans',
    client: { spiC: 1236, spiS: 1237, portC: 7004, portS: 7005 },
    index: 1,
  });
});

test('the Security-Server built from the choice is the Kamailio-style value of digest §4.3', () => {
  const r = negotiate(client('alg=hmac-sha-1-96;ealg=aes-cbc'), {}, NO_NAT);
  assert.ok(r.ok);
  const server = buildSecurityServer(r, { spiC: 4096, spiS: 4097, portC: 5062, portS: 5063 });
  assert.equal(
    serializeMechanism(server),
    'ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=4096;spi-s=4097;port-c=5062;port-s=5063;alg=hmac-sha-1-96;ealg=aes-cbc',
  );
  assert.throws(() => buildSecurityServer(r, { spiC: 0, spiS: 1, portC: 1, portS: 1 }), /Security-Server spi-c/);
});

test('follows the policy order, not the client order (default: sha1/aes-cbc first)', () => {
  assert.equal(
    chosen(negotiate(client('alg=hmac-sha-1-96;ealg=null', 'alg=hmac-sha-1-96;ealg=aes-cbc'), {}, NO_NAT)),
    'hmac-sha-1-96/aes-cbc/trans',
  );
  const policy = {
    allow: [
      { alg: 'null', ealg: 'aes-gcm' },
      { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' },
    ],
  } as const;
  assert.equal(chosen(negotiate(client('alg=hmac-sha-1-96;ealg=aes-cbc', 'alg=null;ealg=aes-gcm'), policy, NO_NAT)), 'null/aes-gcm/trans');
});

test('never picks an algorithm the client did not offer', () => {
  failed(
    negotiate(client('alg=hmac-md5-96;ealg=des-ede3-cbc'), {}, NO_NAT),
    'SECAGREE_NO_COMMON_ALG',
    /offered: hmac-md5-96\/des-ede3-cbc/,
  );
});

test('deprecated pairs (hmac-md5-96, des-ede3-cbc) only when allowDeprecated, and the error says they were disabled', () => {
  const offer = client('alg=hmac-md5-96;ealg=null');
  failed(negotiate(offer, {}, NO_NAT), 'SECAGREE_NO_COMMON_ALG', /no acceptable alg\/ealg/);
  failed(
    negotiate(offer, { allow: [{ alg: 'hmac-md5-96', ealg: 'null' }] }, NO_NAT),
    'SECAGREE_NO_COMMON_ALG',
    /deprecated pairs disabled by policy: hmac-md5-96\/null/,
  );
  assert.equal(chosen(negotiate(offer, { allowDeprecated: true }, NO_NAT)), 'hmac-md5-96/null/trans');
  assert.equal(
    chosen(negotiate(client('alg=hmac-md5-96;ealg=null', 'alg=hmac-sha-1-96;ealg=null'), { allowDeprecated: true }, NO_NAT)),
    'hmac-sha-1-96/null/trans',
  );
});

test('an absent ealg is negotiated as null', () => {
  assert.equal(chosen(negotiate(client('alg=hmac-sha-1-96'), {}, NO_NAT)), 'hmac-sha-1-96/null/trans');
});

test('skips unknown algorithm names and pairs isValidPair refuses', () => {
  failed(
    negotiate(
      client('alg=hmac-sha-256-128;ealg=aes-cbc', 'alg=null;ealg=aes-cbc', 'alg=aes-gmac;ealg=aes-cbc'),
      { allow: [{ alg: 'hmac-sha-1-96', ealg: 'aes-cbc' }] },
      NO_NAT,
    ),
    'SECAGREE_NO_COMMON_ALG',
    /offered:/,
  );
  assert.equal(
    chosen(negotiate(client('alg=hmac-sha-256-128;ealg=aes-256-gcm', 'alg=aes-gmac;ealg=null'), {}, NO_NAT)),
    'aes-gmac/null/trans',
  );
});

test('only ipsec-3gpp with prot=esp is chosen (prot=ah and tls are skipped)', () => {
  const ms = parseSecurityHeaderOrThrow(
    `tls;q=0.9, ipsec-3gpp;prot=ah;alg=hmac-sha-1-96;ealg=aes-cbc;${SPIS}, ipsec-3gpp;prot=esp;alg=hmac-sha-1-96;ealg=null;${SPIS}`,
  );
  const r = negotiate(ms, {}, NO_NAT);
  assert.equal(chosen(r), 'hmac-sha-1-96/null/trans');
  assert.equal(r.ok && r.index, 2);
  failed(negotiate(parseSecurityHeaderOrThrow('tls;q=0.5, digest'), {}, NO_NAT), 'SECAGREE_NO_COMMON_ALG', /no ipsec-3gpp mechanism/);
});

test('picks UDP-enc-tun only when a NAT was detected', () => {
  const offer = client('alg=hmac-sha-1-96;ealg=aes-cbc;mod=UDP-enc-tun', 'alg=hmac-sha-1-96;ealg=null;mod=trans');
  assert.equal(chosen(negotiate(offer, {}, NAT)), 'hmac-sha-1-96/aes-cbc/UDP-enc-tun');
  assert.equal(chosen(negotiate(offer, {}, NO_NAT)), 'hmac-sha-1-96/null/trans');
});

test('an entry with mod=UDP-enc-tun or tun is not chosen without a NAT', () => {
  failed(
    negotiate(client('alg=hmac-sha-1-96;ealg=aes-cbc;mod=UDP-enc-tun', 'alg=hmac-sha-1-96;ealg=aes-cbc;mod=tun'), {}, NO_NAT),
    'SECAGREE_NO_COMMON_ALG',
    /mod=trans/,
  );
});

test('NAT detected and no UDP-enc-tun offered ⇒ SECAGREE_NAT_NO_UDP_ENC_TUN (no fallback to trans)', () => {
  failed(
    negotiate(client('alg=hmac-sha-1-96;ealg=aes-cbc', 'alg=hmac-sha-1-96;ealg=null;mod=tun'), {}, NAT),
    'SECAGREE_NAT_NO_UDP_ENC_TUN',
    /no mod=UDP-enc-tun entry/,
  );
});

test('NAT detected, UDP-enc-tun offered but only with unacceptable algorithms ⇒ SECAGREE_NO_COMMON_ALG', () => {
  failed(
    negotiate(client('alg=hmac-md5-96;mod=UDP-enc-tun', 'alg=hmac-sha-1-96;ealg=aes-cbc'), {}, NAT),
    'SECAGREE_NO_COMMON_ALG',
    /mod=UDP-enc-tun/,
  );
});

test('policy.modes without UDP-enc-tun refuses a NATed UE; without trans refuses the others', () => {
  const offer = client('alg=hmac-sha-1-96;mod=UDP-enc-tun', 'alg=hmac-sha-1-96');
  failed(negotiate(offer, { modes: ['trans'] }, NAT), 'SECAGREE_NAT_NO_UDP_ENC_TUN', /policy does not allow/);
  failed(negotiate(offer, { modes: ['UDP-enc-tun'] }, NO_NAT), 'SECAGREE_NO_COMMON_ALG', /policy does not allow mod=trans/);
});

test('all entries must carry the same spi-c/spi-s/port-c/port-s', () => {
  const ms = parseSecurityHeaderOrThrow(
    `ipsec-3gpp;alg=hmac-sha-1-96;${SPIS}, ipsec-3gpp;alg=hmac-md5-96;spi-c=1236;spi-s=1237;port-c=7004;port-s=7009`,
  );
  failed(negotiate(ms, {}, NO_NAT), 'SECAGREE_CLIENT_INCONSISTENT', /mechanism 2: port-s=7009 differs from port-s=7005 of mechanism 1/);
});

test('a chosen entry without its SPIs or ports ⇒ SECAGREE_CLIENT_INCOMPLETE naming the parameter', () => {
  failed(
    negotiate(parseSecurityHeaderOrThrow('ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;port-c=2;port-s=3'), {}, NO_NAT),
    'SECAGREE_CLIENT_INCOMPLETE',
    /spi-s is missing/,
  );
});

test('among several entries with the chosen pair, the highest q wins, then the first', () => {
  const ms = parseSecurityHeaderOrThrow(
    `ipsec-3gpp;alg=hmac-sha-1-96;${SPIS}, ipsec-3gpp;q=0.5;alg=hmac-sha-1-96;${SPIS}, ipsec-3gpp;q=0.7;alg=hmac-sha-1-96;ealg=null;${SPIS}`,
  );
  const r = negotiate(ms, {}, NO_NAT);
  assert.equal(r.ok && r.index, 2);
});

test('an invalid policy pair is a SECAGREE_BAD_POLICY thrown at the caller (misuse)', () => {
  assert.throws(
    () => negotiate(client('alg=hmac-sha-1-96'), { allow: [{ alg: 'null', ealg: 'aes-cbc' }] }, NO_NAT),
    (e: unknown) =>
      e instanceof SecAgreeError && e.code === 'SECAGREE_BAD_POLICY' && /"null\/aes-cbc" is not a valid alg\/ealg pair/.test(e.message),
  );
});
