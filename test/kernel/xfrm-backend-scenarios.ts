// The scenarios of the xfrm backend VM test (run by xfrm-backend-guest.ts in the guest): full SA
// sets through the backend in two namespaces (transport and UDP-enc-tun, IPv4 and IPv6, several
// algorithm pairs), UDP and TCP over the kernel SAs, counters, rollback, refresh, reconcile, close.
import assert from 'node:assert/strict';
import type { PairOptions } from './xfrm-backend-peer.ts';
import type { Check, Peer } from './xfrm-backend-guest.ts';

interface Ctx {
  ue: Peer;
  pc: Peer;
  check: Check;
  sh: (cmd: string) => string;
  newPeer: (ns: string) => Peer;
}
interface Got {
  text: string;
  set?: string;
  sa: string;
  remote: { address: string; port: number };
  outerSrc: string;
  outerEncapSrcPort?: number;
}
interface Stats {
  name: string;
  spi: number;
  packets: number;
  bytes: number;
  replayDrops: number;
  integrityFailures: number;
  replayWindow: number;
  hardSeconds: number;
  seq: number;
}

const NS_UE = 'imsec-xfrm-ue';
const NS_PC = 'imsec-xfrm-pc';
const ip = (v6?: boolean) => ({ ue: v6 ? '2001:db8::10' : '192.0.2.10', pc: v6 ? '2001:db8::20' : '192.0.2.20' });
// xfrm-backend-peer.ts pairConfig ports: UE portC 50000+2i, portS 50001+2i; P-CSCF portC 5062, portS 5064.
const ports = (i: number) => ({ uc: 50000 + 2 * i, us: 50001 + 2 * i, pc: 5062, ps: 5064 });

/** One message from one peer's port to the other's, returning what the receiver saw. */
async function udp(
  from: Peer,
  to: Peer,
  fromPort: number,
  toAddr: string,
  toPort: number,
  text: string,
  set?: string,
): Promise<{ used: string; got: Got }> {
  const got = to.call<Got>('expect', { box: `udp:${toPort}`, timeoutMs: 8000 });
  const used = await from.call<string>('udpSend', { port: fromPort, to: { address: toAddr, port: toPort }, text, ...(set ? { set } : {}) });
  return { used, got: await got };
}

async function tcp(from: Peer, to: Peer, fromPort: number, toAddr: string, toPort: number, text: string): Promise<Got> {
  const got = to.call<Got>('expect', { box: `tcp:${toPort}`, timeoutMs: 10000 });
  await from.call('tcpSend', { port: fromPort, to: { address: toAddr, port: toPort }, text });
  return got;
}

const sip = (method: string, n: number) => `${method} sip:x SIP/2.0\r\nCSeq: ${n} ${method}\r\nContent-Length: 0\r\n\r\n`;

async function traffic(c: Ctx, label: string, pair: PairOptions, name: string, withTcp: boolean): Promise<void> {
  const { ue, pc, check } = c;
  const a = ip(pair.v6);
  const p = ports(pair.index ?? 0);
  await check(`${label}: install the set at both ends (4 SAs + 4 policies each)`, async () => {
    await ue.call('install', { name, role: 'ue', pair, expiresInS: 600 });
    await pc.call('install', { name, role: 'pcscf', pair, expiresInS: 600 });
  });
  await check(`${label}: UDP UE port_uc -> P-CSCF port_ps rides SA1 and arrives with its set`, async () => {
    await ue.call('udpOpen', { local: { address: a.ue, port: p.uc } });
    await ue.call('udpOpen', { local: { address: a.ue, port: p.us } });
    await pc.call('udpOpen', { local: { address: a.pc, port: p.ps } });
    await pc.call('udpOpen', { local: { address: a.pc, port: p.pc } });
    const r = await udp(ue, pc, p.uc, a.pc, p.ps, sip('REGISTER', 1));
    assert.equal(r.used, name);
    assert.equal(r.got.set, name);
    assert.equal(r.got.sa, 'SA1');
    assert.equal(r.got.text, sip('REGISTER', 1));
    if (pair.mode === 'udp-enc-tunnel') assert.equal(r.got.outerEncapSrcPort, 4500);
    return r.got;
  });
  await check(`${label}: UDP P-CSCF port_pc -> UE port_us (SA2) and UE port_us -> port_pc (SA4)`, async () => {
    const r2 = await udp(pc, ue, p.pc, a.ue, p.us, sip('OPTIONS', 2));
    assert.equal(r2.got.sa, 'SA2');
    const r4 = await udp(ue, pc, p.us, a.pc, p.pc, 'SIP/2.0 200 OK\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n');
    assert.equal(r4.got.sa, 'SA4');
  });
  if (withTcp) {
    await check(`${label}: TCP UE port_uc -> P-CSCF port_ps (SA1) and the answer on that connection (SA3)`, async () => {
      await pc.call('tcpOpen', { local: { address: a.pc, port: p.ps }, role: 'server' });
      await ue.call('tcpOpen', { local: { address: a.ue, port: p.uc }, role: 'client' });
      const req = await tcp(ue, pc, p.uc, a.pc, p.ps, sip('MESSAGE', 3));
      assert.equal(req.sa, 'SA1');
      assert.equal(req.text, sip('MESSAGE', 3));
      const resp = await tcp(pc, ue, p.ps, a.ue, p.uc, 'SIP/2.0 200 OK\r\nCSeq: 3 MESSAGE\r\nContent-Length: 0\r\n\r\n');
      assert.equal(resp.sa, 'SA3');
    });
    await check(`${label}: TCP P-CSCF port_pc -> UE port_us (SA2) and the answer (SA4)`, async () => {
      await ue.call('tcpOpen', { local: { address: a.ue, port: p.us }, role: 'server' });
      await pc.call('tcpOpen', { local: { address: a.pc, port: p.pc }, role: 'client' });
      const req = await tcp(pc, ue, p.pc, a.ue, p.us, sip('NOTIFY', 4));
      assert.equal(req.sa, 'SA2');
      const resp = await tcp(ue, pc, p.us, a.pc, p.pc, 'SIP/2.0 200 OK\r\nCSeq: 4 NOTIFY\r\nContent-Length: 0\r\n\r\n');
      assert.equal(resp.sa, 'SA4');
    });
  }
  if (pair.mode === 'udp-enc-tunnel' && !pair.v6) {
    await check(`${label}: the UE's NAT-keepalives (one 0xFF octet) leave its 4500 for the P-CSCF's 4500`, async () => {
      const cap = c.sh(
        `ip netns exec ${NS_PC} timeout 8 tcpdump -n -l -i pc0 -c 1 'udp and src port 4500 and dst port 4500 and udp[4:2] = 9 and udp[8] = 0xff' 2>/dev/null; echo "exit $?"`,
      );
      // tcpdump names the 1-octet 0xFF datagram on 4500 itself: "isakmp-nat-keep-alive".
      assert.match(cap, /192\.0\.2\.10\.4500 > 192\.0\.2\.20\.4500: (isakmp-nat-keep-alive|UDP, length 1)[\s\S]*exit 0/, cap);
      const counters = await ue.call<{ keepalivesSent: number }>('counters');
      assert.ok(counters.keepalivesSent > 0, JSON.stringify(counters));
      return cap.split('\n')[0];
    });
  }
  await check(`${label}: kernel counters: every SA carried packets, no drops (query and ip -s xfrm state)`, async () => {
    for (const peer of [ue, pc]) {
      const st = await peer.call<Stats[]>('query', { name });
      assert.equal(st.length, 4);
      for (const s of st) {
        // SA3 (ps -> uc) only carries the P-CSCF's TCP responses.
        if (withTcp || s.name !== 'SA3') assert.ok(s.packets > 0, `${peer.ns} ${s.name} packets ${s.packets}`);
        assert.equal(s.replayWindow, pair.replayWindow ?? 64, `${peer.ns} ${s.name} replay window`);
        assert.equal(s.integrityFailures + s.replayDrops, 0, `${peer.ns} ${s.name} drops`);
      }
    }
    const text = c.sh(`ip -n ${NS_PC} -s xfrm state`);
    assert.match(text, /lifetime current:\s*\n?\s*\d+\(bytes\), [1-9]\d*\(packets\)/);
    // Windows above 32 go in XFRMA_REPLAY_ESN_VAL (the legacy field shows 0 then).
    if (pair.replayWindow === 32) assert.match(text, /replay-window 32 /);
    else assert.match(text, /replay_window 64, bitmap-length 2/);
    return text
      .split('\n')
      .filter((l) => /proto esp|packets|replay-window|encap/.test(l))
      .slice(0, 8)
      .join(' | ');
  });
  await check(`${label}: remove the set at both ends leaves no SA or policy`, async () => {
    await ue.call('remove', { name });
    await pc.call('remove', { name });
    for (const ns of [NS_UE, NS_PC]) {
      assert.equal(c.sh(`ip -n ${ns} xfrm state`).trim(), '', `${ns} states`);
      assert.equal(c.sh(`ip -n ${ns} xfrm policy`).trim(), '', `${ns} policies`);
    }
  });
}

export async function scenarios(c: Ctx): Promise<void> {
  const { ue, pc, check, sh } = c;
  await check('create a backend in each namespace (reconcile on an empty SPD)', async () => {
    await ue.call('create', { keepaliveMs: 400 });
    await pc.call('create');
  });
  // Development aid: XFRM_VM_ONLY=nat runs one scenario.
  if (process.env.XFRM_VM_ONLY === 'nat') return natRebinding(c);
  await traffic(
    c,
    'transport IPv4 hmac-sha-1-96/aes-cbc',
    { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 0 },
    't4',
    true,
  );
  await traffic(c, 'transport IPv6 null/aes-gcm', { alg: 'null', ealg: 'aes-gcm', mode: 'transport', v6: true, index: 1 }, 't6', true);
  await traffic(
    c,
    'udp-enc-tunnel IPv4 hmac-sha-1-96/aes-cbc',
    { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel', index: 2 },
    'u4',
    true,
  );
  await traffic(
    c,
    'udp-enc-tunnel IPv6 null/aes-gcm',
    { alg: 'null', ealg: 'aes-gcm', mode: 'udp-enc-tunnel', v6: true, index: 3 },
    'u6',
    true,
  );
  await traffic(c, 'transport IPv4 aes-gmac/null', { alg: 'aes-gmac', ealg: 'null', mode: 'transport', index: 4 }, 'g4', false);
  await traffic(
    c,
    'transport IPv4 hmac-md5-96/des-ede3-cbc, replay window 32',
    { alg: 'hmac-md5-96', ealg: 'des-ede3-cbc', mode: 'transport', index: 5, replayWindow: 32 },
    'm4',
    false,
  );
  await traffic(c, 'transport IPv4 hmac-sha-1-96/null', { alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport', index: 6 }, 'n4', false);
  await sharedPair(c);
  await natRebinding(c);
  await check('a failed install (3rd SA collides with a foreign SA) rolls back and leaves the foreign SA alone', async () => {
    const pair: PairOptions = { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 9 };
    // SA3 (ps -> uc) is inbound at the UE: dst = UE, SPI = spi_uc = base + 1 (pairConfig).
    const spiUc = 0x10000 + 9 * 0x100 + 1;
    sh(
      `ip -n ${NS_UE} xfrm state add src 192.0.2.20 dst 192.0.2.10 proto esp spi ${spiUc} mode transport auth-trunc 'hmac(sha1)' 0x${'11'.repeat(20)} 96 enc 'cbc(aes)' 0x${'22'.repeat(16)}`,
    );
    const err = await ue.call('install', { name: 'bad', role: 'ue', pair }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    assert.ok(err, 'install must fail');
    assert.equal(err.code, 'XFRM_INSTALL_FAILED');
    assert.match(err.message, /NEWSA SA3 .*EEXIST/);
    assert.match(err.message, /rolled back/);
    const states = sh(`ip -n ${NS_UE} xfrm state`);
    assert.equal((states.match(/proto esp/g) ?? []).length, 1, states);
    assert.match(states, new RegExp(`spi 0x${spiUc.toString(16).padStart(8, '0')}`));
    assert.equal(sh(`ip -n ${NS_UE} xfrm policy`).trim(), '');
    sh(`ip -n ${NS_UE} xfrm state flush`);
    return err.message;
  });
  await check('refresh moves the kernel hard lifetime (UPDSA) and keeps the SAs', async () => {
    const pair: PairOptions = { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 10 };
    await ue.call('install', { name: 'life', role: 'ue', pair, expiresInS: 60 });
    const before = await ue.call<Stats[]>('query', { name: 'life' });
    assert.ok(
      before.every((s) => s.hardSeconds === 60),
      JSON.stringify(before),
    );
    await ue.call('lifetime', { name: 'life', expiresInS: 3600 });
    const after = await ue.call<Stats[]>('query', { name: 'life' });
    assert.ok(
      after.every((s) => s.hardSeconds >= 3599 && s.hardSeconds <= 3601),
      JSON.stringify(after),
    );
    assert.match(sh(`ip -n ${NS_UE} -s xfrm state`), /hard (3599|3600|3601)\(sec\)/);
    assert.match(sh(`ip -n ${NS_UE} xfrm policy`), /dir out/);
    await ue.call('remove', { name: 'life' });
    return after.map((s) => s.hardSeconds);
  });
  await reconcileAfterCrash(c);
  await check('allocateSpis gives SPIs >= 256 that are not live in the kernel', async () => {
    const spis = await ue.call<number[]>('allocate', { localIp: '192.0.2.10', n: 4 });
    assert.equal(new Set(spis).size, 4);
    for (const s of spis) assert.ok(s >= 256 && s <= 0xffffffff);
  });
  await check('close() leaves nothing of ours in ip xfrm state / policy', async () => {
    await ue.call('install', {
      name: 'end',
      role: 'ue',
      pair: { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel', index: 12 },
    });
    await pc.call('install', {
      name: 'end',
      role: 'pcscf',
      pair: { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel', index: 12 },
    });
    await ue.call('close');
    await pc.call('close');
    for (const ns of [NS_UE, NS_PC]) {
      assert.equal(sh(`ip -n ${ns} xfrm state`).trim(), '', `${ns} states`);
      assert.equal(sh(`ip -n ${ns} xfrm policy`).trim(), '', `${ns} policies`);
    }
  });
}

/** Re-registration keeping port_us: two sets share the pc<->us pair; sends pick or pin the set. */
async function sharedPair(c: Ctx): Promise<void> {
  const { ue, pc, check } = c;
  const a = ip(false);
  const p = ports(7);
  const pairA: PairOptions = { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 7 };
  const pairB: PairOptions = { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 8 };
  const uePortsB = { portC: ports(8).uc, portS: p.us };
  await check('shared port pair: old/current and temporary sets share pc<->us; sends follow the set asked for', async () => {
    for (const [peer, role] of [
      [ue, 'ue'],
      [pc, 'pcscf'],
    ] as const) {
      await peer.call('install', { name: 'A', role, pair: pairA });
      await peer.call('event', { name: 'A', event: 'authenticated' });
      await peer.call('install', { name: 'B', role, pair: pairB, uePorts: uePortsB });
    }
    await ue.call('udpOpen', { local: { address: a.ue, port: p.us } });
    await pc.call('udpOpen', { local: { address: a.pc, port: p.pc } });
    const viaA = await udp(pc, ue, p.pc, a.ue, p.us, sip('OPTIONS', 10));
    assert.deepEqual([viaA.used, viaA.got.set, viaA.got.sa], ['A', 'A', 'SA2'], 'current set A by default');
    const viaB = await udp(pc, ue, p.pc, a.ue, p.us, sip('OPTIONS', 11), 'B');
    assert.deepEqual([viaB.used, viaB.got.set, viaB.got.sa], ['B', 'B', 'SA2'], 'pinned to temporary set B');
    for (const peer of [ue, pc]) {
      await peer.call('event', { name: 'B', event: 'authenticated' });
      await peer.call('event', { name: 'A', event: 'superseded' });
    }
    const after = await udp(pc, ue, p.pc, a.ue, p.us, sip('OPTIONS', 12));
    assert.deepEqual([after.used, after.got.set], ['B', 'B'], 'B is current now');
    const back = await udp(ue, pc, p.us, a.pc, p.pc, 'SIP/2.0 200 OK\r\nCSeq: 12 OPTIONS\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual([back.used, back.got.set, back.got.sa], ['B', 'B', 'SA4']);
    for (const peer of [ue, pc]) {
      await peer.call('remove', { name: 'A' });
      assert.match(c.sh(`ip -n ${peer.ns} xfrm policy`), new RegExp(`sport ${p.pc}`), 'the shared policy stays for B');
      await peer.call('remove', { name: 'B' });
      assert.equal(c.sh(`ip -n ${peer.ns} xfrm policy`).trim(), '');
    }
  });
}

/** A crashed run's entries (same instance) go at the next reconcile; another instance's stay. */
async function reconcileAfterCrash(c: Ctx): Promise<void> {
  const { ue, check, sh, newPeer } = c;
  await check('reconcile deletes a crashed run of the same instance, keeps another instance and foreign entries', async () => {
    const crashed = newPeer(NS_UE);
    await crashed.call('create', { instance: 1 });
    await crashed.call('install', { name: 'c', role: 'ue', pair: { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 11 } });
    await crashed.kill();
    const other = newPeer(NS_UE);
    await other.call('create', { instance: 2 });
    await other.call('install', { name: 'o', role: 'ue', pair: { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 13 } });
    sh(
      `ip -n ${NS_UE} xfrm policy add src 198.51.100.1/32 dst 198.51.100.2/32 dir out tmpl src 198.51.100.1 dst 198.51.100.2 proto esp mode transport`,
    );
    await ue.call('install', { name: 'live', role: 'ue', pair: { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 14 } });
    const r = await ue.call<{ deletedSas: number; deletedPolicies: number }>('reconcile');
    assert.equal(r.deletedSas, 4);
    assert.equal(r.deletedPolicies, 4);
    const states = sh(`ip -n ${NS_UE} xfrm state`);
    assert.equal((states.match(/proto esp/g) ?? []).length, 8, 'instance 2 and the live set keep their SAs');
    assert.match(sh(`ip -n ${NS_UE} xfrm policy`), /198\.51\.100\.1/);
    await other.call('close');
    await other.exit();
    await ue.call('remove', { name: 'live' });
    sh(`ip -n ${NS_UE} xfrm policy flush`);
    assert.equal(sh(`ip -n ${NS_UE} xfrm state`).trim(), '');
    return r;
  });
}

/**
 * Annex M behind a NAT (spec digest §15A points 2 and 6), with nftables SNAT in the UE's namespace
 * rewriting its encapsulation port 4500 to 4600: the P-CSCF learns port_Uenc from the kernel's
 * XFRM_MSG_MAPPING, moves its outbound SAs there (UPDSA), and a new outer address re-adds the SAs
 * with their sequence numbers.
 */
async function natRebinding(c: Ctx): Promise<void> {
  const { ue, pc, check, sh } = c;
  const a = ip(false);
  const p = ports(15);
  const pair: PairOptions = { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel', index: 15 };
  await check('NAT: port_Uenc learnt from XFRM_MSG_MAPPING, setPeerEncap moves the outbound SAs (port, then address)', async () => {
    await ue.call('install', { name: 'nat', role: 'ue', pair });
    await pc.call('install', { name: 'nat', role: 'pcscf', pair });
    sh(`ip netns exec ${NS_UE} nft -f - <<'EOF'
table ip imsec_nat {
  chain post { type nat hook postrouting priority srcnat; udp sport 4500 snat to 192.0.2.10:4600; }
}
EOF`);
    try {
      await ue.call('udpOpen', { local: { address: a.ue, port: p.uc } });
      await ue.call('udpOpen', { local: { address: a.ue, port: p.us } });
      await pc.call('udpOpen', { local: { address: a.pc, port: p.ps } });
      await pc.call('udpOpen', { local: { address: a.pc, port: p.pc } });
      const r1 = await udp(ue, pc, p.uc, a.pc, p.ps, sip('REGISTER', 20));
      assert.equal(r1.got.sa, 'SA1');
      const pcEvents = await pc.call<{ kind: string; sa: string; newSport?: number }[]>('events');
      const diag = () => `events ${JSON.stringify(pcEvents)}\nconntrack:\n${sh(`ip netns exec ${NS_UE} conntrack -L 2>&1; true`)}`;
      assert.equal(r1.got.outerEncapSrcPort, 4600, `the mapped source port, from the kernel\n${diag()}`);
      assert.ok(
        pcEvents.some((e) => e.kind === 'mapping' && e.sa === 'SA1' && e.newSport === 4600),
        diag(),
      );
      await pc.call('setPeerEncap', { name: 'nat', peer: { address: a.ue, port: 4600 } });
      const states = sh(`ip -n ${NS_PC} xfrm state`);
      assert.equal((states.match(/dport 4600/g) ?? []).length, 2, `two outbound SAs now go to 4600:\n${states}`);
      assert.equal((states.match(/sport 4600/g) ?? []).length, 2, 'two inbound SAs expect 4600');
      const r2 = await udp(pc, ue, p.pc, a.ue, p.us, sip('OPTIONS', 21));
      assert.deepEqual([r2.got.set, r2.got.sa], ['nat', 'SA2']);
      const seqBefore = (await pc.call<Stats[]>('query', { name: 'nat' })).find((s) => s.name === 'SA2')!;
      await pc.call('setPeerEncap', { name: 'nat', peer: { address: '192.0.2.11', port: 4600 } });
      const moved = sh(`ip -n ${NS_PC} xfrm state`);
      assert.equal((moved.match(/dst 192\.0\.2\.11/g) ?? []).length, 2, moved);
      const seqMoved = (await pc.call<Stats[]>('query', { name: 'nat' })).find((s) => s.name === 'SA2')!;
      assert.equal(seqMoved.seq, seqBefore.seq, 'the re-added SA continues the sequence numbers');
      await pc.call('setPeerEncap', { name: 'nat', peer: { address: a.ue, port: 4600 } });
      const r3 = await udp(pc, ue, p.pc, a.ue, p.us, sip('OPTIONS', 22));
      assert.deepEqual([r3.got.set, r3.got.sa], ['nat', 'SA2']);
      return { mappedPort: r1.got.outerEncapSrcPort, seq: seqMoved.seq };
    } finally {
      sh(`ip netns exec ${NS_UE} nft delete table ip imsec_nat; true`);
      await ue.call('remove', { name: 'nat' });
      await pc.call('remove', { name: 'nat' });
    }
  });
}
