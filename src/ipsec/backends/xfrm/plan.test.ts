// What the kernel gets for each SA of a 33.203 set: Linux algorithm names and key material (spec
// digest §13), selectors (§6.2, inner addresses in tunnel mode §15A), the ownership tag, templates,
// hard lifetimes and the NAT-moved peers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allValidPairs } from '../../algorithms.ts';
import { expandKeys } from '../../keys.ts';
import { createSaSet, type SaSetConfig } from '../../sa-set.ts';
import {
  TAG_MAGIC,
  configuredPeer,
  hardSeconds,
  inboundPeerAt,
  isImsecTag,
  outboundPeerAt,
  ownerTag,
  policyKey,
  selectorOf,
  tmplOf,
  wipeAlgorithms,
  xfrmAlgorithms,
} from './plan.ts';

const IK = new Uint8Array(16).fill(0x11);
const CK = new Uint8Array(16).fill(0x22);

function cfg(over: Partial<SaSetConfig> = {}): SaSetConfig {
  return {
    role: 'pcscf',
    ue: { ip: '192.0.2.10', portC: 50000, portS: 50001, spiC: 0x1001, spiS: 0x1002 },
    pcscf: { ip: '192.0.2.20', portC: 5062, portS: 5064, spiC: 0x2001, spiS: 0x2002 },
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'aes-cbc'),
    mode: 'transport',
    ...over,
  };
}

test('algorithms: Linux names, key lengths in octets, 96-bit HMAC truncation, AEAD key‖salt with 128-bit ICV', () => {
  const seen: Record<string, string> = {};
  for (const { alg, ealg } of allValidPairs()) {
    const a = xfrmAlgorithms(createSaSet(cfg({ alg, ealg, keys: expandKeys(IK, CK, alg, ealg) })).sas.SA1.params);
    seen[`${alg}/${ealg}`] = [
      a.auth && `auth ${a.auth.name} ${a.auth.key.length} ${a.auth.truncBits}`,
      a.crypt && `crypt ${a.crypt.name} ${a.crypt.key.length}`,
      a.aead && `aead ${a.aead.name} ${a.aead.key.length} ${a.aead.icvBits}`,
    ]
      .filter(Boolean)
      .join(', ');
  }
  assert.deepEqual(seen, {
    'hmac-md5-96/null': 'auth hmac(md5) 16 96, crypt ecb(cipher_null) 0',
    'hmac-md5-96/aes-cbc': 'auth hmac(md5) 16 96, crypt cbc(aes) 16',
    'hmac-md5-96/des-ede3-cbc': 'auth hmac(md5) 16 96, crypt cbc(des3_ede) 24',
    'hmac-sha-1-96/null': 'auth hmac(sha1) 20 96, crypt ecb(cipher_null) 0',
    'hmac-sha-1-96/aes-cbc': 'auth hmac(sha1) 20 96, crypt cbc(aes) 16',
    'hmac-sha-1-96/des-ede3-cbc': 'auth hmac(sha1) 20 96, crypt cbc(des3_ede) 24',
    'aes-gmac/null': 'aead rfc4543(gcm(aes)) 20 128',
    'null/aes-gcm': 'aead rfc4106(gcm(aes)) 20 128',
  });
});

test('algorithm keys are copies: wiping them never touches the SA keys, even Buffer-backed ones', () => {
  const keys = expandKeys(IK, CK, 'null', 'aes-gcm');
  const buf = { ckEsp: Buffer.from(keys.ckEsp), ikEsp: Buffer.from(keys.ikEsp), salt: Buffer.from(keys.salt!) };
  const set = createSaSet(cfg({ alg: 'null', ealg: 'aes-gcm', keys: buf }));
  const a = xfrmAlgorithms(set.sas.SA1.params);
  assert.deepEqual([...a.aead!.key], [...keys.ckEsp, ...keys.salt!]);
  wipeAlgorithms(a);
  assert.ok(a.aead!.key.every((b) => b === 0));
  assert.deepEqual([...set.sas.SA1.params.keys.ckEsp], [...keys.ckEsp]);
});

test('selectors: full-length prefixes, the SA port pair, protocol any, the tag; inner addresses in tunnel mode', () => {
  const tag = ownerTag(3);
  const t = createSaSet(cfg());
  assert.deepEqual(selectorOf(t.sas.SA1.params, tag), {
    family: 4,
    src: '192.0.2.10',
    dst: '192.0.2.20',
    prefixSrc: 32,
    prefixDst: 32,
    sport: 50000,
    dport: 5064,
    proto: 0,
    user: tag,
  });
  assert.deepEqual(selectorOf(t.sas.SA2.params, tag), {
    family: 4,
    src: '192.0.2.20',
    dst: '192.0.2.10',
    prefixSrc: 32,
    prefixDst: 32,
    sport: 5062,
    dport: 50001,
    proto: 0,
    user: tag,
  });
  // Behind a NAT: outer = public 198.51.100.7, inner = private 10.0.0.7 (spec digest §15A point 4).
  const u = createSaSet(
    cfg({
      mode: 'udp-enc-tunnel',
      ue: { ip: '198.51.100.7', innerIp: '10.0.0.7', portC: 50000, portS: 50001, spiC: 0x1001, spiS: 0x1002 },
    }),
  );
  const s1 = selectorOf(u.sas.SA1.params, tag);
  assert.deepEqual([s1.src, s1.dst], ['10.0.0.7', '192.0.2.20']);
  assert.deepEqual(configuredPeer(u.sas.SA1.params), { dst: '192.0.2.20', encap: { sport: 4500, dport: 4500 } });
  const v6 = createSaSet(
    cfg({
      ue: { ip: '2001:DB8:0::10', portC: 1, portS: 2, spiC: 300, spiS: 301 },
      pcscf: { ip: '2001:db8::20', portC: 3, portS: 4, spiC: 302, spiS: 303 },
    }),
  );
  const sel6 = selectorOf(v6.sas.SA1.params, tag);
  assert.deepEqual(
    [sel6.family, sel6.src, sel6.prefixSrc],
    [6, '2001:db8::10', 128],
    'RFC 5952 text, so keys compare with what the kernel dumps',
  );
  assert.equal(policyKey('out', sel6), `out|6|2001:db8::10/128|2001:db8::20/128|1|4|0|${tag}`);
});

test('the tag: 0x1a5e in the high half, the instance in the low half', () => {
  assert.equal(ownerTag(0), TAG_MAGIC);
  assert.equal(ownerTag(0xbeef), 0x1a5ebeef);
  assert.ok(isImsecTag(ownerTag(7)));
  assert.ok(!isImsecTag(0) && !isImsecTag(0x1a5d0001));
});

test('templates: outbound pinned to the SA (reqid + SPI), inbound any of ours; tunnel uses outer addresses', () => {
  const u = createSaSet(cfg({ mode: 'udp-enc-tunnel', role: 'ue' }));
  const peer = configuredPeer(u.sas.SA1.params);
  assert.deepEqual(tmplOf(u.sas.SA1, 'out', 77, peer), {
    family: 4,
    src: '192.0.2.10',
    dst: '192.0.2.20',
    spi: 0x2002,
    reqid: 77,
    mode: 'tunnel',
  });
  assert.deepEqual(tmplOf(u.sas.SA2, 'in', 77, configuredPeer(u.sas.SA2.params)), {
    family: 4,
    src: '192.0.2.20',
    dst: '192.0.2.10',
    spi: 0,
    reqid: 0,
    mode: 'tunnel',
  });
});

test('hard lifetime in seconds from a start time; none without expiry; at least 1', () => {
  assert.equal(hardSeconds(undefined, 0), 0);
  assert.equal(hardSeconds(60_000, 0), 60);
  assert.equal(hardSeconds(60_001, 0), 61);
  assert.equal(hardSeconds(1000, 5000), 1, 'already due: the kernel removes it within a second');
});

test('a NAT-moved peer: outbound SAs change destination and dport, inbound ones expect the new sport', () => {
  const p = createSaSet(cfg({ mode: 'udp-enc-tunnel' }));
  assert.deepEqual(outboundPeerAt(p.sas.SA2.params, { address: '198.51.100.7', port: 61000 }), {
    dst: '198.51.100.7',
    encap: { sport: 4500, dport: 61000 },
  });
  assert.deepEqual(inboundPeerAt(p.sas.SA1.params, { address: '198.51.100.7', port: 61000 }), {
    dst: '192.0.2.20',
    encap: { sport: 61000, dport: 4500 },
  });
});
