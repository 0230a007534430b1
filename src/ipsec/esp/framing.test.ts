// Mode framing: sealToWire → parseWire → open → parseInner in transport and UDP-encapsulated
// tunnel mode, IPv4 and IPv6 (and IPv6 inside IPv4); keepalives, non-ESP markers, inner TCP.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { expandKeys } from '../keys.ts';
import type { SaParams } from '../types.ts';
import { buildIpPacket, buildUdp, createInbound, createOutbound, NAT_KEEPALIVE, parseInner, parseWire, sealToWire } from './index.ts';
import { transportChecksum } from './checksum.ts';
import { formatAddress, parseAddress, writeAddress } from './addr.ts';

const keys = expandKeys(randomBytes(16), randomBytes(16), 'hmac-sha-1-96', 'aes-cbc');

function params(mode: SaParams['mode'], src: string, dst: string, extra: Partial<SaParams> = {}): SaParams {
  return { spi: 0x2001, src, dst, srcPort: 5062, dstPort: 5064, mode, alg: 'hmac-sha-1-96', ealg: 'aes-cbc', keys, ...extra };
}

function roundTrip(sa: SaParams, encapPorts?: number[]) {
  const out = createOutbound(sa);
  const inb = createInbound(sa);
  const payload = Buffer.from('REGISTER sip:ims.example SIP/2.0\r\n\r\n');
  const w = sealToWire(sa, out, { srcPort: sa.srcPort, dstPort: sa.dstPort, payload });
  const wire = parseWire(w.ip, encapPorts ? { encapPorts } : {});
  assert.equal(wire.kind, 'esp');
  if (wire.kind !== 'esp') return;
  assert.equal(wire.spi, sa.spi);
  assert.equal(wire.seq, 1);
  assert.ok(Buffer.from(wire.esp).equals(w.esp));
  const r = inb.open(wire.esp);
  assert.ok(r.ok);
  const seg = parseInner(sa.mode, r.nextHeader, r.payload, { src: wire.src, dst: wire.dst });
  assert.ok(seg);
  assert.equal(seg.protocol, 17);
  assert.equal(seg.srcPort, sa.srcPort);
  assert.equal(seg.dstPort, sa.dstPort);
  assert.deepEqual(Buffer.from(seg.payload), payload);
  return { w, wire, seg };
}

describe('framing', () => {
  for (const [src, dst] of [
    ['192.0.2.1', '192.0.2.2'],
    ['2001:db8::1', '2001:db8::2'],
  ] as const) {
    it(`transport over ${src.includes(':') ? 'IPv6' : 'IPv4'}: IP proto 50, inner UDP on the outer addresses`, () => {
      const x = roundTrip(params('transport', src, dst))!;
      assert.equal(x.wire.kind === 'esp' && x.wire.encap, undefined);
      assert.equal(x.seg.src, src);
      assert.equal(x.seg.dst, dst);
      assert.deepEqual(x.w.udpPayload, x.w.esp);
    });
    it(`udp-enc-tunnel over ${src.includes(':') ? 'IPv6' : 'IPv4'}: UDP 4500, inner IP with the inner addresses`, () => {
      const inner = src.includes(':') ? { innerSrc: 'fd00::5', innerDst: dst } : { innerSrc: '10.0.0.5', innerDst: dst };
      const x = roundTrip(params('udp-enc-tunnel', src, dst, { ...inner, encap: { srcPort: 40000, dstPort: 4500 } }))!;
      assert.deepEqual(x.wire.kind === 'esp' && x.wire.encap, { srcPort: 40000, dstPort: 4500 });
      assert.equal(x.seg.src, inner.innerSrc);
      assert.equal(x.seg.dst, inner.innerDst);
      const outerUdp = x.w.ip.subarray(src.includes(':') ? 40 : 20);
      const checksum = (outerUdp[6]! << 8) | outerUdp[7]!;
      if (src.includes(':')) assert.equal(transportChecksum(parseAddress(src)!, parseAddress(dst)!, 17, outerUdp), 0);
      else assert.equal(checksum, 0, 'RFC 3948 §2.1: IPv4 UDP checksum zero');
    });
  }

  it('udp-enc-tunnel: IPv6 inner packet inside IPv4 uses next header 41', () => {
    const sa = params('udp-enc-tunnel', '192.0.2.1', '192.0.2.2', { innerSrc: '2001:db8::5', innerDst: '2001:db8::6' });
    const out = createOutbound(sa);
    const w = sealToWire(sa, out, { srcPort: 1, dstPort: 2, payload: Uint8Array.of(9) });
    const r = createInbound(sa).open(w.esp);
    assert.ok(r.ok && r.nextHeader === 41);
    assert.equal(parseInner('udp-enc-tunnel', 4, r.payload, sa), undefined, 'NH 4 does not fit an IPv6 inner packet');
    assert.equal(parseInner('udp-enc-tunnel', 41, r.payload, sa)?.src, '2001:db8::5');
  });

  it('encapsulation is recognised on the source port too (the UE side of a NAT)', () => {
    const sa = params('udp-enc-tunnel', '192.0.2.2', '198.51.100.7', { encap: { srcPort: 4500, dstPort: 61000 } });
    roundTrip(sa);
  });

  it('keepalives and non-ESP markers on 4500; other UDP is "other"', () => {
    const ka = buildIpPacket({
      src: '198.51.100.7',
      dst: '192.0.2.2',
      protocol: 17,
      payload: buildUdp('198.51.100.7', '192.0.2.2', 61000, 4500, NAT_KEEPALIVE, { zeroChecksum: true }),
    });
    assert.deepEqual(parseWire(ka), { kind: 'keepalive', src: '198.51.100.7', dst: '192.0.2.2', encap: { srcPort: 61000, dstPort: 4500 } });
    const ike = buildIpPacket({
      src: '198.51.100.7',
      dst: '192.0.2.2',
      protocol: 17,
      payload: buildUdp('198.51.100.7', '192.0.2.2', 61000, 4500, new Uint8Array(20)),
    });
    assert.equal(parseWire(ike).kind, 'non-esp');
    const sip = buildIpPacket({
      src: '198.51.100.7',
      dst: '192.0.2.2',
      protocol: 17,
      payload: buildUdp('198.51.100.7', '192.0.2.2', 5060, 5060, Uint8Array.of(1)),
    });
    assert.deepEqual(parseWire(sip), { kind: 'other', src: '198.51.100.7', dst: '192.0.2.2', protocol: 17 });
    assert.equal(parseWire(sip, { encapPorts: [5060] }).kind, 'malformed'); // 1 octet, not 0xff
    const tcp = buildIpPacket({ src: '::1', dst: '::2', protocol: 6, payload: new Uint8Array(20) });
    assert.deepEqual(parseWire(tcp), { kind: 'other', src: '::1', dst: '::2', protocol: 6 });
  });

  it('malformed: ESP with SPI 0 or short, bad UDP checksum, truncated IP', () => {
    const esp0 = buildIpPacket({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 50, payload: new Uint8Array(16) });
    assert.deepEqual(parseWire(esp0), { kind: 'malformed', reason: 'esp: SPI 0' });
    const short = buildIpPacket({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 50, payload: Uint8Array.of(1, 2, 3) });
    assert.equal(parseWire(short).kind, 'malformed');
    const udp = buildUdp('10.0.0.1', '10.0.0.2', 4500, 4500, Uint8Array.of(0, 0, 0x10, 0, 0, 0, 0, 1));
    udp[7]! ^= 1;
    assert.deepEqual(parseWire(buildIpPacket({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, payload: udp })), {
      kind: 'malformed',
      reason: 'udp: bad checksum',
    });
    assert.equal(parseWire(new Uint8Array(10)).kind, 'malformed');
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (b) => void parseWire(b)));
  });

  it('parseInner reads an inner TCP segment and rejects a bad checksum', () => {
    const src = '10.0.0.1';
    const dst = '10.0.0.2';
    const tcp = new Uint8Array(24);
    tcp.set([0x13, 0xc6, 0x13, 0xc8], 0); // 5062 → 5064
    tcp[12] = 5 << 4; // data offset 5 words
    tcp.set(Buffer.from('SIP!'), 20);
    const c = transportChecksum(parseAddress(src)!, parseAddress(dst)!, 6, tcp);
    tcp[16] = c >> 8;
    tcp[17] = c & 0xff;
    assert.deepEqual(parseInner('transport', 6, tcp, { src, dst }), {
      src,
      dst,
      protocol: 6,
      srcPort: 5062,
      dstPort: 5064,
      payload: tcp.subarray(20),
    });
    const sa = params('transport', src, dst);
    const esp = sealToWire(sa, createOutbound(sa), { srcPort: 5062, dstPort: 5064, payload: tcp, protocol: 6 }).esp;
    const r = createInbound(sa).open(esp);
    assert.ok(r.ok && r.nextHeader === 6 && parseInner('transport', 6, r.payload, sa)?.srcPort === 5062);
    tcp[22]! ^= 1;
    assert.equal(parseInner('transport', 6, tcp, { src, dst }), undefined);
    assert.equal(parseInner('transport', 59, tcp, { src, dst }), undefined);
  });

  it('sealToWire refuses an outbound SA of another SPI', () => {
    const sa = params('transport', '10.0.0.1', '10.0.0.2');
    assert.throws(() => sealToWire({ ...sa, spi: 0x3000 }, createOutbound(sa), { srcPort: 1, dstPort: 2, payload: new Uint8Array(0) }), {
      code: 'ESP_BAD_INPUT',
    });
  });

  // sealToWire writes the inner headers straight into the ESP packet; what it seals must be what the
  // separate builders (buildUdp, buildIpPacket) give, octet for octet (same IV), in every mode and family.
  it('the in-place inner headers equal buildUdp/buildIpPacket octet for octet (property)', () => {
    const nullKeys = expandKeys(randomBytes(16), randomBytes(16), 'hmac-sha-1-96', 'null');
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
    const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatAddress(b));
    const addrs = fc.oneof(fc.tuple(v4, v4, v4, v4), fc.tuple(v6, v6, v6, v6), fc.tuple(v4, v4, v6, v6));
    fc.assert(
      fc.property(
        addrs,
        fc.constantFrom('transport', 'udp-enc-tunnel'),
        fc.constantFrom('aes-cbc', 'null'),
        fc.uint8Array({ maxLength: 1500 }),
        fc.nat(65535),
        fc.nat(65535),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        ([src, dst, innerSrc, innerDst], mode, ealg, payload, srcPort, dstPort, iv) => {
          const tunnel = mode === 'udp-enc-tunnel';
          if (!tunnel && src.includes(':') !== innerSrc.includes(':')) return; // transport has no inner addresses
          const k = ealg === 'null' ? nullKeys : keys;
          const sa = params(mode, src, dst, { ealg, keys: k, ...(tunnel ? { innerSrc, innerDst } : {}) });
          const ivFn = (n: number) => iv.subarray(0, n);
          const [s, d] = tunnel ? [innerSrc, innerDst] : [src, dst];
          const udp = buildUdp(s!, d!, srcPort, dstPort, payload);
          const inner = tunnel ? buildIpPacket({ src: s!, dst: d!, protocol: 17, payload: udp }) : udp;
          const nh = tunnel ? (s!.includes(':') ? 41 : 4) : 17;
          const want = createOutbound(sa, { iv: ivFn }).seal(inner, nh);
          const got = sealToWire(sa, createOutbound(sa, { iv: ivFn }), { srcPort, dstPort, payload }).esp;
          assert.equal(Buffer.from(got).toString('hex'), Buffer.from(want).toString('hex'));
          const r = createInbound(sa).open(got);
          assert.ok(r.ok);
          const seg = parseInner(mode, r.nextHeader, r.payload, { src, dst });
          assert.ok(seg && seg.src === formatAddress(parseAddress(s!)!) && seg.srcPort === srcPort && seg.dstPort === dstPort);
          assert.deepEqual(Buffer.from(seg.payload), Buffer.from(payload));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('writeAddress reads what parseAddress reads, and refuses what it refuses', () => {
    const samples = [
      '0.0.0.0',
      '255.255.255.255',
      '192.0.2.1',
      '01.2.3.4',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1..2.3',
      '1.2.3.4 ',
      '',
      '::1',
      '2001:db8::1',
      '::ffff:192.0.2.1',
      'fe80::1%eth0',
      'x',
      '1.2.3.-4',
      '1.2.3.04',
    ];
    const any = fc.oneof(
      fc.constantFrom(...samples),
      fc.stringMatching(/^[0-9.]{0,16}$/),
      fc.stringMatching(/^[0-9a-f:.]{0,40}$/),
      fc.tuple(fc.nat(300), fc.nat(300), fc.nat(300), fc.nat(300)).map((o) => o.join('.')),
    );
    fc.assert(
      fc.property(any, (s) => {
        const b = new Uint8Array(20).fill(0xee);
        const n = writeAddress(s, b, 2);
        const want = parseAddress(s);
        assert.equal(n, want?.length ?? 0, s);
        if (want) assert.deepEqual(b.subarray(2, 2 + n), want, s);
        else
          assert.ok(
            b.every((x) => x === 0xee),
            s,
          );
      }),
      { numRuns: 2000 },
    );
  });
});
