// Two userspace backends on loopback: a UE and a P-CSCF SA set in UDP-enc-tun mode, SIP bytes
// both ways through protected endpoints, and the drops that must happen (replay, unknown SPI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { UserspaceBackend } from './userspace.ts';
import { createSaSet, type SaSetConfig } from '../sa-set.ts';
import { expandKeys } from '../keys.ts';
import { fromHex } from '../../util/bytes.ts';
import type { ProtectedContext } from './backend.ts';
import { systemClock } from '../../util/clock.ts';
import { protectedTransport } from './sip-endpoint.ts';

const CK = fromHex('b40ba9a3c58b2a05bbf0d987b21bf8cb');
const IK = fromHex('f769bcd751044604127672711c6d3441');

function nextMessage(ep: {
  onMessage(h: (b: Uint8Array, c: ProtectedContext) => void): void;
}): Promise<{ text: string; ctx: ProtectedContext }> {
  return new Promise((resolve) => ep.onMessage((b, ctx) => resolve({ text: Buffer.from(b).toString(), ctx })));
}

async function pair(ip: string) {
  const ue = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock });
  const pc = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock });
  const [spiUc, spiUs] = ue.allocateSpis(ip, 2) as [number, number];
  const [spiPc, spiPs] = pc.allocateSpis(ip, 2) as [number, number];
  const base: Omit<SaSetConfig, 'role'> = {
    ue: { ip, portC: 31100, portS: 31101, spiC: spiUc, spiS: spiUs },
    pcscf: { ip, portC: 31200, portS: 31201, spiC: spiPc, spiS: spiPs },
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'aes-cbc'),
    mode: 'udp-enc-tunnel',
    encap: { uePort: ue.encapPort, pcscfPort: pc.encapPort },
  };
  const ueSet = createSaSet({ ...base, role: 'ue' });
  const pcSet = createSaSet({ ...base, role: 'pcscf' });
  await ue.install(ueSet);
  await pc.install(pcSet);
  return { ue, pc, ueSet, pcSet };
}

for (const ip of ['127.0.0.1', '::1']) {
  test(`UDP-enc-tun over ${ip}: a request UE→P-CSCF (SA1) and one P-CSCF→UE (SA2) arrive with their SA set`, async () => {
    const { ue, pc, ueSet, pcSet } = await pair(ip);
    try {
      const ps = await pc.openEndpoint({ address: ip, port: 31201 });
      const uc = await ue.openEndpoint({ address: ip, port: 31100 });
      const got = nextMessage(ps);
      const used = await uc.send(Buffer.from('MESSAGE sip:x SIP/2.0\r\n\r\n'), { address: ip, port: 31201 });
      assert.equal(used, ueSet);
      const m = await got;
      assert.equal(m.text, 'MESSAGE sip:x SIP/2.0\r\n\r\n');
      assert.equal(m.ctx.set, pcSet);
      assert.equal(m.ctx.sa.name, 'SA1');
      assert.deepEqual(m.ctx.remote, { address: ip, port: 31100 });
      assert.equal(m.ctx.outerEncapSrcPort, ue.encapPort);

      const us = await ue.openEndpoint({ address: ip, port: 31101 });
      const pcEp = await pc.openEndpoint({ address: ip, port: 31200 });
      const got2 = nextMessage(us);
      await pcEp.send(Buffer.from('OPTIONS sip:ue SIP/2.0\r\n\r\n'), { address: ip, port: 31101 });
      const m2 = await got2;
      assert.equal(m2.ctx.sa.name, 'SA2');
      assert.equal(m2.ctx.set, ueSet);
    } finally {
      await ue.close();
      await pc.close();
    }
  });
}

test('a replayed ESP-in-UDP packet is dropped and counted on the SA; an unknown SPI on the backend', async () => {
  const ip = '127.0.0.1';
  const drops: string[] = [];
  const pc = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock, onDrop: (r) => drops.push(r.drop) });
  const ue = await UserspaceBackend.create({
    localIp: ip,
    encapPort: 0,
    clock: systemClock,
    wireLog: (pkt, dir) => dir === 'out' && sent.push(pkt),
  });
  const sent: Uint8Array[] = [];
  const [spiPc, spiPs] = pc.allocateSpis(ip, 2) as [number, number];
  const base: Omit<SaSetConfig, 'role'> = {
    ue: { ip, portC: 31300, portS: 31301, spiC: 5000, spiS: 5001 },
    pcscf: { ip, portC: 31400, portS: 31401, spiC: spiPc, spiS: spiPs },
    alg: 'hmac-sha-1-96',
    ealg: 'null',
    keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'null'),
    mode: 'udp-enc-tunnel',
    encap: { uePort: ue.encapPort, pcscfPort: pc.encapPort },
  };
  const pcSet = createSaSet({ ...base, role: 'pcscf' });
  await pc.install(pcSet);
  await ue.install(createSaSet({ ...base, role: 'ue' }));
  const raw = createSocket('udp4');
  try {
    const ps = await pc.openEndpoint({ address: ip, port: 31401 });
    const got = nextMessage(ps);
    await (await ue.openEndpoint({ address: ip, port: 31300 })).send(Buffer.from('hello'), { address: ip, port: 31401 });
    await got;
    // Replay the same UDP payload (ESP) from a plain socket: the outer UDP payload starts after 28 octets.
    const esp = sent[0]!.subarray(28);
    await new Promise<void>((r) => raw.send(esp, pc.encapPort, ip, () => r()));
    const forged = Buffer.from(esp);
    forged.writeUInt32BE(0x12345678, 0);
    await new Promise<void>((r) => raw.send(forged, pc.encapPort, ip, () => r()));
    await new Promise<void>((r) => raw.send(Buffer.of(0xff), pc.encapPort, ip, () => r()));
    for (let i = 0; i < 50 && drops.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(drops, ['replay', 'unknown-spi']);
    assert.equal(pcSet.sas.SA1.counters.drops.replay, 1);
    assert.equal(pc.counters.unknownSpi, 1);
    assert.equal(pc.counters.keepalive, 1);
  } finally {
    raw.close();
    await ue.close();
    await pc.close();
  }
});

test('mod=trans without CAP_NET_RAW fails with an error that names the capability (or works as root)', async (t) => {
  const b = await UserspaceBackend.create({ localIp: '127.0.0.1', encapPort: 0, clock: systemClock });
  try {
    const set = createSaSet({
      role: 'ue',
      ue: { ip: '127.0.0.1', portC: 31500, portS: 31501, spiC: 6000, spiS: 6001 },
      pcscf: { ip: '127.0.0.1', portC: 31600, portS: 31601, spiC: 6002, spiS: 6003 },
      alg: 'hmac-sha-1-96',
      ealg: 'null',
      keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'null'),
      mode: 'transport',
    });
    if (process.getuid?.() === 0) {
      await b.install(set);
      t.diagnostic('running as root: the raw ESP socket opened');
    } else {
      await assert.rejects(b.install(set), /CAP_NET_RAW/);
    }
  } finally {
    await b.close();
  }
});

test('mod=trans over raw IP protocol 50 on loopback carries a request with its SA set (needs CAP_NET_RAW)', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('not root: raw ESP sockets need CAP_NET_RAW');
    return;
  }
  const ip = '127.0.0.1';
  const ue = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock });
  const pc = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock });
  try {
    const base: Omit<SaSetConfig, 'role'> = {
      ue: { ip, portC: 31700, portS: 31701, spiC: 7000, spiS: 7001 },
      pcscf: { ip, portC: 31800, portS: 31801, spiC: 7002, spiS: 7003 },
      alg: 'hmac-md5-96',
      ealg: 'des-ede3-cbc',
      keys: expandKeys(IK, CK, 'hmac-md5-96', 'des-ede3-cbc'),
      mode: 'transport',
    };
    const pcSet = createSaSet({ ...base, role: 'pcscf' });
    await ue.install(createSaSet({ ...base, role: 'ue' }));
    await pc.install(pcSet);
    const got = nextMessage(await pc.openEndpoint({ address: ip, port: 31801 }));
    await (
      await ue.openEndpoint({ address: ip, port: 31700 })
    ).send(Buffer.from('REGISTER sip:x SIP/2.0\r\n\r\n'), { address: ip, port: 31801 });
    const m = await got;
    assert.equal(m.text, 'REGISTER sip:x SIP/2.0\r\n\r\n');
    assert.equal(m.ctx.set, pcSet);
    assert.equal(m.ctx.sa.name, 'SA1');
    assert.equal(m.ctx.outerEncapSrcPort, undefined);
  } finally {
    await ue.close();
    await pc.close();
  }
});

test('a protected port has one owner: opening it twice throws, closing gives it back', async () => {
  const b = await UserspaceBackend.create({ localIp: '127.0.0.1', encapPort: 0, clock: systemClock });
  try {
    const ep = await b.openEndpoint({ address: '127.0.0.1', port: 31900 });
    await assert.rejects(b.openEndpoint({ address: '127.0.0.1', port: 31900 }), /already open/);
    ep.close();
    const again = await b.openEndpoint({ address: '127.0.0.1', port: 31900 });
    again.close();
  } finally {
    await b.close();
  }
});

test('NAT-keepalives (RFC 3948 §2.3/§4): the UE side sends 0xFF after the configured silence, ESP resets it; a P-CSCF set gets none; 0 = off', async () => {
  const ip = '127.0.0.1';
  const peer = createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, ip, () => r()));
  const got: { len: number; first: number; port: number; at: number }[] = [];
  peer.on('message', (m, rinfo) => got.push({ len: m.length, first: m[0]!, port: rinfo.port, at: Date.now() }));
  const mk = async (keepaliveMs: number) => UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock, keepaliveMs });
  const ue = await mk(150);
  const pcSide = await mk(150);
  const off = await mk(0);
  const cfg = (role: 'ue' | 'pcscf', spi: number, encap: { uePort: number; pcscfPort: number }) =>
    createSaSet({
      role,
      ue: { ip, portC: 32000 + spi, portS: 32100 + spi, spiC: 8000 + spi, spiS: 8100 + spi },
      pcscf: { ip, portC: 32200 + spi, portS: 32300 + spi, spiC: 8200 + spi, spiS: 8300 + spi },
      alg: 'hmac-sha-1-96',
      ealg: 'null',
      keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'null'),
      mode: 'udp-enc-tunnel',
      encap,
    });
  const peerPort = peer.address().port;
  try {
    const ueSet = cfg('ue', 1, { uePort: ue.encapPort, pcscfPort: peerPort });
    await ue.install(ueSet);
    // The P-CSCF role sends none, even with an interval (the peer here stands in for a UE).
    await pcSide.install(cfg('pcscf', 2, { uePort: peerPort, pcscfPort: pcSide.encapPort }));
    await off.install(cfg('ue', 3, { uePort: off.encapPort, pcscfPort: peerPort }));
    await new Promise((r) => setTimeout(r, 400));
    const fromUe = got.filter((g) => g.port === ue.encapPort);
    assert.ok(fromUe.length >= 1 && fromUe.length <= 3, `${fromUe.length} keepalives in 400 ms at 150 ms`);
    assert.ok(
      fromUe.every((g) => g.len === 1 && g.first === 0xff),
      'one octet 0xFF',
    );
    assert.equal(ue.counters.keepalivesSent, fromUe.length);
    assert.equal(got.filter((g) => g.port !== ue.encapPort).length, 0, 'no keepalive from the P-CSCF role or with keepaliveMs 0');
    assert.equal(pcSide.counters.keepalivesSent, 0);
    assert.equal(off.counters.keepalivesSent, 0);
    // Traffic every 60 ms keeps the socket from ever being silent for 150 ms: no keepalive.
    const ep = await ue.openEndpoint({ address: ip, port: 32001 });
    const before = ue.counters.keepalivesSent!;
    for (let i = 0; i < 6; i++) {
      await ep.send(Buffer.from('x'), { address: ip, port: 32301 });
      await new Promise((r) => setTimeout(r, 60));
    }
    assert.equal(ue.counters.keepalivesSent, before, 'no keepalive while ESP flows');
    // Removing the last set stops them.
    ueSet.apply('deleted');
    await ue.remove(ueSet);
    const n = ue.counters.keepalivesSent;
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(ue.counters.keepalivesSent, n, 'no SA set, no keepalives');
  } finally {
    peer.close();
    await ue.close();
    await pcSide.close();
    await off.close();
  }
});

test('issue 10 §4: a throwing handler or drop hook costs one datagram; the next ESP packet is delivered', async () => {
  const { boundaryCounts, setBoundaryReporter } = await import('../../util/guard.ts');
  const prev = setBoundaryReporter(() => {});
  const ip = '127.0.0.1';
  let dropHookCalls = 0;
  const pcHook = await UserspaceBackend.create({
    localIp: ip,
    encapPort: 0,
    clock: systemClock,
    onDrop: () => {
      dropHookCalls++;
      throw new Error('drop hook bug');
    },
  });
  const { ue, pc, pcSet } = await pair(ip);
  try {
    // The drop hook: garbage ESP (unknown SPI) to a backend whose hook throws, twice.
    const junk = createSocket('udp4');
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((r) =>
        junk.send(Buffer.from([0, 0, 0x12, 0x34, 0, 0, 0, 1, ...new Array(40).fill(7)]), pcHook.encapPort, ip, () => r()),
      );
    }
    junk.close();
    const deadline = Date.now() + 2000;
    while (dropHookCalls < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dropHookCalls, 2, 'the second datagram was still handled');

    // A protected endpoint with a handler that throws on the first message, and one that records.
    const ps = await pc.openEndpoint({ address: ip, port: 31201 });
    const seen: string[] = [];
    let first = true;
    ps.onMessage(() => {
      if (first) {
        first = false;
        throw new TypeError('handler bug');
      }
    });
    ps.onMessage((b, ctx) => {
      assert.equal(ctx.set, pcSet);
      seen.push(Buffer.from(b).toString());
    });
    const before = boundaryCounts()['esp.deliver'] ?? 0;
    const uc = await ue.openEndpoint({ address: ip, port: 31100 });
    await uc.send(Buffer.from('one'), { address: ip, port: 31201 });
    await uc.send(Buffer.from('two'), { address: ip, port: 31201 });
    while (seen.length < 2 && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, ['one', 'two'], 'the other handler got both, the throwing one lost nothing but its own call');
    assert.equal((boundaryCounts()['esp.deliver'] ?? 0) - before, 1);
  } finally {
    setBoundaryReporter(prev);
    await pcHook.close();
    await ue.close();
    await pc.close();
  }
});

test('post (the transaction layer path): a message arrives over the picked set with no Promise per send; no SA for the ports reaches the sink', async () => {
  const ip = '127.0.0.1';
  const { ue, pc, pcSet } = await pair(ip);
  try {
    const ps = await pc.openEndpoint({ address: ip, port: 31201 });
    const uc = await ue.openEndpoint({ address: ip, port: 31100 });
    const failed: Error[] = [];
    const sink = { sendFailed: (e: Error) => failed.push(e) };
    const got = nextMessage(ps);
    const t = protectedTransport(uc);
    assert.equal(t.post!(Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n'), { address: ip, port: 31201 }, sink), undefined);
    const m = await got;
    assert.equal(m.text, 'OPTIONS sip:x SIP/2.0\r\n\r\n');
    assert.equal(m.ctx.set, pcSet);
    assert.equal(m.ctx.sa.name, 'SA1');
    t.post!(Buffer.from('x'), { address: ip, port: 39999 }, sink);
    assert.equal((failed[0] as { code?: string } | undefined)?.code, 'BACKEND_NO_SA');
    assert.equal(failed.length, 1);
    assert.equal(protectedTransport(uc, { trace: () => {} }).post, undefined, 'a traced transport keeps the send path');
  } finally {
    await ue.close();
    await pc.close();
  }
});

test('a send that names no set picks current > temporary > old, newest first, whether installed before or after the first such send; removed sets never', async () => {
  const ip = '127.0.0.1';
  const b = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock });
  try {
    let spi = 0x5000;
    const mk = () =>
      createSaSet({
        role: 'ue',
        ue: { ip, portC: 31300, portS: 31301, spiC: spi++, spiS: spi++ },
        pcscf: { ip, portC: 31400, portS: 31401, spiC: spi++, spiS: spi++ },
        alg: 'hmac-sha-1-96',
        ealg: 'null',
        keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'null'),
        mode: 'udp-enc-tunnel',
      });
    const local = { address: ip, port: 31300 };
    const to = { address: ip, port: 31401 };
    const [t1, c1, c2] = [mk(), mk(), mk()];
    c1.apply('authenticated');
    c2.apply('authenticated');
    await b.install(c1);
    await b.install(t1);
    // The flow index is built here, from the sets installed so far.
    assert.equal(b.pickSet(local, to), c1, 'current before temporary');
    await b.install(c2);
    assert.equal(b.pickSet(local, to), c2, 'of two current sets, the one installed last');
    await b.install(c1); // re-installing keeps its place
    assert.equal(b.pickSet(local, to), c2);
    c2.apply('superseded');
    assert.equal(b.pickSet(local, to), c1, 'an old set comes after current ones');
    await b.remove(c1);
    assert.equal(b.pickSet(local, to), t1);
    await b.remove(t1);
    assert.equal(b.pickSet(local, to), c2);
    await b.remove(c2);
    assert.throws(() => b.pickSet(local, to), /no live SA set/);
    assert.throws(() => b.pickSet(local, { address: ip, port: 31400 + 9 }), /no live SA set/);
  } finally {
    await b.close();
  }
});

test('setPeerEncap: a learnt peer equal to the configured one is not kept (no NAT); another is used until the set goes', async () => {
  const ip = '127.0.0.1';
  const { ue, pc, pcSet } = await pair(ip);
  try {
    const configured = pc.peerEncapOf(pcSet);
    assert.deepEqual(configured, { address: ip, port: ue.encapPort });
    pc.setPeerEncap(pcSet, { address: ip, port: 40123 });
    assert.deepEqual(pc.peerEncapOf(pcSet), { address: ip, port: 40123 });
    pc.setPeerEncap(pcSet, { address: ip, port: ue.encapPort });
    assert.deepEqual(pc.peerEncapOf(pcSet), configured);
  } finally {
    await ue.close();
    await pc.close();
  }
});
