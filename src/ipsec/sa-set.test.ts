// The 33.203 SA set: directions, SPIs and ports of the four SAs (spec digest §6.2), SPI rules
// (RFC 4303 §2.1, 33.203 §7.1), the state machine (§8), lifetimes, outbound selection, redaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { toHex } from '../util/bytes.ts';
import { IpsecError } from './errors.ts';
import {
  createSaSet,
  lifetimeAfterSuccess,
  saParamsOf,
  selectOutbound,
  transition,
  TRANSFORM_CACHE,
  type SaSetEvent,
  type SaSetState,
} from './sa-set.ts';
import { expandKeys } from './keys.ts';
import { restoreSaSet, saSetRecord } from './sa-set-record.ts';
import { makePair, pairConfig, SET1_CK, SET1_IK, sipRequest } from '../../test/support/ims-fixture.ts';

const base = pairConfig({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport' });
// ue: portC 50000 portS 50001 spiC 0x10001 spiS 0x10002; pcscf: portC 5062 portS 5064 spiC 0x10003 spiS 0x10004

const STATES: SaSetState[] = ['temporary', 'current', 'old', 'deleted'];
const EVENTS: SaSetEvent[] = ['authenticated', 'superseded', 'transactions-done', 'expired', 'failed', 'deleted'];
const EXPECTED: Record<SaSetState, Partial<Record<SaSetEvent, SaSetState>>> = {
  temporary: { authenticated: 'current', failed: 'deleted', expired: 'deleted', deleted: 'deleted' },
  current: { authenticated: 'current', superseded: 'old', expired: 'deleted', deleted: 'deleted' },
  old: { 'transactions-done': 'deleted', expired: 'deleted', deleted: 'deleted' },
  deleted: { expired: 'deleted', deleted: 'deleted' },
};

test('transition: every (state, event) pair either moves as spec digest §8 says or throws IPSEC_ILLEGAL_TRANSITION', () => {
  for (const s of STATES) {
    for (const e of EVENTS) {
      const want = EXPECTED[s][e];
      if (want) assert.equal(transition(s, e).state, want, `${s} + ${e}`);
      else
        assert.throws(
          () => transition(s, e),
          (x) => x instanceof IpsecError && x.code === 'IPSEC_ILLEGAL_TRANSITION' && x.message.includes(e),
          `${s} + ${e}`,
        );
    }
  }
  assert.deepEqual(transition('temporary', 'authenticated').actions, ['use-for-new-requests']);
  assert.deepEqual(transition('current', 'superseded').actions, ['stop-new-requests']);
  assert.deepEqual(transition('old', 'transactions-done').actions, ['remove-sas']);
  assert.deepEqual(transition('deleted', 'deleted').actions, []);
});

test('the four SAs: SA1 uc→ps spi_ps, SA2 pc→us spi_us, SA3 ps→uc spi_uc, SA4 us→pc spi_pc', () => {
  const p = saParamsOf({ ...base, role: 'ue' });
  const view = (x: typeof p.SA1) => [x.src, x.srcPort, x.dst, x.dstPort, x.spi];
  assert.deepEqual(view(p.SA1), ['192.0.2.10', 50000, '192.0.2.20', 5064, 0x10004]);
  assert.deepEqual(view(p.SA2), ['192.0.2.20', 5062, '192.0.2.10', 50001, 0x10002]);
  assert.deepEqual(view(p.SA3), ['192.0.2.20', 5064, '192.0.2.10', 50000, 0x10001]);
  assert.deepEqual(view(p.SA4), ['192.0.2.10', 50001, '192.0.2.20', 5062, 0x10003]);
});

test('UE: SA1/SA4 outbound, SA2/SA3 inbound; the P-CSCF the mirror image with identical parameters', () => {
  const { ue, pcscf } = makePair({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport' });
  assert.deepEqual(
    ue.all.map((s) => `${s.name}:${s.direction}`),
    ['SA1:out', 'SA2:in', 'SA3:in', 'SA4:out'],
  );
  assert.deepEqual(
    pcscf.all.map((s) => `${s.name}:${s.direction}`),
    ['SA1:in', 'SA2:out', 'SA3:out', 'SA4:in'],
  );
  assert.deepEqual(
    ue.params().map((p) => [p.spi, p.src, p.dst]),
    pcscf.params().map((p) => [p.spi, p.src, p.dst]),
  );
  // Each side's inbound SPIs are the ones it chose itself (spec digest §6.1, §18 pitfall 1).
  assert.deepEqual(ue.inbound.map((s) => s.spi).sort(), [0x10001, 0x10002]);
  assert.deepEqual(pcscf.inbound.map((s) => s.spi).sort(), [0x10003, 0x10004]);
});

test('udp-enc-tunnel: encapsulation ports per direction (default 4500), UE inner address behind a NAT', () => {
  const p = saParamsOf({
    ...base,
    role: 'pcscf',
    mode: 'udp-enc-tunnel',
    ue: { ...base.ue, innerIp: '10.1.2.3' },
    encap: { uePort: 40000, pcscfPort: 4500 },
  });
  assert.deepEqual(p.SA1.encap, { srcPort: 40000, dstPort: 4500 });
  assert.deepEqual(p.SA2.encap, { srcPort: 4500, dstPort: 40000 });
  assert.equal(p.SA1.innerSrc, '10.1.2.3');
  assert.equal(p.SA3.innerDst, '10.1.2.3');
  assert.equal(p.SA1.innerDst, undefined);
  const d = saParamsOf({ ...base, role: 'ue', mode: 'udp-enc-tunnel' });
  assert.deepEqual(d.SA4.encap, { srcPort: 4500, dstPort: 4500 });
  assert.equal(saParamsOf({ ...base, role: 'ue' }).SA1.encap, undefined);
});

test('SPI rules: 0 and 1..255 reserved, above 2^32-1 refused, spi-c = spi-s refused (IPSEC_BAD_SPI)', () => {
  const bad = (ue: Partial<typeof base.ue>, msg: RegExp) =>
    assert.throws(
      () => createSaSet({ ...base, role: 'ue', ue: { ...base.ue, ...ue } }),
      (e) => e instanceof IpsecError && e.code === 'IPSEC_BAD_SPI' && msg.test(e.message),
    );
  bad({ spiC: 0 }, /ue\.spiC must be 256\.\.4294967295.*got 0/);
  bad({ spiC: 1 }, /got 1$/);
  bad({ spiS: 255 }, /ue\.spiS/);
  bad({ spiS: 2 ** 32 }, /got 4294967296/);
  bad({ spiS: 1.5 }, /got 1.5/);
  bad({ spiC: 4096, spiS: 4096 }, /spi-c must differ from spi-s/);
  assert.throws(() => createSaSet({ ...base, role: 'ue', pcscf: { ...base.pcscf, spiC: 7 } }), /pcscf\.spiC/);
});

test('other parameters are checked with named errors (ports, families, pair, window, encap in transport)', () => {
  const code = (f: () => unknown, c: string) => assert.throws(f, (e) => e instanceof IpsecError && e.code === c);
  code(() => createSaSet({ ...base, role: 'ue', ue: { ...base.ue, portC: 0 } }), 'IPSEC_BAD_PARAMS');
  code(() => createSaSet({ ...base, role: 'ue', ue: { ...base.ue, ip: '2001:db8::1' } }), 'IPSEC_BAD_PARAMS');
  code(() => createSaSet({ ...base, role: 'ue', ealg: 'aes-gcm' }), 'IPSEC_BAD_PARAMS');
  code(() => createSaSet({ ...base, role: 'ue', replayWindow: 16 }), 'IPSEC_BAD_PARAMS');
  code(() => createSaSet({ ...base, role: 'ue', encap: { uePort: 4500, pcscfPort: 4500 } }), 'IPSEC_BAD_PARAMS');
});

test('selectOutbound: UE uc→ps = SA1 and us→pc = SA4 (UDP responses may use either); P-CSCF pc→us = SA2, ps→uc = SA3', () => {
  const { ue, pcscf } = makePair({ alg: 'hmac-md5-96', ealg: 'null', mode: 'transport' });
  assert.equal(selectOutbound(ue, 50000, 5064)?.name, 'SA1');
  assert.equal(selectOutbound(ue, 50001, 5062)?.name, 'SA4');
  assert.equal(selectOutbound(ue, 50000, 5062), undefined);
  assert.equal(selectOutbound(ue, 5062, 50001), undefined, 'inbound SAs are never selected for sending');
  assert.equal(selectOutbound(pcscf, 5062, 50001)?.name, 'SA2');
  assert.equal(selectOutbound(pcscf, 5064, 50000)?.name, 'SA3');
});

test('lifecycle: temporary → current → old → deleted; deletion kills the SAs (IPSEC_SA_DELETED on seal)', () => {
  const { ue } = makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport' });
  assert.equal(ue.state, 'temporary');
  ue.apply('authenticated');
  ue.apply('superseded');
  assert.equal(ue.state, 'old');
  assert.ok(ue.sas.SA1.outbound());
  ue.apply('transactions-done');
  assert.equal(ue.state, 'deleted');
  assert.ok(ue.all.every((s) => !s.live && s.deadReason === 'deleted'));
  assert.throws(
    () => ue.sas.SA1.outbound(),
    (e) => e instanceof IpsecError && e.code === 'IPSEC_SA_DELETED',
  );
  assert.throws(() => ue.apply('authenticated'), /not allowed in state "deleted"/);
});

test('lifetimes: caller-given absolute times; soft fires once, hard deletes once, both idempotent', () => {
  const set = createSaSet({ ...base, role: 'pcscf', expiresAt: 10_000, softExpiresAt: 8_000 });
  assert.deepEqual(set.checkExpiry(7_999), { soft: false, hard: false });
  assert.deepEqual(set.checkExpiry(8_000), { soft: true, hard: false });
  assert.deepEqual(set.checkExpiry(9_000), { soft: false, hard: false });
  assert.equal(set.expireIfDue(9_999), false);
  assert.deepEqual(set.checkExpiry(10_000), { soft: false, hard: true });
  assert.equal(set.state, 'deleted');
  assert.ok(set.all.every((s) => s.deadReason === 'expired'));
  assert.deepEqual(set.checkExpiry(20_000), { soft: false, hard: false });
  set.apply('deleted'); // idempotent after expiry
  assert.equal(set.state, 'deleted');
});

test('lifetime after success = max(previous, now + expires + 30 s) (24.229 via spec digest §8 rule 3)', () => {
  assert.equal(lifetimeAfterSuccess(1_000, 600), 1_000 + 630_000);
  assert.equal(lifetimeAfterSuccess(1_000, 600, 5_000_000), 5_000_000);
  assert.equal(lifetimeAfterSuccess(1_000, 600, 2_000), 631_000);
});

test('redaction: toJSON, JSON.stringify, util.inspect and summary never contain a key', () => {
  const { ue } = makePair({ alg: 'hmac-sha-1-96', ealg: 'des-ede3-cbc', mode: 'udp-enc-tunnel' });
  const secrets = [toHex(base.keys.ikEsp), toHex(base.keys.ckEsp).slice(0, 16), 'f769bcd7', 'b40ba9a3'];
  const texts = [
    JSON.stringify(ue),
    inspect(ue, { depth: 20 }),
    inspect(ue.sas, { depth: 20 }),
    inspect(ue.all, { depth: 20 }),
    JSON.stringify(ue.summary()),
    inspect(ue.config, { depth: 20 }),
  ];
  for (const t of texts) for (const s of secrets) assert.ok(!t.toLowerCase().includes(s), `leaked in ${t.slice(0, 80)}`);
  assert.match(inspect(ue.sas.SA1), /keys=\[redacted\]/);
  assert.equal(JSON.parse(JSON.stringify(ue.sas.SA2)).spi, 0x10002);
});

test('summary: one row per SA with spi, direction, ports, algorithms, mode, state and counters', () => {
  const { pcscf } = makePair({ alg: 'hmac-md5-96', ealg: 'aes-cbc', mode: 'transport' });
  const rows = pcscf.summary();
  assert.equal(rows.length, 4);
  assert.deepEqual(
    { ...rows[0]!, drops: undefined },
    {
      name: 'SA1',
      direction: 'in',
      spi: 0x10004,
      src: '192.0.2.10',
      dst: '192.0.2.20',
      srcPort: 50000,
      dstPort: 5064,
      alg: 'hmac-md5-96',
      ealg: 'aes-cbc',
      mode: 'transport',
      state: 'temporary',
      seq: 0,
      packets: 0,
      bytes: 0,
      drops: undefined,
    },
  );
  assert.equal(rows[0]!.drops.icv, 0);
});

test('the set owns a copy of the keys: a caller wiping its own (the UE does) leaves the SAs keyed', () => {
  const keys = { ikEsp: new Uint8Array(20).fill(0x11), ckEsp: new Uint8Array(16).fill(0x22) };
  const set = createSaSet({ ...base, role: 'ue', keys });
  keys.ikEsp.fill(0);
  keys.ckEsp.fill(0);
  for (const sa of set.all) {
    assert.equal(toHex(sa.params.keys.ikEsp), '11'.repeat(20), `${sa.name} IK_ESP`);
    assert.equal(toHex(sa.params.keys.ckEsp), '22'.repeat(16), `${sa.name} CK_ESP`);
  }
});

test('memory per set (issue 9 §2): the SA parameters of different sets share one V8 hidden class (no per-object maps)', () => {
  // V8 (Node 20) gives each object of a literal that opens with a spread (`{ ...common, spi }`) a
  // hidden class of its own: hundreds of bytes per SA and megamorphic reads. Checked with V8's own
  // %HaveSameMap (natives syntax switched on for this one compiled function).
  setFlagsFromString('--allow-natives-syntax');
  const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  setFlagsFromString('--no-allow-natives-syntax');
  const sets = [0x8000_0001, 0x9000_0001, 0xfff0_0001].map((spi) =>
    createSaSet({
      ...base,
      role: 'pcscf',
      ue: { ...base.ue, spiC: spi, spiS: spi + 1 },
      pcscf: { ...base.pcscf, spiC: spi + 2, spiS: spi + 3 },
    }),
  );
  for (const s of sets.slice(1)) {
    for (const name of ['SA1', 'SA2'] as const) assert.ok(sameMap(sets[0]!.sas[name].params, s.sas[name].params));
    assert.ok(sameMap(sets[0]!, s), 'the sets');
    assert.ok(sameMap(sets[0]!.config.ue, s.config.ue) && sameMap(sets[0]!.config.pcscf, s.config.pcscf), "the sets' copies of both ends");
  }
});

test('memory per set (issue 9 §2): the set holds no transform until its first packet; the least recently used give theirs up past TRANSFORM_CACHE and rebuild it bit-exact', () => {
  const pairs = Array.from({ length: TRANSFORM_CACHE + 2 }, (_, i) =>
    makePair({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: i % 200 }),
  );
  assert.equal(pairs[0]!.ue.hasTransform, false, 'an installed, idle set holds no transform');
  const roundTrip = (p: (typeof pairs)[number], n: number) => {
    const r = p.pcscf.sas.SA1.open(p.ue.sas.SA1.outbound().seal(sipRequest('MESSAGE', n), 17));
    assert.ok(r.ok, `packet ${n} opened`);
    assert.equal(toHex(r.payload), toHex(sipRequest('MESSAGE', n)));
  };
  for (const p of pairs) roundTrip(p, 1);
  // Two sets per pair used, the cache holds TRANSFORM_CACHE: the earliest sets gave theirs up.
  assert.equal(pairs[0]!.ue.hasTransform, false);
  assert.equal(pairs[0]!.pcscf.hasTransform, false);
  assert.equal(pairs.at(-1)!.ue.hasTransform, true);
  roundTrip(pairs[0]!, 2); // rebuilt from the set's key value: still opens what the peer (also rebuilt) sealed
  assert.equal(pairs[0]!.ue.hasTransform, true);
  assert.equal(pairs[0]!.pcscf.sas.SA1.seq, 2);
  // A deleted set lets its transform go at once.
  pairs[0]!.ue.apply('deleted');
  assert.equal(pairs[0]!.ue.hasTransform, false);
});

test('the set keeps one key value: keys read back equal what was given, for every algorithm pair (salts included)', () => {
  for (const [alg, ealg] of [
    ['hmac-sha-1-96', 'aes-cbc'],
    ['hmac-md5-96', 'des-ede3-cbc'],
    ['hmac-sha-1-96', 'null'],
    ['null', 'aes-gcm'],
    ['aes-gmac', 'null'],
  ] as const) {
    const keys = expandKeys(SET1_IK, SET1_CK, alg, ealg);
    const set = createSaSet({ ...base, alg, ealg, role: 'pcscf', keys });
    const got = set.sas.SA3.params.keys;
    assert.equal(toHex(got.ikEsp), toHex(keys.ikEsp), `${alg}/${ealg} IK_ESP`);
    assert.equal(toHex(got.ckEsp), toHex(keys.ckEsp), `${alg}/${ealg} CK_ESP`);
    assert.equal(got.salt && toHex(got.salt), keys.salt && toHex(keys.salt), `${alg}/${ealg} salt`);
  }
});

test('SPIs above 2^31-1 (kept as int32 inside the set) read back unsigned everywhere: the ends, the SAs, JSON and the stored record', () => {
  const spis = { uc: 0xffff_fff0, us: 0x8000_0000, pc: 0x7fff_ffff, ps: 0x9abc_def0 };
  const set = createSaSet({
    ...base,
    role: 'pcscf',
    ue: { ...base.ue, spiC: spis.uc, spiS: spis.us, innerIp: '10.0.0.7' },
    pcscf: { ...base.pcscf, spiC: spis.pc, spiS: spis.ps },
  });
  assert.deepEqual([set.ue.spiC, set.ue.spiS, set.pcscf.spiC, set.pcscf.spiS], [spis.uc, spis.us, spis.pc, spis.ps]);
  assert.deepEqual(
    set.all.map((sa) => sa.spi),
    [spis.ps, spis.us, spis.uc, spis.pc],
  );
  const json = JSON.parse(JSON.stringify({ ue: set.config.ue, pcscf: set.config.pcscf })) as Record<string, Record<string, unknown>>;
  assert.deepEqual(json.ue, {
    ip: base.ue.ip,
    portC: base.ue.portC,
    portS: base.ue.portS,
    spiC: spis.uc,
    spiS: spis.us,
    innerIp: '10.0.0.7',
  });
  assert.deepEqual(json.pcscf, { ip: base.pcscf.ip, portC: base.pcscf.portC, portS: base.pcscf.portS, spiC: spis.pc, spiS: spis.ps });
  set.apply('authenticated');
  const r = saSetRecord(set);
  assert.deepEqual([r.ue.spiC, r.ue.spiS, r.ue.innerIp, r.pcscf.spiC, r.pcscf.spiS], [spis.uc, spis.us, '10.0.0.7', spis.pc, spis.ps]);
  const back = restoreSaSet(r, set.keys, {});
  assert.deepEqual(
    back.all.map((sa) => sa.spi),
    set.all.map((sa) => sa.spi),
  );
});
