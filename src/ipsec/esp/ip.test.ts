// Address text ⇄ bytes (RFC 5952), IPv4/IPv6 header codec, UDP checksums (hand-computed, and
// confirmed by tshark 4.0 in tshark.test.ts), RFC 3948 payload classification.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../../util/bytes.ts';
import { formatAddress, parseAddress } from './addr.ts';
import { buildIpPacket, buildUdp, classifyEncapPayload, parseIpPacket, parseTcp, parseUdp } from './index.ts';

describe('addresses', () => {
  const cases: [string, string, string][] = [
    ['192.0.2.1', 'c0000201', '192.0.2.1'],
    ['2001:db8::1', '20010db8000000000000000000000001', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '20010db8000000000000000000000001', '2001:db8::1'],
    ['::', '00000000000000000000000000000000', '::'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['1::', '00010000000000000000000000000000', '1::'],
    ['2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // RFC 5952 §4.2.2: one 0 group stays
    ['2001:0:0:1:0:0:0:1', '20010000000000010000000000000001', '2001:0:0:1::1'], // §4.2.3: the longer run
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // §4.2.3: first of equal runs
    ['::ffff:192.0.2.128', '00000000000000000000ffffc0000280', '::ffff:192.0.2.128'],
    ['fe80::1%eth0', 'fe800000000000000000000000000001', 'fe80::1'],
  ];
  for (const [text, hex, canon] of cases) {
    it(`${text} ⇄ ${canon}`, () => {
      const b = parseAddress(text);
      assert.ok(b);
      assert.equal(toHex(b), hex);
      assert.equal(formatAddress(b), canon);
    });
  }
  it('rejects non-addresses', () => {
    for (const s of ['', '1.2.3', '256.1.1.1', '1:2:3', 'example.com', '1::2::3', '::g']) assert.equal(parseAddress(s), undefined, s);
  });
  it('round-trips any 16 octets through the canonical text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => assert.equal(toHex(parseAddress(formatAddress(b))!), toHex(b))),
    );
  });
});

describe('IP codec', () => {
  it('accepts real IPv4 headers with valid checksums (RFC 3602 case 5 packet headers)', () => {
    for (const h of ['4500005408f200004001f9fec0a87b03c0a87b64', '4500007c08f200004032f9a5c0a87b03c0a87b64']) {
      const hdr = fromHex(h);
      const total = (hdr[2]! << 8) | hdr[3]!;
      const pkt = new Uint8Array(total);
      pkt.set(hdr);
      const p = parseIpPacket(pkt);
      assert.equal(p?.src, '192.168.123.3');
      assert.equal(p?.dst, '192.168.123.100');
      assert.equal(p?.payload.length, total - 20);
      pkt[10]! ^= 1;
      assert.equal(parseIpPacket(pkt), undefined, 'bad header checksum');
    }
  });

  it('round-trips IPv4 and IPv6', () => {
    for (const [src, dst] of [
      ['10.0.0.1', '10.0.0.2'],
      ['2001:db8::a', 'fe80::1'],
    ] as const) {
      const payload = Uint8Array.of(1, 2, 3);
      const b = buildIpPacket({ src, dst, protocol: 50, payload, ttl: 7 });
      assert.deepEqual(parseIpPacket(b), { version: src.includes(':') ? 6 : 4, src, dst, protocol: 50, payload });
      // Link-layer padding after the datagram is ignored.
      assert.deepEqual(parseIpPacket(Uint8Array.from([...b, 0, 0]))?.payload, payload);
    }
  });

  it('drops fragments (RFC 4303 §3.4.1) and truncated packets', () => {
    const b = buildIpPacket({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, payload: new Uint8Array(8) });
    const mf = Uint8Array.from(b);
    mf[6] = 0x20; // MF, DF clear
    mf[10] = 0; // recompute the header checksum so that only the fragment bit is wrong
    mf[11] = 0;
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (mf[i]! << 8) | mf[i + 1]!;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    mf[10] = (~s >> 8) & 0xff;
    mf[11] = ~s & 0xff;
    assert.equal(parseIpPacket(mf), undefined);
    const v6frag = buildIpPacket({ src: '::1', dst: '::2', protocol: 44, payload: new Uint8Array(8) });
    assert.equal(parseIpPacket(v6frag), undefined);
    for (let n = 0; n < b.length; n++) assert.equal(parseIpPacket(b.subarray(0, n)), undefined, `truncated to ${n}`);
  });

  it('refuses mixed families and oversize packets', () => {
    assert.throws(() => buildIpPacket({ src: '10.0.0.1', dst: '::1', protocol: 17, payload: new Uint8Array(0) }), {
      code: 'ESP_BAD_INPUT',
    });
    assert.throws(() => buildIpPacket({ src: 'x', dst: '::1', protocol: 17, payload: new Uint8Array(0) }), { code: 'ESP_BAD_INPUT' });
    assert.throws(() => buildIpPacket({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, payload: new Uint8Array(65516) }), {
      code: 'ESP_BAD_INPUT',
    });
  });

  it('parseIpPacket never throws', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => void parseIpPacket(b)));
  });
});

describe('UDP', () => {
  // Hand computation, 192.0.2.1 → 192.0.2.2, 5060 → 5060, payload "hi":
  //   pseudo c000+0201+c000+0202+0011+000a = 1841e; header 13c4+13c4+000a = 2792; data 6869
  //   1841e+2792+6869 = 21419 → fold 141b → complement ebe4.
  // IPv6 2001:db8::1 → 2001:db8::2: pseudo 2dba+2dbb+000a+0011 = 5b90; +2792+6869 = eb8b → 1474.
  it('IPv4 checksum matches the hand computation', () => {
    const u = buildUdp('192.0.2.1', '192.0.2.2', 5060, 5060, Buffer.from('hi'));
    assert.equal(toHex(u), '13c413c4000aebe46869');
    assert.deepEqual(parseUdp(u, '192.0.2.1', '192.0.2.2'), {
      srcPort: 5060,
      dstPort: 5060,
      payload: Uint8Array.of(0x68, 0x69),
      checksumOk: true,
    });
    assert.equal(parseUdp(u, '192.0.2.1', '192.0.2.3')?.checksumOk, false);
    assert.equal(parseUdp(u)?.checksumOk, undefined);
  });
  it('IPv6 checksum matches the hand computation', () => {
    const u = buildUdp('2001:db8::1', '2001:db8::2', 5060, 5060, Buffer.from('hi'));
    assert.equal(toHex(u), '13c413c4000a14746869');
    assert.equal(parseUdp(u, '2001:db8::1', '2001:db8::2')?.checksumOk, true);
  });
  it('zero checksum: allowed over IPv4 (unchecked), refused and flagged over IPv6', () => {
    const u = buildUdp('192.0.2.1', '192.0.2.2', 4500, 4500, Uint8Array.of(0xff), { zeroChecksum: true });
    assert.equal(toHex(u), '11941194000900' + '00ff');
    assert.equal(parseUdp(u, '192.0.2.1', '192.0.2.2')?.checksumOk, undefined);
    assert.throws(() => buildUdp('::1', '::2', 1, 2, new Uint8Array(0), { zeroChecksum: true }), { code: 'ESP_BAD_INPUT' });
    assert.equal(parseUdp(u, '::1', '::2')?.checksumOk, false);
  });
  it('rejects bad lengths and never throws', () => {
    assert.equal(parseUdp(fromHex('13c413c40007ebe4')), undefined); // length < 8
    assert.equal(parseUdp(fromHex('13c413c40010ebe46869')), undefined); // length > data
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => void parseUdp(b, '10.0.0.1', '10.0.0.2')));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => void parseTcp(b, '10.0.0.1', '10.0.0.2')));
  });
});

describe('RFC 3948 payload classification', () => {
  const cases: [string, string][] = [
    ['ff', 'keepalive'],
    ['fe', 'malformed'],
    ['', 'malformed'],
    ['00000000', 'non-esp'],
    ['000000000102', 'non-esp'],
    ['00001000', 'malformed'], // SPI but no sequence number
    ['0000100000000001', 'esp'],
    ['ffff', 'malformed'],
  ];
  for (const [hex, kind] of cases) it(`${hex || '(empty)'} ⇒ ${kind}`, () => assert.equal(classifyEncapPayload(fromHex(hex)), kind));
});
