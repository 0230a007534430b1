// SaSlots, the one owner of an SA-set lifecycle: expiry on its own timers (no sweeps), exactly one
// onDeleted per set, removal failures reported, and promotion/refresh carried into the backend —
// checked against the xfrm backend on the fake kernel (issue 11 §1: the kernel SAs kept the
// reg-await-auth lifetime after promotion) and through the UE's table, which is a thin user of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../util/clock.ts';
import { UeSaTable } from '../ue/sa-table.ts';
import { FakeKernel } from './backends/xfrm/_fake-kernel.ts';
import { XfrmBackend } from './backends/xfrm/backend.ts';
import { expandKeys } from './keys.ts';
import { createSaSet, type SaSet, type SaSetConfig, type SaSetEvent } from './sa-set.ts';
import { SaSlots, type SlotsBackend } from './sa-slots.ts';

const IK = new Uint8Array(16).fill(0x11);
const CK = new Uint8Array(16).fill(0x22);
let n = 0;

function cfg(over: Partial<SaSetConfig> = {}): SaSetConfig {
  const i = ++n;
  return {
    role: 'pcscf',
    ue: { ip: '192.0.2.10', portC: 40000 + 2 * i, portS: 40001 + 2 * i, spiC: 0x2000 + 16 * i + 1, spiS: 0x2000 + 16 * i + 2 },
    pcscf: { ip: '192.0.2.20', portC: 5062, portS: 5064, spiC: 0x2000 + 16 * i + 3, spiS: 0x2000 + 16 * i + 4 },
    alg: 'hmac-sha-1-96',
    ealg: 'null',
    keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'null'),
    mode: 'transport',
    ...over,
  };
}

/** A backend that records what it was asked, with removals that can be made to fail. */
function recorder() {
  const installed = new Set<SaSet>();
  const log: string[] = [];
  let failRemove: Error | undefined;
  const backend: SlotsBackend = {
    install: async (s) => {
      installed.add(s);
      log.push(`install ${s.id}`);
    },
    remove: async (s) => {
      log.push(`remove ${s.id}`);
      if (failRemove) throw failRemove;
      installed.delete(s);
    },
    refresh: (s) => {
      log.push(`refresh ${s?.id} ${s?.expiresAt}`);
    },
  };
  return { backend, installed, log, failNext: (e: Error | undefined) => (failRemove = e) };
}

function slotsWith(b: SlotsBackend, clock: ManualClock) {
  const deleted: { set: string; event: SaSetEvent; reason: string; error?: string }[] = [];
  const slots = new SaSlots({
    backend: b,
    clock,
    onDeleted: (set, event, reason, error) => deleted.push({ set: set.id, event, reason, ...(error && { error: error.message }) }),
  });
  return { slots, deleted };
}

const tick = () => new Promise((r) => setImmediate(r));

test('a temporary set expires on its own timer after reg-await-auth: removed from the backend, exactly one onDeleted', async () => {
  const clock = new ManualClock();
  const r = recorder();
  const { slots, deleted } = slotsWith(r.backend, clock);
  const set = createSaSet({ ...cfg(), expiresAt: 240_000 });
  await slots.installTemporary(set);
  clock.advance(239_999);
  assert.equal(slots.temporary, set);
  clock.advance(1);
  await tick();
  assert.equal(set.state, 'deleted');
  assert.equal(slots.temporary, undefined);
  assert.equal(r.installed.size, 0);
  assert.deepEqual(deleted, [{ set: set.id, event: 'expired', reason: 'reg-await-auth expired without a protected REGISTER' }]);
  await slots.delete(set, 'deleted', 'again');
  await slots.deleteAll('deleted', 'again');
  assert.equal(deleted.length, 1, 'one onDeleted per set, whatever comes later');
});

test('promotion: the backend is told the new lifetime; the old set goes when its last transaction ends; refresh re-arms the timer', async () => {
  const clock = new ManualClock();
  const r = recorder();
  const { slots, deleted } = slotsWith(r.backend, clock);
  const a = createSaSet({ ...cfg(), expiresAt: 240_000 });
  await slots.installTemporary(a);
  slots.promote(a, 3_630_000);
  assert.equal(slots.current, a);
  assert.ok(r.log.includes(`refresh ${a.id} 3630000`), 'the backend follows the promotion (issue 11 §1)');
  clock.advance(300_000);
  assert.equal(a.state, 'current', 'the reg-await-auth timer no longer applies');

  const b = createSaSet({ ...cfg(), expiresAt: clock.now() + 240_000 });
  await slots.installTemporary(b);
  slots.begin(a);
  slots.promote(b, clock.now() + 3_630_000);
  assert.equal(a.state, 'old');
  assert.deepEqual(slots.old, [a]);
  await tick();
  assert.equal(deleted.length, 0, 'an old set with a transaction in flight stays');
  slots.end(a);
  await tick();
  assert.deepEqual(
    deleted.map((d) => [d.set, d.event]),
    [[a.id, 'transactions-done']],
  );

  slots.refresh(clock.now() + 10_000_000);
  clock.advance(3_630_000);
  assert.equal(b.state, 'current', 'refresh moved the expiry');
  clock.advance(10_000_000);
  await tick();
  assert.equal(b.state, 'deleted');
  assert.deepEqual(deleted.at(-1), { set: b.id, event: 'expired', reason: 'SA lifetime expired' });
});

test('a failed backend removal is reported with the error, never swallowed; the set still leaves its slot', async () => {
  const clock = new ManualClock();
  const r = recorder();
  const { slots, deleted } = slotsWith(r.backend, clock);
  const set = createSaSet({ ...cfg(), expiresAt: 240_000 });
  await slots.installTemporary(set);
  r.failNext(new Error('DELSA SA1: EPERM'));
  await slots.discardTemporary('403 from the S-CSCF');
  assert.deepEqual(deleted, [{ set: set.id, event: 'failed', reason: '403 from the S-CSCF', error: 'DELSA SA1: EPERM' }]);
  assert.ok(slots.empty);
});

test('a second temporary set replaces the first, which is removed before the new one is installed (same inbound SPIs)', async () => {
  const clock = new ManualClock();
  const r = recorder();
  const { slots, deleted } = slotsWith(r.backend, clock);
  const a = createSaSet({ ...cfg(), expiresAt: 240_000 });
  const b = createSaSet({ ...cfg(), expiresAt: 240_000 });
  await slots.installTemporary(a);
  await slots.installTemporary(b);
  assert.deepEqual(r.log, [`install ${a.id}`, `remove ${a.id}`, `install ${b.id}`]);
  assert.deepEqual(
    deleted.map((d) => d.set),
    [a.id],
  );
  assert.equal(slots.temporary, b);
});

test("xfrm (fake kernel): promotion rewrites the kernel SAs' hard lifetime, so they outlive reg-await-auth (issue 11 §1)", async () => {
  const clock = new ManualClock(1_000_000);
  const k = new FakeKernel();
  const b = await XfrmBackend.create({ transport: k, instance: 7, clock });
  const { slots } = slotsWith(b, clock);
  const set = createSaSet({ ...cfg(), expiresAt: clock.now() + 240_000 });
  await slots.installTemporary(set);
  assert.ok(k.allSas().every((r) => r.hardSeconds === 240));
  clock.advance(5_000);
  slots.promote(set, clock.now() + 3_630_000);
  assert.equal(k.ops.filter((o) => o.type === 'UPDSA').length, 4);
  assert.ok(
    k.allSas().every((r) => r.hardSeconds === 3635),
    "hard lifetime counted from the SAs' add time",
  );
  await slots.deleteAll('deleted', 'test');
  assert.equal(k.sas.size, 0);
  await b.close();
});

test("xfrm (fake kernel): the UE's table promotes through the slots, so its kernel SAs follow too", async () => {
  const clock = new ManualClock(2_000_000);
  const k = new FakeKernel();
  const b = await XfrmBackend.create({ transport: k, instance: 8, clock });
  const deleted: string[] = [];
  const t = new UeSaTable({
    backend: b,
    clock,
    localIp: '192.0.2.10',
    pcscfIp: '192.0.2.20',
    pcscfEncapPort: 4500,
    regAwaitAuthMs: 240_000,
    label: 'ue',
    onCreated: () => {},
    onDeleted: (s) => deleted.push(s.id),
  });
  const offer = { spiC: 0x3001, spiS: 0x3002, portC: 41000, portS: 41001, header: '' };
  const choice = {
    ok: true as const,
    alg: 'hmac-sha-1-96' as const,
    ealg: 'null' as const,
    mod: 'trans' as const,
    server: { spiC: 0x3003, spiS: 0x3004, portC: 5062, portS: 5064 },
    index: 0,
  };
  await t.createTemporary(offer, choice, new Uint8Array(16).fill(1), new Uint8Array(16).fill(2), []);
  assert.ok(k.allSas().every((r) => r.hardSeconds === 240));
  await t.promote(600);
  assert.ok(
    k.allSas().every((r) => r.hardSeconds === 630),
    'expires + 30 s in the kernel, not reg-await-auth',
  );
  clock.advance(240_000);
  await tick();
  assert.equal(t.current?.state, 'current');
  assert.deepEqual(deleted, []);
  await t.deleteAll();
  assert.equal(k.sas.size, 0);
  await b.close();
});

test('restoreCurrent (issue 13 §3): a restored current set is installed, filed as current and expires on its own timer; never over live sets', async () => {
  const clock = new ManualClock(0);
  const r = recorder();
  const { slots, deleted } = slotsWith(r.backend, clock);
  const set = createSaSet({ ...cfg(), expiresAt: 1000 });
  set.apply('authenticated');
  await slots.restoreCurrent(set);
  assert.equal(slots.current, set);
  assert.ok(r.installed.has(set));
  const other = createSaSet(cfg());
  other.apply('authenticated');
  await assert.rejects(slots.restoreCurrent(other), /slots not empty/);
  await assert.rejects(new SaSlots({ backend: r.backend, clock }).restoreCurrent(createSaSet(cfg())), /not current/);
  clock.advance(1000);
  await slots.settled();
  assert.equal(slots.current, undefined);
  assert.deepEqual(
    deleted.map((d) => [d.set, d.event]),
    [[set.id, 'expired']],
  );
});

test('restoreOld (issue 13 §3): a restored old set waits 64·T1 for a transaction over it, then goes; one that gets a transaction goes when it ends', async () => {
  const clock = new ManualClock(0);
  const r = recorder();
  const { slots, deleted } = slotsWith(r.backend, clock);
  const mk = (state: 'current' | 'old') => {
    const s = createSaSet({ ...cfg(), expiresAt: 600_000 });
    s.apply('authenticated');
    if (state === 'old') s.apply('superseded');
    return s;
  };
  const [current, quiet, busy] = [mk('current'), mk('old'), mk('old')];
  await assert.rejects(slots.restoreOld(quiet, 32_000), /after its current one/);
  await slots.restoreCurrent(current);
  await assert.rejects(slots.restoreOld(mk('current'), 32_000), /not old/);
  await slots.restoreOld(quiet, 32_000);
  await slots.restoreOld(busy, 32_000);
  assert.deepEqual(slots.old, [quiet, busy]);
  assert.ok(r.installed.has(quiet) && r.installed.has(busy));
  // The UE retransmits over `busy` after the restart: a transaction begins on it.
  slots.begin(busy);
  clock.advance(32_000);
  await slots.settled();
  assert.deepEqual(slots.old, [busy], 'the quiet one went after the grace, the busy one stays');
  assert.deepEqual(
    deleted.map((d) => [d.set, d.event]),
    [[quiet.id, 'transactions-done']],
  );
  slots.end(busy);
  await slots.settled();
  assert.deepEqual(slots.old, []);
  assert.deepEqual(slots.current, current);
  assert.ok(!r.installed.has(busy));
});

test('many registrations on one clock share one timer (the expiry queue): each set still goes at its own expiry, a refreshed one later, a deleted one never', async () => {
  const clock = new ManualClock(0);
  const r = recorder();
  const regs = Array.from({ length: 50 }, () => slotsWith(r.backend, clock));
  const sets: SaSet[] = [];
  for (const [i, { slots }] of regs.entries()) {
    const set = createSaSet({ ...cfg(), expiresAt: 1000 + 10 * (49 - i) }); // due in the reverse order of creation
    await slots.installTemporary(set);
    slots.promote(set, set.expiresAt!);
    sets.push(set);
  }
  assert.equal(clock.pending, 1, 'one clock timer for 50 sets');
  regs[0]!.slots.refresh(5000); // was due last (1490): now after everyone
  await regs[1]!.slots.deleteAll('deleted', 'de-registered'); // was due at 1480: never expires
  clock.advance(1489);
  await tick();
  const expired = regs.flatMap(({ deleted }) => deleted.filter((d) => d.event === 'expired').map((d) => d.set));
  assert.deepEqual(
    expired.sort(),
    sets
      .slice(2)
      .map((s) => s.id)
      .sort(),
  );
  assert.equal(sets[0]!.state, 'current');
  assert.equal(clock.pending, 1);
  clock.advance(5000);
  await tick();
  assert.equal(sets[0]!.state, 'deleted');
  assert.equal(clock.pending, 0, 'nothing left to wait for: no timer keeps the process alive');
});
