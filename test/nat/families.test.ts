// The same lab without NAT (plain routing: the P-CSCF must pick mod=trans although UDP-enc-tun was
// offered, 33.203 M.7.1, spec digest §15A point 5) and with an IPv6 NAT (NAT66 masquerade,
// documentation prefix 2001:db8::/32): registration and MESSAGE both ways.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNatLab, ip6NatAvailability } from '../../src/lab/index.ts';
import { impiOf, impuOf, registration, skipNoLab, startNet, startUes, ueStatus, type ProcResult } from './support.ts';

const v6 = ip6NatAvailability();

describe('Annex M in other labs', { skip: skipNoLab, timeout: 90_000 }, () => {
  test('1: no NAT in the path: mod=trans even though UDP-enc-tun was offered; the P-CSCF sees the private address', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('mod=trans needs raw ESP sockets (CAP_NET_RAW)');
    const lab = await buildNatLab({ ues: 1, noNat: true });
    try {
      const net = await startNet(lab);
      const ue = await startUes(lab, 0, { first: 1, modes: ['trans', 'UDP-enc-tun'] });
      const [r] = await ue.call<ProcResult[]>('register');
      assert.ok(r?.ok, JSON.stringify(r));
      assert.ok(!net.events.some((e) => e.ev === 'pcscf:nat-detected'), 'Via and source agree: no NAT');
      const v = (await registration(net, 1))!;
      assert.equal(v.nat, false);
      assert.equal(v.ue.ip, lab.ue[0]!.ip);
      assert.equal(v.ue.encap, undefined);
      assert.ok(
        v.sets[0]!.sas.every((sa) => sa.mode === 'transport'),
        'mod=trans',
      );
      const st = (await ueStatus(ue)).status;
      assert.equal(st.nat.behindNat, false);
      assert.equal(st.sets[0]!.mode, 'transport');
      assert.equal((await ue.call<{ status: number }>('message')).status, 200);
      assert.equal((await net.call<{ status: number }>('message', { impu: impuOf(1), text: 'routed' })).status, 200);
      assert.ok((await ue.call<ProcResult[]>('deregister'))[0]?.ok);
    } finally {
      await lab.destroy();
    }
  });

  test(
    'IPv6 NAT: NAT detected, UDP-enc-tun, the public IPv6 address at the P-CSCF, MESSAGE both ways',
    { skip: v6.ok ? false : v6.reason },
    async (t) => {
      const lab = await buildNatLab({ ues: 1, family: 'ipv6' });
      try {
        const net = await startNet(lab);
        const ue = await startUes(lab, 0, { first: 1 });
        const [r] = await ue.call<ProcResult[]>('register');
        assert.ok(r?.ok, JSON.stringify(r));
        t.diagnostic(`IPv6 registration through the NAT: ${r.ms} ms`);
        const nat = await net.waitEvent('pcscf:nat-detected', (e) => e.impi === impiOf(1));
        assert.equal((nat.source as { address: string }).address, '2001:db8:203::1');
        const v = (await registration(net, 1))!;
        assert.equal(v.ue.ip, '2001:db8:203::1');
        assert.equal(v.ue.innerIp, lab.ue[0]!.ip);
        assert.equal(v.ue.encap?.address, '2001:db8:203::1');
        assert.match(v.contact ?? '', /@\[2001:db8:203::1\]:\d+$/);
        assert.ok(v.sets[0]!.sas.every((sa) => sa.mode === 'udp-enc-tunnel'));
        assert.equal((await ue.call<{ status: number }>('message')).status, 200);
        assert.equal((await net.call<{ status: number }>('message', { impu: impuOf(1), text: 'over NAT66' })).status, 200);
        assert.ok((await ue.call<string[]>('received', { ue: 0 })).includes('over NAT66'));
        assert.ok((await ue.call<ProcResult[]>('deregister'))[0]?.ok);
      } finally {
        await lab.destroy();
      }
    },
  );
});
