// Issue 13 §3 on the xfrm backend, in the VM: `imsec pcscf --backend xfrm --state FILE` (mod=UDP-enc-tun)
// between an S-CSCF agent (its own process: it keeps the registrations across the P-CSCF's death) and
// two userspace UEs. The P-CSCF is killed with SIGKILL — the kernel keeps its SAs and policies — one
// UE's registration is then dropped from the store (its SAs become orphans: stored state lost), and
// the P-CSCF restarts: it adopts the stored UE's SAs as the kernel has them (same SPIs, the kernel's
// counters carry on), removes the orphans, and serves the UE — MO and MT MESSAGE, no re-registration;
// a captured ESP packet sent again is refused by the kernel's replay window; after the
// de-registration nothing of ours is left in XFRM.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { SqliteStateStore } from '../../src/pcscf/state-store-sqlite.ts';
import { DOMAIN, subscriber } from '../support/ims-world.ts';
import type { RpcChild } from './guest-rpc.ts';
import { Cli } from './system-xfrm-cli.ts';
import type { Ctx } from './system-xfrm-scenarios.ts';
import { parseXfrmStates, type XfrmStateStats } from './xfrm-parse.ts';

const NET = '192.0.2.1';
const UE = '192.0.2.2';
const NODE = `${NET}:5060`;
const FOREIGN_SPI = 0x4343;

export async function restartScenario(c: Ctx, mainJs: string, out: string): Promise<void> {
  const label = 'x: imsec pcscf --backend xfrm --state, SIGKILL and restart';
  const state = '/tmp/imsec-system-xfrm-state.db';
  for (const f of [state, `${state}-wal`, `${state}-shm`]) rmSync(f, { force: true });
  const pcscfArgv = [
    ...['ip', 'netns', 'exec', c.nsNet, process.execPath, mainJs, 'pcscf'],
    ...['--listen', NODE, '--port-c', '5062', '--port-s', '5064', '--scscf', `${NET}:6060`],
    ...['--mode', 'udp-enc-tun', '--backend', 'xfrm', '--state', state, '--json'],
  ];
  const clis: Cli[] = [];
  const startPcscf = async (n: number) => {
    const p = new Cli(pcscfArgv, `${out}/restart-pcscf-${n}.log`);
    clis.push(p);
    // Generous: a cold node start of the whole CLI under QEMU TCG takes tens of seconds.
    return { p, hello: JSON.parse(await p.line(/"event":"listening"/, 240_000)) as Record<string, unknown> };
  };
  const ours = () => parseXfrmStates(c.sh(`ip -n ${c.nsNet} -s xfrm state`)).filter((s) => s.spi !== FOREIGN_SPI);
  const policies = () => (c.sh(`ip -n ${c.nsNet} xfrm policy`).match(/^src /gm) ?? []).length;
  let core: RpcChild | undefined;
  const ues: RpcChild[] = [];
  let before: XfrmStateStats[] = [];
  let seenBefore: Record<string, number> = {};
  let mark = 0;
  try {
    const up = await c.check(`${label}: two UEs register through the P-CSCF (kernel SAs), a MESSAGE is captured as ESP`, async () => {
      // T1 = 1 s (Timer F 64 s): a loaded TCG guest can be slower than the agents' default 200 ms allows.
      core = await c.startAgent(c.nsNet, { role: 'core', backend: 'userspace', address: NET, instance: 0, mode: 'trans', t1: 1000 });
      const { hello } = await startPcscf(1);
      assert.equal(hello.restored_registrations, 0);
      for (const i of [1, 2]) {
        const ue = await c.startAgent(c.nsUe, {
          role: 'ue',
          backend: 'userspace',
          address: UE,
          instance: 0,
          mode: 'udp-enc-tun',
          pcscf: NET,
          keepaliveMs: 0,
          subscriber: i,
          t1: 1000,
        });
        ues.push(ue);
        // Tried once more when the first REGISTER got no answer at all (the cold CLI under TCG).
        let r = await ue.call<{ ok: boolean; reason?: string }>('register', {}, 150_000);
        if (!r.ok && r.reason === 'timeout') r = await ue.call<{ ok: boolean; reason?: string }>('register', {}, 150_000);
        assert.ok(r.ok, JSON.stringify(r));
      }
      mark = await ues[0]!.call<number>('sentMark');
      assert.equal((await ues[0]!.call<{ status: number }>('message', { to: `sip:echo@${DOMAIN}`, text: 'before the kill' })).status, 200);
      assert.equal(ours().length, 8, 'four kernel SAs per UE');
      return hello;
    });
    if (!up) return;
    const killed = await c.check(
      `${label}: SIGKILL: the kernel keeps the 8 SAs and their policies; UE 2's stored state is lost`,
      async () => {
        const p1 = clis[0]!;
        p1.child.kill('SIGKILL');
        await p1.exited;
        before = ours();
        assert.equal(before.length, 8);
        assert.equal(policies(), 8);
        // Someone else's SA (no tag) in the same namespace: never touched.
        c.sh(
          `ip -n ${c.nsNet} xfrm state add src 192.0.2.9 dst ${NET} proto esp spi ${FOREIGN_SPI} mode transport auth 'hmac(sha1)' 0x${'11'.repeat(20)} enc 'cbc(aes)' 0x${'22'.repeat(16)}`,
        );
        const store = new SqliteStateStore(state);
        try {
          assert.equal(store.load(NODE).length, 2, 'both registrations stored');
          store.remove(NODE, subscriber(2).impi);
        } finally {
          store.close();
        }
        seenBefore = await core!.call<Record<string, number>>('seen');
      },
    );
    if (!killed) return;
    const restarted = await c.check(
      `${label}: restart: UE 1's SAs adopted unchanged (same SPIs, the kernel's counters go on), UE 2's orphans removed, the foreign SA kept`,
      async () => {
        const { hello } = await startPcscf(2);
        assert.equal(hello.restored_registrations, 1, JSON.stringify(hello));
        assert.equal(hello.orphans_removed, 8, 'four SAs and four policies of UE 2');
        const now = ours();
        assert.equal(now.length, 4);
        assert.ok(
          now.some((s) => s.packets > 0),
          'the adopted SAs carry the traffic of before the kill',
        );
        assert.equal(policies(), 4);
        for (const s of now) {
          const was = before.find((b) => b.spi === s.spi && b.dst === s.dst);
          assert.ok(was, `SA 0x${s.spi.toString(16)} was there before the kill (adopted, not re-added)`);
          assert.ok(s.packets >= was.packets, `packets ${was.packets} → ${s.packets}: the kernel's counters kept`);
          assert.ok(s.oseq >= was.oseq && s.seq >= was.seq, 'sequence numbers kept');
        }
        assert.equal(parseXfrmStates(c.sh(`ip -n ${c.nsNet} xfrm state`)).filter((s) => s.spi === FOREIGN_SPI).length, 1);
        return hello;
      },
    );
    if (!restarted) return;
    await c.check(`${label}: the MESSAGE captured before the kill, sent again: refused by the kernel's replay window`, async () => {
      const inbound = () => ours().filter((s) => s.dst === NET);
      const drops = inbound().reduce((n, s) => n + s.replay + s.replayWindowDrops, 0);
      const r = await ues[0]!.call<{ replayed: number }>('replay', { from: mark, port: 4500 });
      assert.ok(r.replayed > 0, 'something to replay');
      const end = Date.now() + 5000;
      while (inbound().reduce((n, s) => n + s.replay + s.replayWindowDrops, 0) < drops + r.replayed && Date.now() < end)
        await new Promise((res) => setTimeout(res, 100));
      assert.equal(
        inbound().reduce((n, s) => n + s.replay + s.replayWindowDrops, 0),
        drops + r.replayed,
        'every replayed packet dropped',
      );
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(
        (await core!.call<Record<string, number>>('seen')).MESSAGE ?? 0,
        seenBefore.MESSAGE ?? 0,
        'no MESSAGE reached the S-CSCF',
      );
      return r;
    });
    await c.check(`${label}: UE 1 is served without re-registering: MO MESSAGE answered, MT MESSAGE delivered`, async () => {
      const mo = await ues[0]!.call<{ status: number }>('message', { to: `sip:echo@${DOMAIN}`, text: 'after the restart' });
      assert.equal(mo.status, 200);
      const mt = await core!.call<{ status: number }>('message', { impu: subscriber(1).impu, text: 'to you after the restart' });
      assert.equal(mt.status, 200);
      const seen = await core!.call<Record<string, number>>('seen');
      assert.equal(seen.REGISTER ?? 0, seenBefore.REGISTER ?? 0, 'no REGISTER after the restart');
      // The adopted outbound SAs carried the answer and the MT request: the same kernel SAs, their counters going on.
      const out = ours().filter((x) => x.src === NET);
      const sum = (l: XfrmStateStats[]) => l.reduce((n, x) => n + x.packets, 0);
      const was = before.filter((b) => out.some((x) => x.spi === b.spi));
      assert.equal(was.length, 2, 'the two outbound SAs are the ones of before the kill');
      assert.ok(sum(out) >= sum(was) + 2, `outbound packets ${sum(was)} → ${sum(out)}`);
      // The UE's ESP-in-UDP port the dead process had learnt is the adopted SAs' (no mapping "moves").
      assert.deepEqual(
        clis[1]!.lines.filter((l) => /"event":"nat-mapping"/.test(l)),
        [],
      );
      return { mo: mo.status, mt: mt.status, seen, out: out.map((x) => [x.spi.toString(16), x.packets, x.oseq]) };
    });
    await c.check(`${label}: de-registration, SIGTERM: nothing of ours left in XFRM`, async () => {
      const r = await ues[0]!.call<{ ok: boolean }>('deregister', {}, 30_000);
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(ours(), []);
      assert.equal(policies(), 0);
      assert.equal(await clis[1]!.term(), 0, clis[1]!.lines.join('\n'));
      c.sh(`ip -n ${c.nsNet} xfrm state delete src 192.0.2.9 dst ${NET} proto esp spi ${FOREIGN_SPI}`);
      assert.equal(c.sh(`ip -n ${c.nsNet} xfrm state`).trim(), '');
      assert.equal(c.sh(`ip -n ${c.nsNet} xfrm policy`).trim(), '');
    });
  } finally {
    for (const p of clis) await p.term(3000);
    for (const a of [...ues, core]) await a?.stop();
    c.sh(`ip -n ${c.nsNet} xfrm state flush; ip -n ${c.nsNet} xfrm policy flush; true`);
  }
}
