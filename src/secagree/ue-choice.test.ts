// UE side: choosing the Security-Server entry (24.229 §5.1.1.5.1; digest §5.5, §10.5) and
// building the Security-Client offer (digest §4.3, §5.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSecurityHeaderOrThrow, serializeMechanisms } from './codec.ts';
import { buildSecurityClient, chooseServerMechanism, type ServerChoiceResult } from './ue-choice.ts';
import { negotiate } from './negotiate.ts';
import { DEFAULT_ALLOW, type AlgPair } from './policy.ts';
import type { SecAgreeCode } from './errors.ts';

const PCSCF = 'spi-c=4096;spi-s=4097;port-c=5062;port-s=5063';
const UE_PAIRS: AlgPair[] = [
  { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' },
  { alg: 'hmac-sha-1-96', ealg: 'null' },
  { alg: 'hmac-md5-96', ealg: 'null' },
];

function failed(r: ServerChoiceResult, code: SecAgreeCode, re: RegExp): void {
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.error.code, code);
  assert.match(r.error.message, re);
}

test('picks the Kamailio-style Security-Server entry and returns the P-CSCF SPIs and ports', () => {
  const server = parseSecurityHeaderOrThrow(
    `ipsec-3gpp;q=0.1;prot=esp;mod=trans;${PCSCF};alg=hmac-sha-1-96;ealg=aes-cbc`,
    'Security-Server',
  );
  assert.deepEqual(chooseServerMechanism(server, UE_PAIRS), {
    ok: true,
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    mod: 'trans',
    server: { spiC: 4096, spiS: 4097, portC: 5062, portS: 5063 },
    index: 0,
  });
});

test('picks the highest-q entry the UE supports (q values are distinct over the merged header)', () => {
  const server = parseSecurityHeaderOrThrow([
    `ipsec-3gpp;q=0.9;alg=aes-gmac;${PCSCF}`,
    `ipsec-3gpp;q=0.5;alg=hmac-sha-1-96;${PCSCF}`,
    `ipsec-3gpp;q=0.7;alg=hmac-md5-96;${PCSCF}`,
    `ipsec-3gpp;q=0.6;alg=hmac-sha-1-96;ealg=aes-cbc;${PCSCF}`,
  ]);
  const r = chooseServerMechanism(server, UE_PAIRS);
  assert.ok(r.ok);
  assert.equal(r.index, 2);
});

test('entries without q (Kamailio 5.6) rank below explicit q values', () => {
  const server = parseSecurityHeaderOrThrow(`ipsec-3gpp;alg=hmac-sha-1-96;${PCSCF}, ipsec-3gpp;q=0;alg=hmac-md5-96;${PCSCF}`);
  const r = chooseServerMechanism(server, { pairs: UE_PAIRS });
  assert.ok(r.ok && r.alg === 'hmac-md5-96');
});

for (const missing of ['alg', 'spi-c', 'spi-s', 'port-c', 'port-s']) {
  test(`a Security-Server entry without ${missing} ⇒ SECAGREE_SERVER_INCOMPLETE (the UE abandons)`, () => {
    const params = ['alg=hmac-sha-1-96', ...PCSCF.split(';')].filter((p) => !p.startsWith(`${missing}=`));
    failed(
      chooseServerMechanism(parseSecurityHeaderOrThrow(`ipsec-3gpp;${params.join(';')}`), UE_PAIRS),
      'SECAGREE_SERVER_INCOMPLETE',
      new RegExp(`${missing} is missing`),
    );
  });
}

test('no ipsec-3gpp entry, or none the UE supports ⇒ SECAGREE_NO_SERVER_MECHANISM', () => {
  failed(chooseServerMechanism(parseSecurityHeaderOrThrow('tls;q=0.5'), UE_PAIRS), 'SECAGREE_NO_SERVER_MECHANISM', /no ipsec-3gpp/);
  failed(
    chooseServerMechanism(parseSecurityHeaderOrThrow(`ipsec-3gpp;alg=null;ealg=aes-gcm;${PCSCF}`), UE_PAIRS),
    'SECAGREE_NO_SERVER_MECHANISM',
    /supports/,
  );
  failed(
    chooseServerMechanism(parseSecurityHeaderOrThrow(`ipsec-3gpp;prot=ah;alg=hmac-sha-1-96;${PCSCF}`), UE_PAIRS),
    'SECAGREE_NO_SERVER_MECHANISM',
    /supports/,
  );
  failed(
    chooseServerMechanism(parseSecurityHeaderOrThrow(`ipsec-3gpp;mod=UDP-enc-tun;alg=hmac-sha-1-96;${PCSCF}`), {
      pairs: UE_PAIRS,
      modes: ['trans'],
    }),
    'SECAGREE_NO_SERVER_MECHANISM',
    /supports/,
  );
});

test('the UE applies the mode the P-CSCF chose (UDP-enc-tun)', () => {
  const r = chooseServerMechanism(parseSecurityHeaderOrThrow(`ipsec-3gpp;mod=udp-enc-tun;alg=hmac-sha-1-96;${PCSCF}`), UE_PAIRS);
  assert.ok(r.ok && r.mod === 'UDP-enc-tun');
});

test('buildSecurityClient offers one entry per pair and mode with the same SPIs and ports, and negotiates end to end', () => {
  const ue = { spiC: 1236, spiS: 1237, portC: 7004, portS: 7005 };
  const offer = buildSecurityClient(DEFAULT_ALLOW, ue, ['trans', 'UDP-enc-tun']);
  assert.equal(offer.length, 8);
  assert.equal(
    serializeMechanisms(offer.slice(0, 1)),
    'ipsec-3gpp;prot=esp;mod=trans;spi-c=1236;spi-s=1237;port-c=7004;port-s=7005;alg=hmac-sha-1-96;ealg=aes-cbc',
  );
  const r = negotiate(parseSecurityHeaderOrThrow(serializeMechanisms(offer)), {}, { natDetected: true });
  assert.ok(r.ok && r.mod === 'UDP-enc-tun' && r.index === 4);
  assert.throws(() => buildSecurityClient(DEFAULT_ALLOW, { ...ue, portS: 0 }), /Security-Client port-s/);
});
