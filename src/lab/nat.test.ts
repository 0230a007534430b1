// What the NAT lab must let the Annex M tests prove, shown with plain UDP: the network sees the
// NAT's public address; an idle mapping dies after the UDP timeout and keepalives keep it; a
// conntrack flush rebinds to a new port (random NAT); many UEs share one public address; IPv6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { buildNatLab, ip6NatAvailability, labAvailability, toolMissing, type NatLab, type NatLabOptions } from './index.ts';

const PEER = fileURLToPath(new URL('./testdata/udp-peer.mjs', import.meta.url));
const SERVER_PORT = 7000;
const avail = labAvailability();
const skip = avail.ok ? false : avail.reason;

async function withLab(opts: NatLabOptions, body: (lab: NatLab) => Promise<void>): Promise<void> {
  const lab = await buildNatLab(opts);
  try {
    await body(lab);
  } finally {
    await lab.destroy();
  }
}

async function peer(lab: NatLab, ns: string, args: string[]) {
  const proc = lab.spawnNode(ns, PEER, args, {}, { stdin: 'pipe' });
  // Generous: node + tsx starts in ~0.5 s, but far slower on a loaded 2-CPU CI runner.
  const port = Number((await proc.waitForLine(/^ready /, 30_000)).split(' ')[1]);
  return { proc, port };
}

interface Recv {
  ip: string;
  port: number;
  text: string;
}
function parseRecv(line: string): Recv {
  const m = /^recv (\S+) (\d+) (.*)$/.exec(line);
  assert.ok(m, `not a recv line: ${line}`);
  return { ip: m[1]!.replace(/^::ffff:/, ''), port: Number(m[2]), text: m[3]! };
}
const recvOf = async (p: { proc: { waitForLine(m: RegExp, t?: number): Promise<string> } }, text: string, timeoutMs = 10_000) =>
  parseRecv(await p.proc.waitForLine(new RegExp(`^recv \\S+ \\d+ ${text}$`), timeoutMs));

test('(a) the network sees the NAT public address; without NAT it sees the private one', { skip, timeout: 60_000 }, async () => {
  for (const noNat of [false, true]) {
    await withLab({ noNat }, async (lab) => {
      const server = await peer(lab, lab.net.ns, ['--port', String(SERVER_PORT), '--echo']);
      const client = await peer(lab, lab.ue[0]!.ns, ['--port', '40000']);
      client.proc.write(`send ${lab.net.ip} ${SERVER_PORT} hello`);
      const seen = await recvOf(server, 'hello');
      if (noNat) {
        assert.equal(seen.ip, lab.ue[0]!.ip);
      } else {
        assert.equal(seen.ip, lab.nat.publicIp);
        assert.equal(lab.nat.publicIp, '203.0.113.1');
        assert.ok(!seen.ip.startsWith('198.51.100.'));
        assert.equal(seen.port, 40000, 'masquerade keeps a free source port');
        const ct = toolMissing('conntrack') ? [] : await lab.conntrackList();
        if (ct.length)
          assert.ok(
            ct.some((e) => e.orig.src === lab.ue[0]!.ip && e.reply.dst === lab.nat.publicIp && e.reply.dport === seen.port),
            JSON.stringify(ct),
          );
      }
      const back = await recvOf(client, 'echo:hello');
      assert.equal(back.ip, lab.net.ip);
      // The private address is reachable from the network only without NAT (a home router drops it).
      server.proc.write(`send ${lab.ue[0]!.ip} 40000 direct`);
      if (noNat) await recvOf(client, 'direct');
      else await assert.rejects(recvOf(client, 'direct', 800), { code: 'LAB_TIMEOUT' });
    });
  }
});

test('(b) an idle mapping dies after the UDP timeout; a 1 s keepalive keeps it', { skip, timeout: 60_000 }, async () => {
  const udpTimeoutS = 4; // 4× the keepalive interval: margin for a starved timer
  await withLab({ ues: 2, udpTimeoutS }, async (lab) => {
    const server = await peer(lab, lab.net.ns, ['--port', String(SERVER_PORT), '--echo']);
    const idle = await peer(lab, lab.ue[0]!.ns, []);
    const kept = await peer(lab, lab.ue[1]!.ns, []);
    idle.proc.write(`send ${lab.net.ip} ${SERVER_PORT} hello0`);
    kept.proc.write(`send ${lab.net.ip} ${SERVER_PORT} hello1`);
    const m0 = await recvOf(server, 'hello0');
    const m1 = await recvOf(server, 'hello1');
    await recvOf(idle, 'echo:hello0');
    await recvOf(kept, 'echo:hello1');
    kept.proc.write(`keepalive ${lab.net.ip} ${SERVER_PORT} 1000 ka`);
    await new Promise((r) => setTimeout(r, udpTimeoutS * 1000 + 1_500));
    if (!toolMissing('conntrack')) {
      const live = (await lab.conntrackList()).filter((e) => e.proto === 'udp').map((e) => e.orig.src);
      assert.deepEqual(live, [lab.ue[1]!.ip], 'only the kept-alive mapping is still in the table');
    }
    // The server talks to the mappings it learnt, as a P-CSCF sends a request to a UE.
    server.proc.write(`send ${m0.ip} ${m0.port} late0`);
    server.proc.write(`send ${m1.ip} ${m1.port} late1`);
    await recvOf(kept, 'late1', 5_000);
    await assert.rejects(recvOf(idle, 'late0', 1_500), { code: 'LAB_TIMEOUT' });
  });
});

test(
  '(c) after a conntrack flush a random NAT rebinds to another port; masquerade keeps it',
  { skip: skip || toolMissing('conntrack') || false, timeout: 60_000 },
  async () => {
    for (const natType of ['random', 'masquerade'] as const) {
      await withLab({ natType }, async (lab) => {
        const server = await peer(lab, lab.net.ns, ['--port', String(SERVER_PORT), '--echo']);
        const client = await peer(lab, lab.ue[0]!.ns, ['--port', '40000']);
        client.proc.write(`send ${lab.net.ip} ${SERVER_PORT} before`);
        const before = await recvOf(server, 'before');
        await recvOf(client, 'echo:before');
        await lab.conntrackFlush();
        assert.deepEqual(
          (await lab.conntrackList()).filter((e) => e.proto === 'udp'),
          [],
        );
        client.proc.write(`send ${lab.net.ip} ${SERVER_PORT} after`);
        const after = await recvOf(server, 'after');
        assert.equal(after.ip, lab.nat.publicIp);
        assert.equal(before.ip, lab.nat.publicIp);
        if (natType === 'random') assert.notEqual(after.port, before.port, 'a random NAT picks a new port for the new mapping');
        else assert.deepEqual([before.port, after.port], [40000, 40000]);
        // The new mapping works both ways.
        await recvOf(client, 'echo:after');
      });
    }
  },
);

test('(d) two UEs behind the NAT: same public address, different ports, each gets its own answers', { skip, timeout: 60_000 }, async () => {
  await withLab({ ues: 2 }, async (lab) => {
    const server = await peer(lab, lab.net.ns, ['--port', String(SERVER_PORT), '--echo']);
    // Both UEs use the same local port, as two phones on 5060 would: the NAT must tell them apart.
    const a = await peer(lab, lab.ue[0]!.ns, ['--port', '5060']);
    const b = await peer(lab, lab.ue[1]!.ns, ['--port', '5060']);
    a.proc.write(`send ${lab.net.ip} ${SERVER_PORT} fromA`);
    const sa = await recvOf(server, 'fromA');
    b.proc.write(`send ${lab.net.ip} ${SERVER_PORT} fromB`);
    const sb = await recvOf(server, 'fromB');
    assert.equal(sa.ip, lab.nat.publicIp);
    assert.equal(sb.ip, lab.nat.publicIp);
    assert.notEqual(sa.port, sb.port);
    assert.equal(sa.port, 5060, 'the first UE keeps its port');
    await recvOf(a, 'echo:fromA');
    await recvOf(b, 'echo:fromB');
    assert.ok(!b.proc.output.some((l) => l.includes('echo:fromA')));
    assert.ok(!a.proc.output.some((l) => l.includes('echo:fromB')));
  });
});

const v6 = avail.ok ? ip6NatAvailability() : avail;
test(
  '(e) IPv6: the network sees the NAT public IPv6 address (dual stack lab)',
  { skip: v6.ok ? false : v6.reason, timeout: 60_000 },
  async () => {
    await withLab({ family: 'dual' }, async (lab) => {
      assert.equal(lab.nat.publicIp6, '2001:db8:203::1');
      const server = await peer(lab, lab.net.ns, ['--port', String(SERVER_PORT), '--echo', '--family', '6']);
      const client = await peer(lab, lab.ue[0]!.ns, ['--port', '40000', '--family', '6']);
      client.proc.write(`send ${lab.net.ip6} ${SERVER_PORT} hello6`);
      const seen = await recvOf(server, 'hello6');
      assert.equal(seen.ip, lab.nat.publicIp6);
      assert.equal(seen.port, 40000);
      const back = await recvOf(client, 'echo:hello6');
      assert.equal(back.ip, lab.net.ip6);
      // IPv4 still works in the same lab.
      const server4 = await peer(lab, lab.net.ns, ['--port', String(SERVER_PORT + 1), '--echo']);
      const client4 = await peer(lab, lab.ue[0]!.ns, []);
      client4.proc.write(`send ${lab.net.ip4} ${SERVER_PORT + 1} hello4`);
      assert.equal((await recvOf(server4, 'hello4')).ip, lab.nat.publicIp4);
      const ct = toolMissing('conntrack') ? [] : await lab.conntrackList();
      if (ct.length)
        assert.ok(
          ct.some((e) => e.family === 'ipv6' && e.reply.dst === lab.nat.publicIp6),
          JSON.stringify(ct),
        );
    });
  },
);
