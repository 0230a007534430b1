// Annex M through a real NAT (nftables masquerade in a namespace; 33.203 Annex M, 24.229 F, RFC 3948):
// NAT detection and mod=UDP-enc-tun, the public Contact, port_Uenc learnt from traffic, MESSAGE both
// ways, re-/de-registration, two UEs on one port, keepalives against a short UDP timeout, the
// refusal without a UDP-enc-tun offer, and a capture on the NAT's public side that tshark decrypts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentClient } from '../../src/cli/demo/agent-protocol.ts';
import type { SaRow } from '../../src/cli/demo/nat-common.ts';
import { buildNatLab, type NatLab, type StopCapture } from '../../src/lab/index.ts';
import { isTrue, tsharkFields, tsharkMissing } from '../support/tshark.ts';
import { eventually, impiOf, impuOf, registration, skipNoLab, sleep, startNet, startUes, ueStatus, type ProcResult } from './support.ts';

const UDP_TIMEOUT_S = 3;

describe('Annex M through a NAT (IPv4, masquerade)', { skip: skipNoLab, timeout: 150_000 }, () => {
  let lab: NatLab;
  let net: AgentClient;
  let ueA: AgentClient;
  let dir: string;
  let stopCapture: StopCapture | undefined;
  const pcap = () => join(dir, 'public-side.pcap');
  const keylog = () => join(dir, 'esp_sa');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'imsec-nat-'));
    lab = await buildNatLab({ ues: 3, udpTimeoutS: UDP_TIMEOUT_S });
    net = await startNet(lab);
    ueA = await startUes(lab, 0, { first: 1 }); // encapsulation port 4500, SIP 5060, keepalive 1 s
  });
  after(async () => {
    await stopCapture?.().catch(() => {});
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('1-3: NAT detected on the first REGISTER, mod=UDP-enc-tun, public Contact, port_Uenc from traffic; MESSAGE both ways, re-register, de-register', async (t) => {
    stopCapture = await lab.capture(lab.nat.ns, lab.nat.publicIface, 'udp', pcap());
    const [reg] = await ueA.call<ProcResult[]>('register');
    assert.ok(reg?.ok, JSON.stringify(reg));
    t.diagnostic(`registration through the NAT: ${reg.ms} ms`);

    // 24.229 F.1: the P-CSCF compared the top Via (private) with the packet source (the NAT's public address).
    const nat = await net.waitEvent('pcscf:nat-detected', (e) => e.impi === impiOf(1));
    assert.equal(nat.via, `${lab.ue[0]!.ip}:5060`);
    assert.deepEqual(nat.source, { address: lab.nat.publicIp, port: 5060 });
    assert.equal(nat.differs, 'address');

    const view = (await registration(net, 1))!;
    assert.equal(view.state, 'registered');
    assert.equal(view.nat, true);
    assert.equal(view.ue.ip, '203.0.113.1', 'the P-CSCF knows the UE by the NAT public address');
    assert.equal(view.ue.innerIp, lab.ue[0]!.ip, 'inner (selector) address = the private one (§15A point 4)');
    // port_Uenc = what the NAT really mapped the UE's encapsulation socket to (conntrack's reply tuple).
    const ct = (await lab.conntrackList()).find((e) => e.proto === 'udp' && e.orig.src === lab.ue[0]!.ip && e.orig.sport === 4500);
    assert.ok(ct, 'a conntrack entry for the UE encapsulation socket');
    assert.deepEqual(view.ue.encap, { address: lab.nat.publicIp, port: ct.reply.dport });
    assert.match(
      view.contact ?? '',
      /^sip:001010000000001@203\.0\.113\.1:\d+$/,
      'the protected REGISTER carried the public address (24.229 F.2.1.2.2)',
    );
    assert.ok(view.sets.every((s) => s.sas.every((sa) => sa.mode === 'udp-enc-tunnel')));
    const learnt = await net.waitEvent('pcscf:nat-mapping', (e) => e.impi === impiOf(1));
    assert.equal(learnt.followed, true);

    const st = (await ueStatus(ueA)).status;
    assert.deepEqual(st.publicAddress, { address: lab.nat.publicIp, port: 5060 }, 'learnt from the 401 Via received/rport');
    assert.equal(st.nat.behindNat, true);
    assert.equal(st.sets[0]?.mode, 'udp-enc-tunnel');

    assert.equal((await ueA.call<{ status: number }>('message')).status, 200, 'MESSAGE UE → network');
    const down = await net.call<{ status: number }>('message', { impu: impuOf(1), text: 'network to UE 1' });
    assert.equal(down.status, 200, `network-initiated MESSAGE through the NAT: ${JSON.stringify(down)}`);
    assert.ok((await ueA.call<string[]>('received', { ue: 0 })).includes('network to UE 1'));

    const [rr] = await ueA.call<ProcResult[]>('reregister');
    assert.ok(rr?.ok, JSON.stringify(rr));
    const after1 = await eventually(
      'one set at the P-CSCF after re-registration',
      () => registration(net, 1),
      (v) => v?.sets.length === 1,
    );
    assert.notEqual(after1!.sets[0]!.id, view.sets[0]!.id, 'a new SA set');
    assert.deepEqual(after1!.ue.encap, view.ue.encap, 'the new set went straight to the known mapping');
    assert.equal((await ueA.call<{ status: number }>('message')).status, 200);
    assert.equal((await net.call<{ status: number }>('message', { impu: impuOf(1), text: 'after re-registration' })).status, 200);

    const [dr] = await ueA.call<ProcResult[]>('deregister');
    assert.ok(dr?.ok, JSON.stringify(dr));
    await eventually(
      'registration gone at the P-CSCF',
      () => registration(net, 1),
      (v) => v === undefined,
    );
    assert.equal((await ueStatus(ueA)).status.sets.length, 0, 'no SA set left at the UE');
    await stopCapture();
    stopCapture = undefined;
    await net.call('keylog', { path: keylog() });
  });

  test('7: on the public side of the NAT, after the 401 every UE ⇄ P-CSCF message is ESP-in-UDP, and tshark decrypts and authenticates all of it', async (t) => {
    const why = tsharkMissing();
    if (why) return t.skip(why);
    const records = readFileSync(keylog(), 'utf8')
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('"'));
    assert.equal(records.length, 8, 'two SA sets (registration and re-registration), four SAs each');
    assert.ok(
      records.every((r) => r.includes('"203.0.113.1"') && r.includes('"203.0.113.10"')),
      'esp_sa records name the addresses seen on this wire',
    );
    const frames = tsharkFields(
      pcap(),
      [
        '-2',
        '-o',
        'esp.enable_encryption_decode:TRUE',
        '-o',
        'esp.enable_authentication_check:TRUE',
        ...records.flatMap((r) => ['-o', `uat:esp_sa:${r}`]),
      ],
      [
        'frame.number',
        'ip.src',
        'ip.dst',
        'ip.flags.mf',
        'ip.reassembled_in',
        'udp.srcport',
        'udp.dstport',
        'udp.length',
        'esp.spi',
        'esp.icv_good',
        'sip.Method',
        'sip.Status-Code',
      ],
    );
    const f = (m: Map<string, string[]>, k: string) => m.get(k) ?? [];
    const show = (m: Map<string, string[]>) => [...m].map(([k, v]) => `${k}=${v.join('|')}`).join(' ');
    const ips = new Set(frames.flatMap((m) => [f(m, 'ip.src')[0], f(m, 'ip.dst')[0]]));
    assert.deepEqual([...ips].sort(), ['203.0.113.1', '203.0.113.10'], 'only public addresses on this side of the NAT');
    // A protected REGISTER (long Security-Client) exceeds the MTU: the first IP fragment carries no UDP;
    // tshark reassembles it into the frame of the last fragment, which is checked like any other.
    const frags = frames.filter((m) => isTrue(f(m, 'ip.flags.mf')[0]));
    const whole = frames.filter((m) => !isTrue(f(m, 'ip.flags.mf')[0]));
    const wholeNumbers = new Set(whole.map((m) => f(m, 'frame.number')[0]));
    assert.ok(
      frags.every((m) => wholeNumbers.has(f(m, 'ip.reassembled_in')[0])),
      `every IP fragment is reassembled: ${frags.map(show).join('; ')}`,
    );
    frames.splice(0, frames.length, ...whole);
    const i401 = frames.findIndex((m) => f(m, 'sip.Status-Code')[0] === '401' && f(m, 'esp.spi').length === 0);
    assert.ok(i401 > 0, 'the unprotected 401 is on the wire');
    const plainSip = frames.filter((m) => f(m, 'esp.spi').length === 0 && f(m, 'sip.Method').length + f(m, 'sip.Status-Code').length > 0);
    // UDP retransmissions of the REGISTER (and the 401 answering each, Timer E) are the same messages.
    const clear = plainSip.map((m) => f(m, 'sip.Method')[0] ?? f(m, 'sip.Status-Code')[0]);
    assert.deepEqual([...new Set(clear)], ['REGISTER', '401'], `only the unprotected REGISTER and its 401 in clear: ${clear.join(' ')}`);
    // Each copy of the REGISTER is answered by at most one 401 (§17.2.2: a retransmission that reaches
    // the P-CSCF once its 401 is out gets the same 401 again, and may have crossed it on the wire).
    const registers = clear.filter((x) => x === 'REGISTER').length;
    const answers = clear.filter((x) => x === '401').length;
    assert.ok(answers <= registers, `no more 401s than copies of the REGISTER: ${plainSip.map(show).join('; ')}`);
    const first401 = frames[i401]!;
    const later = frames.slice(i401 + 1);
    const esp = later.filter((m) => f(m, 'esp.spi').length > 0);
    const keepalives = later.filter((m) => f(m, 'esp.spi').length === 0 && f(m, 'udp.length')[0] === '9');
    const resent401 = later.filter(
      (m) => f(m, 'esp.spi').length === 0 && f(m, 'sip.Status-Code')[0] === '401' && f(m, 'udp.length')[0] === f(first401, 'udp.length')[0],
    );
    const other = later.filter((m) => !esp.includes(m) && !keepalives.includes(m) && !resent401.includes(m));
    assert.deepEqual(other.map(show), [], 'after the 401: ESP-in-UDP, NAT-keepalives and copies of the 401 only');
    // A copy of the 401 goes the way the first did (plain SIP from the P-CSCF's port); the rest is tunnelled.
    const offPort = [...esp, ...keepalives].filter((m) => f(m, 'udp.srcport')[0] !== '4500' && f(m, 'udp.dstport')[0] !== '4500');
    assert.deepEqual(offPort.map(show), [], 'ESP and keepalives all through the P-CSCF encapsulation port 4500');
    for (const m of esp) {
      const label = `frame ${f(m, 'frame.number')[0]} spi ${f(m, 'esp.spi')[0]}`;
      assert.ok(isTrue(f(m, 'esp.icv_good')[0]), `${label}: ICV verified by tshark`);
      assert.ok(f(m, 'sip.Method').length + f(m, 'sip.Status-Code').length > 0, `${label}: SIP inside after decryption`);
    }
    // Every packet either side sealed is one of these frames (the SA counters of both ends agree).
    const rows = [...(await net.call<SaRow[]>('sets')), ...(await ueA.call<SaRow[]>('sets', { ue: 0 }))];
    const sealed = rows.filter((r) => r.dir === 'out').reduce((n, r) => n + r.packets, 0);
    assert.equal(esp.length, sealed, `${esp.length} ESP frames, ${sealed} packets sealed`);
    t.diagnostic(`${esp.length} ESP-in-UDP frames decrypted and authenticated, ${keepalives.length} keepalives`);
  });

  test('6: two UEs behind the NAT, both on encapsulation port 4500: one public address, two mapped ports, both reachable', async () => {
    const ueB = await startUes(lab, 1, { first: 2 });
    const [a] = await ueA.call<ProcResult[]>('register');
    const [b] = await ueB.call<ProcResult[]>('register');
    assert.ok(a?.ok && b?.ok, JSON.stringify([a, b]));
    const va = (await registration(net, 1))!;
    const vb = (await registration(net, 2))!;
    assert.equal(va.ue.ip, lab.nat.publicIp);
    assert.equal(vb.ue.ip, lab.nat.publicIp);
    assert.ok(va.ue.encap && vb.ue.encap);
    assert.notEqual(va.ue.encap.port, vb.ue.encap.port, 'the NAT gave the second 4500 another public port, and the P-CSCF learnt it');
    const ct = (await lab.conntrackList()).filter((e) => e.proto === 'udp' && e.orig.sport === 4500);
    assert.deepEqual(
      new Set([va.ue.encap.port, vb.ue.encap.port]),
      new Set(ct.filter((e) => [lab.ue[0]!.ip, lab.ue[1]!.ip].includes(e.orig.src)).map((e) => e.reply.dport)),
    );
    for (const [i, ue] of [
      [1, ueA],
      [2, ueB],
    ] as const) {
      assert.equal((await net.call<{ status: number }>('message', { impu: impuOf(i), text: `to ${i}` })).status, 200);
      assert.deepEqual(
        (await ue.call<string[]>('received', { ue: 0 })).filter((m) => m.startsWith('to ')),
        [`to ${i}`],
        'each UE gets only its own',
      );
    }
  });

  test('4: keepalives keep the mapping alive across an idle period longer than the NAT UDP timeout; without them it dies', async (t) => {
    const ueC = await startUes(lab, 2, { first: 3, keepaliveMs: 0 });
    const [c] = await ueC.call<ProcResult[]>('register');
    assert.ok(c?.ok, JSON.stringify(c));
    const before = (await ueStatus(ueA)).status.nat.keepalivesSent;
    const pcscfBefore = (await net.call<{ backend: { keepalive: number } }>('status')).backend.keepalive;
    await sleep((UDP_TIMEOUT_S + 2) * 1000); // idle: longer than the NAT's UDP timeout
    const sentA = (await ueStatus(ueA)).status.nat.keepalivesSent - before;
    assert.ok(sentA >= UDP_TIMEOUT_S, `UE A sent ${sentA} keepalives (1 s interval)`);
    assert.equal((await ueStatus(ueC)).status.nat.keepalivesSent, 0, 'keepalives off at UE C');
    const pcscfGot = (await net.call<{ backend: { keepalive: number } }>('status')).backend.keepalive - pcscfBefore;
    assert.ok(pcscfGot >= sentA, `the P-CSCF counted ${pcscfGot} keepalives and ignored them`);
    const live = (await lab.conntrackList()).filter((e) => e.proto === 'udp' && e.orig.sport === 4500).map((e) => e.orig.src);
    assert.ok(live.includes(lab.ue[0]!.ip) && !live.includes(lab.ue[2]!.ip), `mappings alive: ${live.join(', ')}`);
    const okA = await net.call<{ status: number | null }>('message', { impu: impuOf(1), text: 'after idle A' });
    assert.equal(okA.status, 200, 'the kept-alive mapping still carries network-initiated requests');
    const failC = await net.call<{ status: number | null; reason: string }>('message', { impu: impuOf(3), text: 'after idle C' });
    assert.notEqual(failC.status, 200, 'without keepalives the mapping died: the network cannot reach the UE');
    assert.ok(!(await ueC.call<string[]>('received', { ue: 0 })).includes('after idle C'));
    t.diagnostic(`keepalives: A sent ${sentA} in ${UDP_TIMEOUT_S + 2} s idle; C (off) unreachable: ${failC.status ?? failC.reason}`);
  });

  test('1: a NAT and no mod=UDP-enc-tun in Security-Client: a clear refusal, no SA set', async () => {
    const ueD = await startUes(lab, 2, { first: 4, modes: ['trans'], encapPort: 4700, plainPort: 5080 });
    const [d] = await ueD.call<ProcResult[]>('register');
    assert.equal(d?.ok, false);
    assert.equal(d?.status, 494);
    assert.match(d?.detail ?? '', /NAT was detected but Security-Client offers no mod=UDP-enc-tun/);
    const st = await net.call<{ counters: { rejected: Record<string, number> } }>('status');
    assert.equal(st.counters.rejected['nat-without-udp-enc-tun'], 1);
    assert.equal(await registration(net, 4), undefined);
  });

  test("'public inside' switch (OpenSIPS-style peers, §15A point 4): registration and MESSAGE both ways", async () => {
    const net2 = await startNet(lab, { port: 5070, scscfPort: 6070, encapPort: 4501, natInnerAddress: 'public' });
    const ueE = await startUes(lab, 2, {
      first: 5,
      natInnerAddress: 'public',
      encapPort: 4800,
      plainPort: 5090,
      pcscf: { address: lab.net.ip, port: 5070, encapPort: 4501 },
    });
    const [e] = await ueE.call<ProcResult[]>('register');
    assert.ok(e?.ok, JSON.stringify(e));
    const v = (await registration(net2, 5))!;
    assert.equal(v.ue.ip, lab.nat.publicIp);
    assert.equal(v.ue.innerIp, undefined, 'the inner address is the public one');
    assert.equal((await ueE.call<{ status: number }>('message')).status, 200);
    assert.equal((await net2.call<{ status: number }>('message', { impu: impuOf(5), text: 'public inside' })).status, 200);
    await net2.quit();
  });
});
