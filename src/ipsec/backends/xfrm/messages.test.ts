// XFRM messages byte for byte against layouts written out field by field from linux/xfrm.h (the
// same bytes a C program filling the uapi structs produces: checked once with offsetof/sizeof on
// x86-64), and the parsers on records shaped like the kernel's answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  delPolicyMessage,
  delSaMessage,
  dumpSaMessage,
  parseExpire,
  parseMapping,
  parsePolicy,
  parseSa,
  policyMessage,
  saMessage,
  type SaSpec,
} from './messages.ts';
import { decodeMessages } from './netlink.ts';
import type { XfrmSelector } from './structs.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const z = (n: number) => '00'.repeat(n);
const ff = (n: number) => 'ff'.repeat(n);
/** A NUL-padded char[64] algorithm name. */
const name64 = (s: string) => Buffer.from(s).toString('hex') + z(64 - s.length);
const le32 = (n: number) => Buffer.from(new Uint32Array([n]).buffer).toString('hex');
const seqHex = (n: number, len: number, start: number) =>
  Buffer.from(Array.from({ length: len }, (_, i) => (start + i) & 0xff)).toString('hex');

const SEL4: XfrmSelector = {
  family: 4,
  src: '192.0.2.10',
  dst: '192.0.2.20',
  prefixSrc: 32,
  prefixDst: 32,
  sport: 50000,
  dport: 5064,
  proto: 0,
  user: 0x1a5e0001,
};
const SEL6: XfrmSelector = {
  family: 6,
  src: '2001:db8::10',
  dst: '2001:db8::20',
  prefixSrc: 128,
  prefixDst: 128,
  sport: 50001,
  dport: 5062,
  proto: 0,
  user: 0x1a5e0001,
};

function sa4(over: Partial<SaSpec> = {}): SaSpec {
  return {
    family: 4,
    src: '192.0.2.10',
    dst: '192.0.2.20',
    spi: 0x10004,
    reqid: 0x10001,
    mode: 'transport',
    sel: SEL4,
    algs: {
      auth: { name: 'hmac(sha1)', key: Uint8Array.from({ length: 20 }, (_, i) => 1 + i), truncBits: 96 },
      crypt: { name: 'cbc(aes)', key: Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i) },
    },
    replayWindow: 32,
    hardSeconds: 600,
    ...over,
  };
}

// xfrm_selector (56): daddr[16] saddr[16] dport dport_mask sport sport_mask (be16) family(u16) prefixlen_d prefixlen_s proto pad[3] ifindex user
const SEL4_HEX =
  'c0000214' + z(12) + 'c000020a' + z(12) + '13c8' + 'ffff' + 'c350' + 'ffff' + '0200' + '20' + '20' + '00' + z(3) + z(4) + '01005e1a';
// xfrm_lifetime_cfg (64): four XFRM_INF limits, soft/hard add, soft/hard use (u64 LE)
const lft = (hard: number) => ff(32) + z(8) + Buffer.from(new BigUint64Array([BigInt(hard)]).buffer).toString('hex') + z(16);

test('NEWSA, IPv4 transport, hmac(sha1)-96 + cbc(aes), window 32: 424 octets as linux/xfrm.h lays them out', () => {
  const m = saMessage(sa4(), { seq: 0x01020304 });
  const expected =
    'a8010000' +
    '1000' +
    '0500' +
    '04030201' +
    z(4) + // nlmsghdr: len 424, XFRM_MSG_NEWSA, REQUEST|ACK, seq, pid
    SEL4_HEX +
    'c0000214' +
    z(12) +
    '00010004' +
    '32' +
    z(3) + // xfrm_id: daddr, spi (be32), proto ESP, pad
    'c000020a' +
    z(12) + // saddr
    lft(600) +
    z(32) +
    z(12) + // lft (hard 600 s), curlft, stats
    z(4) +
    '01000100' +
    '0200' +
    '00' +
    '20' +
    '00' +
    z(7) + // seq, reqid, family AF_INET, mode transport, replay_window 32, flags, pad
    '6000' +
    '1400' +
    name64('hmac(sha1)') +
    le32(160) +
    le32(96) +
    seqHex(1, 20, 1) + // XFRMA_ALG_AUTH_TRUNC: 4+72+20
    '5800' +
    '0200' +
    name64('cbc(aes)') +
    le32(128) +
    seqHex(0xa0, 16, 0xa0); // XFRMA_ALG_CRYPT: 4+68+16
  assert.equal(hex(m), expected);
});

test('NEWSA: the keys travel in the message; the caller keeps (and later wipes) its own copies', () => {
  const spec = sa4();
  const m = saMessage(spec, { seq: 1 });
  assert.ok(hex(m).includes(seqHex(1, 20, 1)));
  // The caller's spec keys are the caller's to wipe (plan.wipeAlgorithms); the message is wiped after send.
  assert.equal(spec.algs.auth!.key[0], 1);
});

test('UPDSA, tunnel + ESP-in-UDP, rfc4106(gcm(aes)) key‖salt, window 64 → XFRMA_REPLAY_ESN_VAL', () => {
  const key = Uint8Array.from({ length: 20 }, (_, i) => 0x40 + i);
  const m = saMessage(
    sa4({
      mode: 'tunnel',
      algs: { aead: { name: 'rfc4106(gcm(aes))', key, icvBits: 128 } },
      encap: { sport: 4500, dport: 4501 },
      replayWindow: 64,
    }),
    { seq: 2, update: true },
  );
  const h = hex(m);
  assert.equal(h.slice(8, 12), '1a00', 'XFRM_MSG_UPDSA');
  const info = h.slice(32, 32 + 448);
  assert.equal(info.slice(428, 434), '010000', 'family AF_INET (0200) → mode tunnel 01, replay_window 0 (ESN form), flags 0');
  const attrs = h.slice(32 + 448);
  // XFRMA_ALG_AEAD: 4+72+20 = 96, name, key_len 160 bits, ICV 128 bits, key‖salt
  assert.equal(attrs.slice(0, 192), '6000' + '1200' + name64('rfc4106(gcm(aes))') + le32(160) + le32(128) + seqHex(0x40, 20, 0x40));
  // XFRMA_ENCAP: 4+24: UDP_ENCAP_ESPINUDP (2), sport 4500, dport 4501 (be16), pad, encap_oa 0.0.0.0
  assert.equal(attrs.slice(192, 248), '1c00' + '0400' + '0200' + '1194' + '1195' + z(2) + z(16));
  // XFRMA_REPLAY_ESN_VAL: 4+24+8: bmp_len 2, oseq, seq, oseq_hi, seq_hi, replay_window 64, bmp[2]
  assert.equal(attrs.slice(248), '2400' + '1700' + le32(2) + z(16) + le32(64) + z(8));
});

test('NEWPOLICY, IPv6, dir out, one template pinned to (reqid, SPI), all algorithms allowed', () => {
  const m = policyMessage(
    {
      sel: SEL6,
      dir: 'out',
      priority: 0,
      hardSeconds: 0,
      tmpl: { family: 6, src: '2001:db8::10', dst: '2001:db8::20', spi: 0x10003, reqid: 7, mode: 'transport' },
    },
    { seq: 7 },
  );
  const a6 = (last: string) => '20010db8' + z(11) + last;
  const expected =
    'fc000000' +
    '1300' +
    '0500' +
    '07000000' +
    z(4) + // len 16+168+68 = 252, XFRM_MSG_NEWPOLICY
    a6('20') +
    a6('10') +
    '13c6' +
    'ffff' +
    'c351' +
    'ffff' +
    '0a00' +
    '80' +
    '80' +
    '00' +
    z(3) +
    z(4) +
    '01005e1a' + // selector
    lft(0) +
    z(32) + // lft, curlft
    z(4) +
    z(4) +
    '01' +
    '00' +
    '00' +
    '00' +
    z(4) + // priority, index, dir out, action allow, flags, share, pad
    '4400' +
    '0500' + // XFRMA_TMPL: 4+64
    a6('20') +
    '00010003' +
    '32' +
    z(3) +
    '0a00' +
    z(2) +
    a6('10') +
    '07000000' +
    '00' +
    '00' +
    '00' +
    z(1) +
    ff(12); // id, family, saddr, reqid, mode/share/optional, a/e/calgos
  assert.equal(hex(m), expected);
});

test('DELSA (xfrm_usersa_id), DELPOLICY by index, and the empty dump request', () => {
  assert.equal(
    hex(delSaMessage({ family: 6, dst: '2001:db8::20', spi: 0x10001 }, 5)),
    '28000000' + '1100' + '0500' + '05000000' + z(4) + '20010db8' + z(11) + '20' + '00010001' + '0a00' + '32' + '00',
  );
  const dp = hex(delPolicyMessage({ dir: 'in', index: 0x1234 }, 6));
  assert.equal(dp.slice(0, 32), '50000000' + '1400' + '0500' + '06000000' + z(4), 'len 16+64');
  assert.equal(dp.slice(32 + 112, 32 + 128), '34120000' + '00' + z(3), 'index, dir in');
  assert.equal(hex(dumpSaMessage(9)), '10000000' + '1200' + '0103' + '09000000' + z(4), 'GETSA with NLM_F_REQUEST|NLM_F_DUMP');
});

test('parseSa reads ids, selector tag, lifetime, counters, stats, encap and replay state — never keys', () => {
  const m = saMessage(sa4({ mode: 'tunnel', encap: { sport: 4500, dport: 4500 } }), { seq: 1 });
  const payload = decodeMessages(m)![0]!.payload.slice();
  const dv = new DataView(payload.buffer);
  dv.setBigUint64(160, 1234n, true); // curlft.bytes
  dv.setBigUint64(168, 7n, true); // curlft.packets
  dv.setUint32(196, 2, true); // stats.replay
  dv.setUint32(200, 3, true); // stats.integrity_failed
  const r = parseSa(payload)!;
  assert.equal(r.spi, 0x10004);
  assert.equal(r.dst, '192.0.2.20');
  assert.equal(r.src, '192.0.2.10');
  assert.equal(r.mode, 'tunnel');
  assert.equal(r.reqid, 0x10001);
  assert.equal(r.hardSeconds, 600);
  assert.deepEqual(r.sel, SEL4);
  assert.deepEqual([r.cur.bytes, r.cur.packets, r.stats.replay, r.stats.integrityFailed], [1234, 7, 2, 3]);
  assert.deepEqual(r.encap, { type: 2, sport: 4500, dport: 4500 });
  assert.deepEqual(r.algs, { auth: 'hmac(sha1)', crypt: 'cbc(aes)' });
  assert.ok(!JSON.stringify(r).includes('"key'), 'no key material in the record');
  assert.equal(parseSa(payload.subarray(0, 100)), undefined);
});

test('parsePolicy reads selector, direction, index and templates', () => {
  const m = policyMessage(
    {
      sel: SEL6,
      dir: 'in',
      priority: 9,
      hardSeconds: 30,
      tmpl: { family: 6, src: '2001:db8::10', dst: '2001:db8::20', spi: 0, reqid: 0, mode: 'tunnel' },
    },
    { seq: 1 },
  );
  const payload = decodeMessages(m)![0]!.payload.slice();
  new DataView(payload.buffer).setUint32(156, 0x58, true); // the kernel fills the index
  const r = parsePolicy(payload)!;
  assert.deepEqual(r.sel, SEL6);
  assert.deepEqual([r.dir, r.index, r.priority, r.hardSeconds, r.action], ['in', 0x58, 9, 30, 0]);
  assert.deepEqual(r.tmpls, [{ family: 6, src: '2001:db8::10', dst: '2001:db8::20', spi: 0, reqid: 0, mode: 'tunnel' }]);
});

test('parseMapping (xfrm_user_mapping) and parseExpire (xfrm_user_expire)', () => {
  const map = Buffer.from(
    'c0000214' +
      z(12) +
      '00010004' +
      '0200' +
      '32' +
      '00' + // id: daddr, spi, family, proto, pad
      '07000000' +
      'c000020a' +
      z(12) +
      'cb007109' +
      z(12) +
      '1194' +
      '11f8', // reqid, old_saddr, new_saddr 203.0.113.9, old_sport 4500, new_sport 4600
    'hex',
  );
  assert.deepEqual(parseMapping(new Uint8Array(map)), {
    family: 4,
    dst: '192.0.2.20',
    spi: 0x10004,
    reqid: 7,
    oldSrc: '192.0.2.10',
    newSrc: '203.0.113.9',
    oldSport: 4500,
    newSport: 4600,
  });
  assert.equal(parseMapping(new Uint8Array(map.subarray(0, 60))), undefined);
  const info = decodeMessages(saMessage(sa4(), { seq: 1 }))![0]!.payload.subarray(0, 224);
  const exp = new Uint8Array(232);
  exp.set(info);
  exp[224] = 1;
  const e = parseExpire(exp)!;
  assert.deepEqual([e.sa.spi, e.sa.dst, e.hard], [0x10004, '192.0.2.20', true]);
});
