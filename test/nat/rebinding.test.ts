// NAT rebinding and UE IP change (spec digest §15A point 6): a random-port NAT forgets its mappings
// (conntrack flush); the P-CSCF moves port_Uenc only after an authenticated packet from the new port
// (never for a keepalive, a replay or a forged ICV); a new public address makes the UE register anew.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentClient } from '../../src/cli/demo/agent-protocol.ts';
import type { SaRow } from '../../src/cli/demo/nat-common.ts';
import { buildNatLab, type NatLab } from '../../src/lab/index.ts';
import { eventually, impiOf, impuOf, registration, skipNoLab, startNet, startUes, ueStatus, type ProcResult } from './support.ts';

describe('NAT rebinding and UE IP change (random-port NAT)', { skip: skipNoLab, timeout: 120_000 }, () => {
  let lab: NatLab;
  let net: AgentClient;
  let ue: AgentClient;

  before(async () => {
    lab = await buildNatLab({ ues: 1, natType: 'random' });
    net = await startNet(lab);
    ue = await startUes(lab, 0, { first: 1 });
  });
  after(async () => {
    await lab?.destroy();
  });

  const encapPort = async () => (await registration(net, 1))?.ue.encap?.port;
  const mappedPort = async () =>
    (await lab.conntrackList()).find((e) => e.proto === 'udp' && e.orig.src === lab.ue[0]!.ip && e.orig.sport === 4500)?.reply.dport;

  test('5a: after a conntrack flush the P-CSCF follows the new port only after the next authenticated packet', async (t) => {
    const [r] = await ue.call<ProcResult[]>('register');
    assert.ok(r?.ok, JSON.stringify(r));
    const p1 = await encapPort();
    assert.equal(p1, await mappedPort(), 'port_Uenc = the NAT mapping');
    assert.notEqual(p1, 4500, 'a random-port NAT: the P-CSCF cannot have guessed it');

    await lab.conntrackFlush();
    // The next keepalive (1 s) opens a new mapping on another port; the P-CSCF must ignore it.
    const ka0 = (await net.call<{ backend: { keepalive: number } }>('status')).backend.keepalive;
    await eventually(
      'a keepalive at the P-CSCF',
      () => net.call<{ backend: { keepalive: number } }>('status'),
      (s) => s.backend.keepalive > ka0,
    );
    const p2 = await mappedPort();
    assert.ok(p2 !== undefined && p2 !== p1, `the NAT rebound the UE to another port (${p1} → ${p2})`);
    assert.equal(await encapPort(), p1, 'a keepalive never moves port_Uenc');

    // Unauthenticated ESP-in-UDP from yet other ports: a replayed packet and a forged ICV.
    await ue.call('replay', { ue: 0 });
    await ue.call('forge', { ue: 0 });
    const drops = await eventually(
      'the replay and the forgery dropped at the P-CSCF',
      async () =>
        (await net.call<SaRow[]>('sets'))
          .filter((s) => s.sa === 'SA1' && s.set_state === 'current')
          .map((s) => s.drops)
          .join(' '),
      (d) => d.includes('replay=1') && d.includes('icv=1'),
    );
    t.diagnostic(`SA1 drops at the P-CSCF: ${drops}`);
    assert.equal(await encapPort(), p1, 'neither a replay nor a forged packet moves port_Uenc');
    assert.ok(!net.events.some((e) => e.ev === 'pcscf:nat-mapping' && (e.previous as { port?: number } | undefined)?.port === p1));

    // Until the UE sends something authenticated, the network's requests go to the dead mapping.
    const lost = await net.call<{ status: number | null; reason: string }>('message', { impu: impuOf(1), text: 'to the old mapping' });
    assert.notEqual(lost.status, 200, `the old mapping is gone: ${JSON.stringify(lost)}`);

    assert.equal((await ue.call<{ status: number }>('message')).status, 200, 'MESSAGE from the UE over the new mapping, answered there');
    const moved = await net.waitEvent('pcscf:nat-mapping', (e) => (e.previous as { port?: number } | undefined)?.port === p1);
    assert.equal(moved.followed, true);
    assert.equal(moved.port, p2);
    assert.equal(await encapPort(), p2, 'port_Uenc moved with the authenticated packet');
    assert.equal(
      (await net.call<{ status: number }>('message', { impu: impuOf(1), text: 'to the new mapping' })).status,
      200,
      'network-initiated requests work again',
    );
    assert.ok((await ue.call<string[]>('received', { ue: 0 })).includes('to the new mapping'));
  });

  test('5b: a new public address is a UE IP change: a fresh initial registration, the old SAs gone on both sides', async (t) => {
    const before = (await registration(net, 1))!;
    const oldSets = before.sets.map((s) => s.id);
    await lab.renumberPublic('203.0.113.2');
    const t0 = Date.now();
    // The refresh over the old SAs gets no answer (the P-CSCF answers the old address); the UE
    // falls back to an unprotected initial registration (digest §8 rule 6), whose 401 shows the new address.
    const [rr] = await ue.call<ProcResult[]>('reregister');
    assert.ok(rr?.ok, JSON.stringify(rr));
    t.diagnostic(`re-registered after the address change in ${Date.now() - t0} ms (Timer F of the lost refresh included)`);
    const steps = ue.events.filter((e) => e.ev === 'ue:step').map((e) => String(e.text));
    assert.ok(
      steps.some((s) => s.includes('falling back to an unprotected initial registration')),
      steps.join('\n'),
    );
    assert.ok(
      steps.some((s) => s.includes('public address changed from 203.0.113.1 to 203.0.113.2')),
      steps.join('\n'),
    );
    const ignored = await net.waitEvent('pcscf:nat-mapping', (e) => e.followed === false);
    assert.equal(ignored.address, '203.0.113.2', 'the P-CSCF saw the new address and did not follow it');

    const now = await eventually(
      'the old sets gone at the P-CSCF',
      () => registration(net, 1),
      (v) => v?.sets.length === 1 && !oldSets.includes(v.sets[0]!.id),
    );
    assert.equal(now!.ue.ip, '203.0.113.2');
    assert.equal(now!.ue.encap?.address, '203.0.113.2');
    assert.match(now!.contact ?? '', /@203\.0\.113\.2:/);
    const deleted = net.events.filter((e) => e.ev === 'pcscf:sa-deleted').map((e) => e.set);
    for (const id of oldSets) assert.ok(deleted.includes(id), `old set ${id} deleted at the P-CSCF`);
    const st = (await ueStatus(ue)).status;
    assert.equal(st.sets.length, 1, 'one live set at the UE');
    assert.deepEqual(st.publicAddress?.address, '203.0.113.2');
    assert.equal((await net.call<{ status: number }>('message', { impu: impuOf(1), text: 'after the IP change' })).status, 200);
    assert.equal((await ue.call<{ status: number }>('message')).status, 200);
    assert.equal((await registration(net, 1))?.impi, impiOf(1));
  });
});
