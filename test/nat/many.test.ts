// 50 UEs behind one NAT (spec digest §15A points 1-2, RFC 3948 §5.1): one public address, 50
// NAT-mapped encapsulation ports (the two UE namespaces use the same local ports, so the NAT has to
// remap half of them), all registered at once and each reachable with its own network-initiated MESSAGE.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentClient } from '../../src/cli/demo/agent-protocol.ts';
import { buildNatLab, type NatLab } from '../../src/lab/index.ts';
import { impiOf, impuOf, skipNoLab, startNet, startUes, type NetStatus, type ProcResult } from './support.ts';

const PER_NS = 25;

describe('50 UEs behind one NAT', { skip: skipNoLab, timeout: 120_000 }, () => {
  let lab: NatLab;
  let net: AgentClient;
  const groups: AgentClient[] = [];

  before(async () => {
    lab = await buildNatLab({ ues: 2 });
    net = await startNet(lab);
    // Each UE has its own backend, so its own encapsulation socket: 4500..4524 in both namespaces.
    groups.push(
      ...(await Promise.all([0, 1].map((ns) => startUes(lab, ns, { first: 1 + ns * PER_NS, count: PER_NS, keepaliveMs: 20_000 })))),
    );
  });
  after(async () => {
    await lab?.destroy();
  });

  test('6: all 50 register at once, share the public address with 50 distinct mapped ports, and are reachable', async (t) => {
    const t0 = Date.now();
    const results = (await Promise.all(groups.map((g) => g.call<ProcResult[]>('register', { concurrency: 8 }, 90_000)))).flat();
    const ms = Date.now() - t0;
    assert.equal(results.length, 50);
    assert.deepEqual(
      results.filter((r) => !r.ok),
      [],
      'every registration succeeded',
    );
    const each = results.map((r) => r.ms).sort((a, b) => a - b);
    t.diagnostic(`50 registrations through the NAT in ${ms} ms (per UE: median ${each[25]} ms, max ${each[49]} ms)`);

    const st = await net.call<NetStatus>('status');
    const regs = st.registrations.filter((r) => r.state === 'registered');
    assert.equal(regs.length, 50);
    assert.ok(
      regs.every((r) => r.nat && r.ue.ip === lab.nat.publicIp),
      'every UE is known by the one public address',
    );
    const mapped = regs.map((r) => r.ue.encap?.port);
    assert.equal(new Set(mapped).size, 50, 'fifty different port_Uenc values');
    // What the P-CSCF learnt is what the NAT really mapped (the conntrack reply tuples of the UEs' 4500+k sockets).
    const ct = (await lab.conntrackList()).filter((e) => e.proto === 'udp' && e.orig.sport! >= 4500 && e.orig.sport! < 4500 + PER_NS);
    assert.deepEqual(new Set(mapped), new Set(ct.map((e) => e.reply.dport)));
    const remapped = ct.filter((e) => e.reply.dport !== e.orig.sport).length;
    assert.ok(remapped >= PER_NS, `the NAT remapped ${remapped} sockets whose local port was taken by the other namespace`);

    const t1 = Date.now();
    const down = await Promise.all(
      Array.from({ length: 50 }, (_, i) => net.call<{ status: number | null }>('message', { impu: impuOf(i + 1), text: `hello ${i + 1}` })),
    );
    assert.deepEqual(
      down.map((d) => d.status),
      Array(50).fill(200),
      'a network-initiated MESSAGE reached every UE',
    );
    for (const [g, agent] of groups.entries()) {
      for (let k = 0; k < PER_NS; k++) {
        const i = g * PER_NS + k + 1;
        assert.deepEqual(await agent.call<string[]>('received', { ue: k }), [`hello ${i}`], `UE ${impiOf(i)} got its own MESSAGE only`);
      }
    }
    const up = await Promise.all(
      groups.flatMap((g) => Array.from({ length: PER_NS }, (_, k) => g.call<{ status: number }>('message', { ue: k }))),
    );
    assert.deepEqual(
      up.map((u) => u.status),
      Array(50).fill(200),
      'every UE reached the network',
    );
    t.diagnostic(`100 MESSAGEs (50 each way) in ${Date.now() - t1} ms`);
  });
});
