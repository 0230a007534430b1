// XfrmBackend logic against an in-memory SAD/SPD (_fake-kernel.ts): what install writes, rollback
// at any step, policies shared by sets with the same port pair and the set a send pins, lifetimes
// on refresh, NAT moves, reconcile of tagged leftovers only, SPI allocation. The real kernel is
// exercised by test/kernel/xfrm-backend.test.ts (VM) and xfrm-backend-netns.test.ts (host SPD).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandKeys } from '../../keys.ts';
import { createSaSet, type SaSetConfig } from '../../sa-set.ts';
import { FakeKernel } from './_fake-kernel.ts';
import { XfrmBackend } from './backend.ts';
import { delSaMessage, saMessage, policyMessage } from './messages.ts';
import type { XfrmError } from './errors.ts';
import { ownerTag } from './plan.ts';
import { ManualClock, systemClock } from '../../../util/clock.ts';

const IK = new Uint8Array(16).fill(0x11);
const CK = new Uint8Array(16).fill(0x22);

function setCfg(i: number, over: Partial<SaSetConfig> = {}): SaSetConfig {
  return {
    role: 'pcscf',
    ue: { ip: '192.0.2.10', portC: 50000 + 2 * i, portS: 50001 + 2 * i, spiC: 0x1000 + 16 * i + 1, spiS: 0x1000 + 16 * i + 2 },
    pcscf: { ip: '192.0.2.20', portC: 5062, portS: 5064, spiC: 0x1000 + 16 * i + 3, spiS: 0x1000 + 16 * i + 4 },
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'aes-cbc'),
    mode: 'transport',
    ...over,
  };
}

async function backend(k = new FakeKernel(), now = () => 1_000_000) {
  return { k, b: await XfrmBackend.create({ transport: k, instance: 5, clock: { now, setTimer: systemClock.setTimer } }) };
}

test('install: four tagged SAs and four policies; outbound templates pinned to the SA, inbound ones open', async () => {
  const { k, b } = await backend();
  const set = createSaSet({ ...setCfg(0), expiresAt: 1_000_000 + 90_500 });
  await b.install(set);
  const tag = ownerTag(5);
  assert.equal(k.sas.size, 4);
  for (const r of k.allSas()) {
    assert.equal(r.sel!.user, tag);
    assert.equal(r.hardSeconds, 91, 'hard lifetime from the set expiry, rounded up');
    assert.equal(r.replayWindow, 64);
    assert.deepEqual(r.algs, { auth: 'hmac(sha1)', crypt: 'cbc(aes)' });
  }
  const pols = k.allPolicies();
  assert.equal(pols.length, 4);
  const sa2 = set.sas.SA2; // P-CSCF → UE: outbound here
  const out = pols.find((p) => p.dir === 'out' && p.sel!.sport === 5062)!;
  assert.deepEqual([out.tmpls[0]!.spi, out.sel!.dport, out.sel!.user, out.hardSeconds], [sa2.spi, 50001, tag, 91]);
  const inb = pols.find((p) => p.dir === 'in' && p.sel!.dport === 5064)!;
  assert.deepEqual([inb.tmpls[0]!.spi, inb.tmpls[0]!.reqid], [0, 0]);
  assert.deepEqual(b.sets, [set]);
});

test('a failed 3rd NEWSA rolls back the two SAs before it and names the step and errno; foreign entries stay', async () => {
  const { k, b } = await backend();
  const set = createSaSet(setCfg(1));
  // A foreign SA (no tag) with SA3's identity: P-CSCF → UE, dst UE, SPI spi_uc.
  const foreign = createSaSet(setCfg(1, { role: 'pcscf' })).sas.SA3;
  k.request(
    saMessage(
      {
        family: 4,
        src: '192.0.2.20',
        dst: '192.0.2.10',
        spi: foreign.spi,
        reqid: 1,
        mode: 'transport',
        sel: { family: 4, src: '0.0.0.0', dst: '0.0.0.0', prefixSrc: 0, prefixDst: 0, sport: 0, dport: 0, proto: 0, user: 0 },
        algs: {},
        replayWindow: 32,
        hardSeconds: 0,
      },
      { seq: 1 },
    ),
    'setup',
  );
  await assert.rejects(b.install(set), (e: Error & { code?: string; errno?: number }) => {
    assert.equal(e.code, 'XFRM_INSTALL_FAILED');
    assert.equal(e.errno, 17);
    assert.match(
      e.message,
      /^xfrm: installing SA set \S+ failed: NEWSA SA3 spi 0x1011 192\.0\.2\.20 -> 192\.0\.2\.10: EEXIST; rolled back 2 step\(s\)$/,
    );
    return true;
  });
  assert.deepEqual(
    k.allSas().map((r) => r.spi),
    [foreign.spi],
    'only the foreign SA is left',
  );
  assert.equal(k.policies.size, 0);
  assert.deepEqual(b.sets, []);
});

test('a failed policy step rolls back the policies and all four SAs', async () => {
  const { k, b } = await backend();
  k.failOn = (op, n) => (op.type === 'NEWPOLICY' && n === 3 ? 12 : undefined);
  await assert.rejects(b.install(createSaSet(setCfg(2))), /NEWPOLICY dir .*ENOMEM; rolled back 7 step\(s\)/);
  assert.equal(k.sas.size, 0);
  assert.equal(k.policies.size, 0);
});

test('two sets sharing port_us share the pc<->us policies; a send pins its set; remove keeps what the other needs', async () => {
  const { k, b } = await backend();
  const a = createSaSet(setCfg(3));
  a.apply('authenticated');
  const bSet = createSaSet(setCfg(4, { ue: { ...setCfg(4).ue, portS: 50007 } })); // re-registration: new port_uc, same port_us
  await b.install(a);
  await b.install(bSet);
  assert.equal(k.policies.size, 6, '4 + 2 new (uc′<->ps); pc<->us shared');
  const outPcUs = () => k.allPolicies().find((p) => p.dir === 'out' && p.sel!.sport === 5062)!.tmpls[0]!.spi;
  assert.equal(outPcUs(), a.sas.SA2.spi, 'current set A first');
  b.prepareSend({ address: '192.0.2.20', port: 5062 }, { address: '192.0.2.10', port: 50007 }, bSet);
  assert.equal(outPcUs(), bSet.sas.SA2.spi, 'pinned to the temporary set B');
  b.prepareSend({ address: '192.0.2.20', port: 5062 }, { address: '192.0.2.10', port: 50007 });
  assert.equal(outPcUs(), a.sas.SA2.spi, 'unpinned: back to the current set');
  await b.remove(a);
  assert.equal(k.policies.size, 4);
  assert.equal(outPcUs(), bSet.sas.SA2.spi);
  assert.equal(k.sas.size, 4);
  assert.throws(() => b.prepareSend({ address: '192.0.2.20', port: 5062 }, { address: '192.0.2.10', port: 1 }), { code: 'BACKEND_NO_SA' });
});

test('refresh after setLifetime updates the SAs (UPDSA, counted from their add time) and the policies', async () => {
  let now = 1_000_000;
  const { k, b } = await backend(new FakeKernel(), () => now);
  const set = createSaSet({ ...setCfg(5), expiresAt: now + 60_000 });
  await b.install(set);
  now += 20_000;
  set.setLifetime({ expiresAt: now + 3_600_000 });
  b.refresh(set);
  assert.equal(k.ops.filter((o) => o.type === 'UPDSA').length, 4);
  assert.ok(
    k.allSas().every((r) => r.hardSeconds === 3620),
    'hard_add_expires counts from the SA add time',
  );
  assert.ok(
    k.allPolicies().every((p) => p.hardSeconds === 3600),
    'a replaced policy counts from now',
  );
  b.refresh(set);
  assert.equal(k.ops.filter((o) => o.type === 'UPDSA').length, 4, 'nothing changed: nothing sent');
});

test('setPeerEncap: a new port is an UPDSA; a new address re-adds the outbound SAs and re-points their policies', async () => {
  const k = new FakeKernel();
  const socks: string[] = [];
  const b = await XfrmBackend.create({
    transport: k,
    clock: systemClock,
    instance: 5,
    openEspInUdp: (ip, port) => (socks.push(`open ${ip}:${port}`), { send: () => {}, close: () => void socks.push(`close ${ip}:${port}`) }),
  });
  const set = createSaSet(setCfg(6, { mode: 'udp-enc-tunnel' }));
  await b.install(set);
  assert.deepEqual(socks, ['open 192.0.2.20:4500'], 'the P-CSCF holds a UDP_ENCAP socket on its encapsulation port');
  b.setPeerEncap(set, { address: '192.0.2.10', port: 61000 });
  assert.deepEqual(k.sa('192.0.2.10', set.sas.SA2.spi)!.encap, { type: 2, sport: 4500, dport: 61000 });
  assert.deepEqual(k.sa('192.0.2.20', set.sas.SA1.spi)!.encap, { type: 2, sport: 61000, dport: 4500 });
  // What arrives now is reported from the port the kernel SA expects (no kernel event in this run), not the configured 4500.
  const ctx = b.contextFor({ address: '192.0.2.20', port: 5064 }, { address: '192.0.2.10', port: 50012 });
  assert.equal(ctx?.set, set);
  assert.equal(ctx?.outerEncapSrcPort, 61000);
  b.setPeerEncap(set, { address: '198.51.100.7', port: 61000 });
  assert.equal(k.sa('192.0.2.10', set.sas.SA2.spi), undefined);
  assert.equal(k.sa('198.51.100.7', set.sas.SA2.spi)!.encap!.dport, 61000);
  const out = k.allPolicies().find((p) => p.dir === 'out' && p.sel!.sport === 5062)!;
  assert.equal(out.tmpls[0]!.dst, '198.51.100.7');
  await b.close();
  assert.deepEqual(socks, ['open 192.0.2.20:4500', 'close 192.0.2.20:4500']);
});

test("create() reconciles: deletes this instance's stale entries, keeps other instances and foreign ones", async () => {
  const k = new FakeKernel();
  const stale = await XfrmBackend.create({ transport: k, clock: systemClock, instance: 5 });
  await stale.install(createSaSet(setCfg(7)));
  const other = await XfrmBackend.create({ transport: k, clock: systemClock, instance: 6 });
  await other.install(createSaSet(setCfg(8)));
  const sel = {
    family: 4 as const,
    src: '198.51.100.1',
    dst: '198.51.100.2',
    prefixSrc: 32,
    prefixDst: 32,
    sport: 0,
    dport: 0,
    proto: 0,
    user: 0,
  };
  k.request(
    policyMessage(
      {
        sel,
        dir: 'out',
        priority: 0,
        hardSeconds: 0,
        tmpl: { family: 4, src: '198.51.100.1', dst: '198.51.100.2', spi: 0, reqid: 0, mode: 'transport' },
      },
      { seq: 1 },
    ),
    'foreign',
  );
  // "stale" crashed: a new backend with the same instance starts.
  const fresh = await XfrmBackend.create({ transport: k, clock: systemClock, instance: 5 });
  assert.equal(k.sas.size, 4, 'instance 6 keeps its SAs');
  assert.ok(k.allSas().every((r) => r.sel!.user === ownerTag(6)));
  assert.equal(k.policies.size, 5, 'instance 6 policies + the foreign one');
  assert.deepEqual(fresh.reconcile(), { deletedSas: 0, deletedPolicies: 0, kept: 9 });
  await other.close();
  assert.equal(k.sas.size, 0);
  assert.deepEqual(
    k.allPolicies().map((p) => p.sel!.src),
    ['198.51.100.1'],
  );
});

test('close() removes every set and anything else of ours', async () => {
  const { k, b } = await backend();
  await b.install(createSaSet(setCfg(9)));
  await b.install(createSaSet(setCfg(10)));
  await b.close();
  assert.equal(k.sas.size, 0);
  assert.equal(k.policies.size, 0);
  await assert.rejects(b.install(createSaSet(setCfg(11))), { code: 'XFRM_BAD_PARAMS' });
});

test('allocateSpis skips SPIs live in the kernel and ones already handed out, never 0..255', async () => {
  const k = new FakeKernel();
  const draws = [0x1000 - 256, 0x1000 - 256, 0, 0xffffffff, 7];
  const b = await XfrmBackend.create({ transport: k, clock: systemClock, instance: 5, randomUint32: () => draws.shift() ?? 99 });
  const live = createSaSet(setCfg(12, { pcscf: { ...setCfg(12).pcscf, spiC: 0x1000 } }));
  await b.install(live); // SA4 (UE → P-CSCF) is inbound at the P-CSCF with spi 0x1000
  const spis = b.allocateSpis('192.0.2.20', 3);
  assert.deepEqual(spis, [256, 256 + (0xffffffff % (0x1_0000_0000 - 256)), 263]);
  assert.ok(spis.every((s) => s >= 256 && s !== 0x1000));
});

test('contextFor: the set and SA of a received message; shared port pairs resolved by the kernel counters', async () => {
  const { k, b } = await backend();
  const a = createSaSet(setCfg(13));
  a.apply('authenticated');
  const t = createSaSet(setCfg(14, { ue: { ...setCfg(14).ue, portS: 50027 } })); // shares port_us with a
  await b.install(a);
  await b.install(t);
  const pc = (port: number) => ({ address: '192.0.2.20', port });
  const ue = (port: number) => ({ address: '192.0.2.10', port });
  const c1 = b.contextFor(pc(5064), ue(50028))!;
  assert.deepEqual([c1.set, c1.sa.name, c1.outerSrc, c1.outerEncapSrcPort], [t, 'SA1', '192.0.2.10', undefined]);
  assert.equal(b.contextFor(pc(5064), ue(40000)), undefined, 'no SA for that port pair');
  assert.equal(b.contextFor(pc(5064), { address: '192.0.2.99', port: 50028 }), undefined, 'nor from another address');
  // us -> pc (SA4 here) belongs to both sets: the one whose kernel SA counted the packet wins.
  k.count('192.0.2.20', t.sas.SA4.spi, 1);
  assert.equal(b.contextFor(pc(5062), ue(50027))!.set, t);
  k.count('192.0.2.20', a.sas.SA4.spi, 3);
  assert.equal(b.contextFor(pc(5062), ue(50027))!.set, a);
  assert.equal(b.contextFor(pc(5062), ue(50027))!.set, a, 'no new packets: the best set (current)');
  await b.remove(a);
  assert.equal(b.contextFor(pc(5062), ue(50027))!.set, t);
  t.apply('deleted');
  assert.equal(b.contextFor(pc(5062), ue(50027)), undefined, 'a deleted set is never matched');
});

test('a UE with UDP-enc-tun sets sends NAT-keepalives (0xFF) from its ESP-in-UDP socket to the P-CSCF', async () => {
  const sent: string[] = [];
  // Virtual time: the keepalive timers run on the backend's clock (a wall-clock wait was flaky under load).
  const clock = new ManualClock();
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      clock.advance(5);
      await new Promise((r) => setImmediate(r)); // a keepalive's send is async; its next timer follows it
    }
  };
  const b = await XfrmBackend.create({
    transport: new FakeKernel(),
    keepaliveMs: 20,
    clock,
    openEspInUdp: (ip, port) => ({
      send: (to, bytes) => void sent.push(`${ip}:${port} -> ${to.address}:${to.port} ${Buffer.from(bytes).toString('hex')}`),
      close: () => {},
    }),
  });
  const set = createSaSet(setCfg(15, { role: 'ue', mode: 'udp-enc-tunnel' }));
  await b.install(set);
  await advance(15);
  assert.equal(sent.length, 0, 'nothing before 20 ms of silence');
  await advance(55);
  assert.equal(sent.length, 3, `keepalives at 20, 40, 60 ms: ${sent.length}`);
  assert.equal(sent[0], '192.0.2.10:4500 -> 192.0.2.20:4500 ff');
  assert.equal(b.counters.keepalivesSent, sent.length);
  b.setPeerEncap(set, { address: '192.0.2.20', port: 4501 }); // a UE rarely does this; the keepalives follow its SAs
  await b.remove(set);
  const n = sent.length;
  await advance(100);
  assert.equal(sent.length, n, 'no set, no keepalives');
  await b.close();
});

test('sends to a NATed UE go to its inner address, whatever address the SIP layer used (no clear-text leak)', async () => {
  const b = await XfrmBackend.create({
    transport: new FakeKernel(),
    clock: systemClock,
    openEspInUdp: () => ({ send: () => {}, close: () => {} }),
  });
  const set = createSaSet(setCfg(16, { mode: 'udp-enc-tunnel', ue: { ...setCfg(16).ue, ip: '198.51.100.7', innerIp: '10.0.0.7' } }));
  await b.install(set);
  const viaPublic = b.prepareSend({ address: '192.0.2.20', port: 5062 }, { address: '198.51.100.7', port: 50033 });
  assert.deepEqual([viaPublic.sa.name, viaPublic.dst], ['SA2', '10.0.0.7']);
  assert.equal(b.prepareSend({ address: '192.0.2.20', port: 5062 }, { address: '10.0.0.7', port: 50033 }).dst, '10.0.0.7');
  await b.close();
});

test('saStats reports the kernel counters (not 0) and remove() leaves their final values in the Sa counters', async () => {
  const { k, b } = await backend();
  const s = createSaSet(setCfg(20));
  await b.install(s);
  k.count('192.0.2.20', s.sas.SA1.spi, 4); // SA1 (UE → P-CSCF) is inbound here
  assert.deepEqual(
    b.saStats(s).map((r) => [r.name, r.packets]),
    [
      ['SA1', 4],
      ['SA2', 0],
      ['SA3', 0],
      ['SA4', 0],
    ],
  );
  k.count('192.0.2.20', s.sas.SA1.spi, 2); // after the last read: only the final read before DELSA sees it
  await b.remove(s);
  assert.equal(s.sas.SA1.counters.packets, 6);
  assert.deepEqual(b.saStats(s), [], "a removed set is not the backend's any more");
});

test('restore (issue 13 §3): a restarted run adopts the kernel SAs of a stored set without rewriting them; reconcile then removes only orphans', async () => {
  const k = new FakeKernel();
  const clock = { now: () => 1_000_000, setTimer: systemClock.setTimer };
  const dead = await XfrmBackend.create({ transport: k, instance: 5, clock });
  const kept = createSaSet({ ...setCfg(12), expiresAt: 1_000_000 + 600_000 });
  kept.apply('authenticated');
  await dead.install(kept);
  await dead.install(createSaSet(setCfg(13))); // not in the store: an orphan after the crash
  const other = await XfrmBackend.create({ transport: k, instance: 6, clock });
  await other.install(createSaSet(setCfg(14)));
  const before = new Map(kept.all.map((sa) => [sa.spi, k.sa(sa.params.dst, sa.spi)!]));
  // SIGKILL: `dead` never closes. The next run, same instance, restores the stored set (a new SaSet, same parameters).
  const b = await XfrmBackend.create({ transport: k, instance: 5, clock, reconcile: false });
  assert.equal(k.sas.size, 12, 'nothing removed before the restore');
  const stored = createSaSet({ ...setCfg(12), expiresAt: 1_000_000 + 600_000 });
  stored.apply('authenticated');
  const mark = k.ops.length;
  await b.restore(stored);
  const ops = k.ops.slice(mark).map((o) => o.type);
  assert.ok(!ops.includes('NEWSA') && !ops.includes('DELSA') && !ops.includes('NEWPOLICY'), `adopted, not re-added: ${ops.join(',')}`);
  for (const sa of stored.all) {
    const r = k.sa(sa.params.dst, sa.spi)!;
    assert.equal(r.reqid, before.get(sa.spi)!.reqid, 'the kernel SA keeps its reqid (the outbound templates name it)');
  }
  assert.deepEqual(b.sets, [stored]);
  assert.deepEqual(b.reconcile(), { deletedSas: 4, deletedPolicies: 4, kept: 8 + 8 });
  assert.ok(
    stored.all.every((sa) => k.sa(sa.params.dst, sa.spi)),
    'the adopted set stays',
  );
  assert.equal(k.allSas().filter((r) => r.sel!.user === ownerTag(6)).length, 4, 'another instance is not ours');
  // Sends go through the adopted SAs; a set installed now gets a reqid of its own.
  assert.equal(b.prepareSend({ address: '192.0.2.20', port: 5062 }, { address: '192.0.2.10', port: 50025 }).set, stored);
  const fresh = createSaSet(setCfg(15));
  await b.install(fresh);
  assert.notEqual(k.sa('192.0.2.20', fresh.sas.SA1.spi)!.reqid, k.sa('192.0.2.20', stored.sas.SA1.spi)!.reqid);
  // De-registration of the adopted set removes it like any other.
  await b.remove(stored);
  assert.ok(stored.all.every((sa) => !k.sa(sa.params.dst, sa.spi)));
  await b.close();
  await other.close();
  assert.equal(k.sas.size, 0);
  assert.equal(k.policies.size, 0);
});

test('restore refuses a set the kernel lost or holds differently (nothing written); reconcile removes the leftovers of ours, never a foreign SA', async () => {
  const k = new FakeKernel();
  const clock = { now: () => 1_000_000, setTimer: systemClock.setTimer };
  const dead = await XfrmBackend.create({ transport: k, instance: 5, clock });
  const partial = createSaSet(setCfg(16));
  await dead.install(partial);
  const changed = createSaSet(setCfg(17));
  await dead.install(changed);
  // The kernel lost one SA of `partial` (deleted by hand); `changed` is stored with another algorithm.
  k.request(delSaMessage({ family: 4, dst: '192.0.2.20', spi: partial.sas.SA1.spi }, k.nextSeq()), 'by hand');
  const foreign = createSaSet(setCfg(18));
  await dead.install(foreign);
  // A foreign SA (no tag) where a stored set's SA would be: never taken, never touched.
  for (const [key, p] of k.sas) if (key.endsWith(`|${foreign.sas.SA3.spi}`)) untag(p);
  const b = await XfrmBackend.create({ transport: k, instance: 5, clock, reconcile: false });
  const mark = k.ops.length;
  await assert.rejects(
    b.restore(createSaSet(setCfg(16))),
    (e: XfrmError) => e.code === 'XFRM_RESTORE_MISMATCH' && /SA1 .*not in the kernel/.test(e.message),
  );
  await assert.rejects(
    b.restore(createSaSet({ ...setCfg(17), alg: 'hmac-md5-96', keys: expandKeys(IK, CK, 'hmac-md5-96', 'aes-cbc') })),
    (e: XfrmError) => e.code === 'XFRM_RESTORE_MISMATCH' && /algorithms/.test(e.message),
  );
  await assert.rejects(b.restore(createSaSet(setCfg(18))), (e: XfrmError) => /SA3 .*without our tag/.test(e.message));
  assert.deepEqual(
    k.ops.slice(mark).filter((o) => o.type !== 'GETSA'),
    [],
    'a refused restore writes nothing',
  );
  assert.equal(b.sets.length, 0);
  b.reconcile();
  assert.deepEqual(
    k.allSas().map((r) => r.spi),
    [foreign.sas.SA3.spi],
    'every SA of ours not restored is gone; the untagged one stays',
  );
});

test('handOver: the kernel keeps the SAs and policies for the next run; close() then removes nothing', async () => {
  const { k, b } = await backend();
  await b.install(createSaSet(setCfg(19)));
  b.handOver();
  assert.deepEqual(b.sets, []);
  await b.close();
  assert.equal(k.sas.size, 4);
  assert.equal(k.policies.size, 4);
});

/** Clears the tag in a stored NEWSA payload's selector (an SA someone else added with that identity). */
function untag(payload: Uint8Array): void {
  new DataView(payload.buffer, payload.byteOffset).setUint32(52, 0, true);
}
