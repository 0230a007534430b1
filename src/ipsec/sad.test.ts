// The SAD: install/remove, SPI uniqueness per destination, SPI allocation, the inbound pipeline
// (every drop reason, counted where the spec digest says) and send, for all pairs, modes, families.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allValidPairs } from './algorithms.ts';
import { IpsecError } from './errors.ts';
import { buildIpPacket, buildUdp, NAT_KEEPALIVE, parseWire, sealToWire } from './esp/index.ts';
import { createSaSet } from './sa-set.ts';
import { Sad } from './sad.ts';
import type { SaParams } from './types.ts';
import { exchange, makePair, pairConfig, sipRequest, tamper } from '../../test/support/ims-fixture.ts';

const sha = { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' } as const;

function installed(o: Parameters<typeof makePair>[0] = { ...sha, mode: 'transport' }) {
  const pair = makePair(o);
  const sads = { ue: new Sad(), pcscf: new Sad() };
  sads.ue.install(pair.ue);
  sads.pcscf.install(pair.pcscf);
  return { ...pair, sads };
}

test('every valid pair, both modes, IPv4 and IPv6: all four SAs deliver the inner datagram with its set and SA', () => {
  for (const { alg, ealg } of allValidPairs()) {
    for (const mode of ['transport', 'udp-enc-tunnel'] as const) {
      for (const v6 of [false, true]) {
        const { ue, pcscf, sads } = installed({ alg, ealg, mode, v6 });
        for (const pkt of exchange({ ue, pcscf }, 1, sads)) {
          const to = pkt.from === 'ue' ? sads.pcscf : sads.ue;
          const r = to.receive(pkt.ip);
          assert.ok(r.ok, `${alg}/${ealg} ${mode} v6=${v6} ${pkt.saName}: ${JSON.stringify(r.ok ? '' : r.drop)}`);
          assert.equal(r.sa.name, pkt.saName);
          assert.equal(r.set, pkt.from === 'ue' ? pcscf : ue);
          assert.deepEqual(Buffer.from(r.inner.payload), Buffer.from(pkt.payload));
          assert.equal(r.inner.protocol, 17);
          assert.equal(r.outerEncapSrcPort, mode === 'udp-enc-tunnel' ? 4500 : undefined);
        }
        assert.equal(pcscf.sas.SA1.counters.packets, 2);
      }
    }
  }
});

test('drops: tampered → icv, repeated → replay, both counted on the SA; the window is untouched by the forgery', () => {
  const { ue, pcscf, sads } = installed();
  const [reg1, reg2] = exchange({ ue, pcscf }, 1, sads);
  assert.deepEqual(sads.pcscf.receive(tamper(reg1!.ip)), { ok: false, drop: 'icv', spi: reg1!.spi, seq: 1, set: pcscf, sa: pcscf.sas.SA1 });
  assert.equal(pcscf.sas.SA1.seq, 0, 'RFC 4303 §3.4.3: window moves only after the ICV verified');
  assert.ok(sads.pcscf.receive(reg2!.ip).ok);
  assert.ok(sads.pcscf.receive(reg1!.ip).ok, 'seq 1 is still inside the window');
  const again = sads.pcscf.receive(reg1!.ip);
  assert.equal(!again.ok && again.drop, 'replay');
  assert.deepEqual([pcscf.sas.SA1.counters.drops.icv, pcscf.sas.SA1.counters.drops.replay], [1, 1]);
});

test('unknown SPI is counted on the SAD; a deleted set no longer matches; its SPIs become free', () => {
  const { ue, pcscf, sads } = installed();
  const [reg] = exchange({ ue, pcscf }, 1, sads);
  const r = new Sad().receive(reg!.ip);
  assert.deepEqual(r, { ok: false, drop: 'unknown-spi', spi: 0x10004 });
  pcscf.apply('deleted');
  assert.equal(!sads.pcscf.receive(reg!.ip).ok && sads.pcscf.counters.unknownSpi, 1);
  const again = makePair({ ...sha, mode: 'transport' });
  sads.pcscf.install(again.pcscf); // same SPIs: legal once the old set is dead
  sads.pcscf.remove(again.pcscf);
  assert.equal(sads.pcscf.sets.length, 1);
});

test("hard-expired sets never match (clock injected); the SAD changes no state and drops nothing: expiry is the owner's", () => {
  let now = 0;
  const pair = makePair({ ...sha, mode: 'transport' });
  const sad = new Sad({ now: () => now });
  pair.pcscf.setLifetime({ expiresAt: 1000, softExpiresAt: 500 });
  sad.install(pair.pcscf);
  const [reg1, reg2] = exchange(pair, 1, { ue: new Sad(), pcscf: new Sad() });
  now = 600;
  assert.ok(sad.receive(reg1!.ip).ok);
  assert.equal(pair.pcscf.softExpired, false);
  now = 1000;
  const r = sad.receive(reg2!.ip);
  assert.equal(!r.ok && r.drop, 'unknown-spi');
  sad.allocateSpis('192.0.2.20', 2);
  sad.install(makePair({ ...sha, mode: 'transport', v6: true }).pcscf);
  assert.equal(pair.pcscf.state, 'temporary', 'issue 10 §2: a second owner of the lifecycle leaked sets');
  assert.equal(sad.sets.length, 2);
});

test('SPI uniqueness per destination: a second live set with the same inbound SPI is refused', () => {
  const sad = new Sad();
  sad.install(makePair({ ...sha, mode: 'transport' }).pcscf);
  assert.throws(
    () => sad.install(makePair({ ...sha, mode: 'transport' }).pcscf),
    (e) => e instanceof IpsecError && e.code === 'IPSEC_SPI_IN_USE',
  );
  sad.install(makePair({ ...sha, mode: 'transport', v6: true }).pcscf); // other destination address: fine
});

test('allocateSpis: distinct, in 256..2^32-1, avoiding live inbound SPIs of that destination', () => {
  const values = [0x10003 - 256, 0x10003 - 256, 0, 0xffffffff];
  const sad = new Sad({ randomUint32: () => values.shift() ?? 7 });
  sad.install(makePair({ ...sha, mode: 'transport' }).pcscf);
  assert.deepEqual(sad.allocateSpis('192.0.2.20', 2), [256, 256 + (0xffffffff % (2 ** 32 - 256))]);
  const real = new Sad().allocateSpis('2001:db8::20', 50);
  assert.equal(new Set(real).size, 50);
  assert.ok(real.every((s) => s >= 256 && s <= 0xffffffff));
});

test('the P-CSCF accepts the UE UDP response over SA1 (uc→ps) and over SA4 (us→pc) (spec digest §6.2)', () => {
  const { ue, pcscf, sads } = installed();
  const c = ue.config;
  const viaSa1 = sads.ue.send(ue, c.ue.portC, c.pcscf.portS, sipRequest('MESSAGE', 9));
  const viaSa4 = sads.ue.send(ue, c.ue.portS, c.pcscf.portC, sipRequest('MESSAGE', 10));
  const r1 = sads.pcscf.receive(viaSa1.ip);
  const r4 = sads.pcscf.receive(viaSa4.ip);
  assert.ok(r1.ok && r1.sa.name === 'SA1' && r4.ok && r4.sa.name === 'SA4');
  assert.throws(
    () => sads.ue.send(ue, c.ue.portC, c.pcscf.portC, sipRequest('MESSAGE', 11)),
    (e) => e instanceof IpsecError && e.code === 'IPSEC_NO_SA_FOR_PORTS',
  );
  ue.apply('deleted');
  assert.throws(
    () => sads.ue.send(ue, c.ue.portC, c.pcscf.portS, sipRequest('MESSAGE', 12)),
    (e) => e instanceof IpsecError && e.code === 'IPSEC_SA_DELETED',
  );
});

test('selector: an authentic packet with ports or inner address the SA does not carry is dropped as selector', () => {
  const { ue, pcscf, sads } = installed();
  const sa1 = ue.sas.SA1;
  const wrongPorts = sealToWire(sa1.params, sa1.outbound(), { srcPort: 50000, dstPort: 5062, payload: sipRequest('REGISTER', 1) });
  const r = sads.pcscf.receive(wrongPorts.ip);
  assert.equal(!r.ok && r.drop, 'selector');
  assert.equal(pcscf.sas.SA1.counters.drops.selector, 1);
  // Tunnel: the inner source must be the UE's (private) address the P-CSCF learnt.
  const t = installed({ ...sha, mode: 'udp-enc-tunnel', ueInnerIp: '10.0.0.7' });
  // A set's SaParams read through getters: copy the fields by name (a spread copies only spi and ports).
  const p1 = t.ue.sas.SA1.params;
  const forged: SaParams = {
    spi: p1.spi,
    src: p1.src,
    dst: p1.dst,
    srcPort: p1.srcPort,
    dstPort: p1.dstPort,
    mode: p1.mode,
    alg: p1.alg,
    ealg: p1.ealg,
    keys: p1.keys,
    ...(p1.encap && { encap: p1.encap }),
    innerSrc: '10.0.0.8',
  };
  const spoof = sealToWire(forged, t.ue.sas.SA1.outbound(), {
    srcPort: 50000,
    dstPort: 5064,
    payload: sipRequest('REGISTER', 2),
  });
  const s = t.sads.pcscf.receive(spoof.ip);
  assert.equal(!s.ok && s.drop, 'selector');
});

test('framing is policy: ESP-in-UDP for a transport SA (and plain ESP for a tunnel SA) is a selector drop', () => {
  const { ue, pcscf, sads } = installed();
  const [reg] = exchange({ ue, pcscf }, 1, sads);
  const w = parseWire(reg!.ip);
  assert.equal(w.kind, 'esp');
  const r = sads.pcscf.receiveEsp({
    src: '192.0.2.10',
    dst: '192.0.2.20',
    encap: { srcPort: 4500, dstPort: 4500 },
    esp: w.kind === 'esp' ? w.esp : new Uint8Array(),
  });
  assert.equal(!r.ok && r.drop, 'selector');
  assert.equal(pcscf.sas.SA1.seq, 0);
});

test('Annex M behind a NAT: inner source is the private address, outer the public one; port_Uenc is reported', () => {
  const c = pairConfig({ ...sha, mode: 'udp-enc-tunnel' });
  const uePriv = '10.0.0.7';
  const ueSet = createSaSet({ ...c, role: 'ue', ue: { ...c.ue, ip: uePriv } }); // the UE's own view
  const pSet = createSaSet({ ...c, role: 'pcscf', ue: { ...c.ue, innerIp: uePriv } }); // public outer, private inner
  const pSad = new Sad();
  pSad.install(pSet);
  const sent = new Sad().send(ueSet, c.ue.portC, c.pcscf.portS, sipRequest('REGISTER', 1));
  // The NAT rewrites the outer source address and the encapsulation source port.
  const r = pSad.receiveEsp({ src: c.ue.ip, dst: c.pcscf.ip, encap: { srcPort: 31999, dstPort: 4500 }, esp: sent.udpPayload });
  assert.ok(r.ok);
  assert.deepEqual([r.inner.src, r.outerSrc, r.outerEncapSrcPort], [uePriv, c.ue.ip, 31999]);
});

test('keepalives are swallowed and counted; non-ESP marker and unrelated traffic are non-esp; garbage is malformed', () => {
  const sad = new Sad({ encapPorts: [5100] });
  const udp = (dport: number, payload: Uint8Array) =>
    buildIpPacket({
      src: '192.0.2.10',
      dst: '192.0.2.20',
      protocol: 17,
      payload: buildUdp('192.0.2.10', '192.0.2.20', 33000, dport, payload),
    });
  assert.deepEqual(sad.receive(udp(4500, NAT_KEEPALIVE)), { ok: false, drop: 'keepalive' });
  assert.deepEqual(sad.receive(udp(5100, NAT_KEEPALIVE)), { ok: false, drop: 'keepalive' });
  assert.deepEqual(sad.receive(udp(4500, Uint8Array.of(0, 0, 0, 0, 1, 2, 3))), { ok: false, drop: 'non-esp' });
  assert.deepEqual(sad.receive(udp(5060, sipRequest('OPTIONS', 1))), { ok: false, drop: 'non-esp' });
  assert.deepEqual(sad.receive(Uint8Array.of(1, 2, 3)), { ok: false, drop: 'malformed' });
  assert.deepEqual(sad.counters, { unknownSpi: 0, malformed: 1, keepalive: 2, nonEsp: 2 });
});

test('fuzz: receive never throws, whatever the bytes', () => {
  const { ue, pcscf, sads } = installed({ ...sha, mode: 'udp-enc-tunnel' });
  const seeds = exchange({ ue, pcscf }, 1, sads).map((p) => p.ip);
  const mutated = fc
    .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat())
    .map(([s, flips, cut]) => {
      const b = new Uint8Array(s);
      for (const [i, x] of flips) b[i % b.length] = x;
      return b.subarray(0, cut % (b.length + 1));
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated), (bytes) => {
      sads.pcscf.receive(bytes);
      sads.ue.receive(bytes);
    }),
    { numRuns: 3000 },
  );
});
