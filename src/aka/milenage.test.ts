// Milenage (TS 35.206) against the 20 test sets of TS 35.208 §4.3 (test-vectors.md §1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { computeOpc, f1, f1Star, f2, f3, f4, f5, f5Star, milenage, milenageForAutn, milenageKeys, milenageMacs } from './milenage.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';

interface TestSet {
  set: number;
  K: string;
  RAND: string;
  SQN: string;
  AMF: string;
  OP: string;
  OPc: string;
  f1: string;
  f1s: string;
  f2: string;
  f3: string;
  f4: string;
  f5: string;
  f5s: string;
}

const SETS = JSON.parse(readFileSync(new URL('./testdata/ts35208.json', import.meta.url), 'utf8')) as TestSet[];

test('the fixture holds TS 35.208 sets 1..20', () => {
  assert.deepEqual(
    SETS.map((s) => s.set),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
});

for (const s of SETS) {
  test(`TS 35.208 set ${s.set}: OPc, f1, f1*, f2, f3, f4, f5, f5*`, () => {
    const k = fromHex(s.K);
    const rand = fromHex(s.RAND);
    const opc = computeOpc(k, fromHex(s.OP));
    assert.equal(toHex(opc), s.OPc, 'OPc');
    const o = milenage(k, opc, rand, fromHex(s.SQN), fromHex(s.AMF));
    assert.equal(toHex(o.macA), s.f1, 'f1 (MAC-A)');
    assert.equal(toHex(o.macS), s.f1s, 'f1* (MAC-S)');
    assert.equal(toHex(o.res), s.f2, 'f2 (RES)');
    assert.equal(toHex(o.ck), s.f3, 'f3 (CK)');
    assert.equal(toHex(o.ik), s.f4, 'f4 (IK)');
    assert.equal(toHex(o.ak), s.f5, 'f5 (AK)');
    assert.equal(toHex(o.akStar), s.f5s, 'f5* (AK*)');
  });
}

for (const s of SETS) {
  test(`TS 35.208 set ${s.set}: milenageKeys, milenageMacs and the f1..f5* wrappers`, () => {
    const [k, opc, rand, sqn, amf] = [s.K, s.OPc, s.RAND, s.SQN, s.AMF].map((h) => fromHex(h)) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    const keys = milenageKeys(k, opc, rand);
    const macs = milenageMacs(k, opc, rand, sqn, amf);
    const want = [s.f1, s.f1s, s.f2, s.f3, s.f4, s.f5, s.f5s];
    assert.deepEqual([macs.macA, macs.macS, keys.res, keys.ck, keys.ik, keys.ak, keys.akStar].map(toHex), want);
    const wrappers = [
      f1(k, opc, rand, sqn, amf),
      f1Star(k, opc, rand, sqn, amf),
      f2(k, opc, rand),
      f3(k, opc, rand),
      f4(k, opc, rand),
      f5(k, opc, rand),
      f5Star(k, opc, rand),
    ];
    assert.deepEqual(wrappers.map(toHex), want);
    assert.equal(toHex(computeOpc(k, fromHex(s.OP))), s.OPc);
  });
}

test('milenageForAutn (the USIM side): SQN recovered from AUTN, XMAC-A = f1, f2..f5* for every TS 35.208 set', () => {
  for (const s of SETS) {
    const sqn = fromHex(s.SQN);
    const ak = fromHex(s.f5);
    const autn = new Uint8Array([...sqn.map((v, i) => v ^ ak[i]!), ...fromHex(s.AMF), ...fromHex(s.f1)]);
    const o = milenageForAutn(fromHex(s.K), fromHex(s.OPc), fromHex(s.RAND), autn);
    assert.deepEqual(
      [o.sqn, o.amf, o.xmacA, o.res, o.ck, o.ik, o.ak, o.akStar].map(toHex),
      [s.SQN, s.AMF, s.f1, s.f2, s.f3, s.f4, s.f5, s.f5s],
      `set ${s.set}`,
    );
  }
});

// The spec's formulas written out with one brand-new AES context per block (TS 35.206 §4.1; the
// verification script of test-vectors.md §8): the model the cached-context implementation must equal.
function refE(k: Uint8Array, block: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-128-ecb', k, null);
  c.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(block), c.final()]));
}
const refXor = (a: Uint8Array, b: Uint8Array) => a.map((v, i) => v ^ b[i]!);
const refRot = (b: Uint8Array, bits: number) => new Uint8Array([...b.subarray(bits / 8), ...b.subarray(0, bits / 8)]);
function refMilenage(k: Uint8Array, op: Uint8Array, rand: Uint8Array, sqn: Uint8Array, amf: Uint8Array) {
  const opc = refXor(refE(k, op), op);
  const c = [0, 1, 2, 4, 8].map((v) => new Uint8Array([...new Uint8Array(15), v]));
  const r = [64, 0, 32, 64, 96];
  const tmp = refE(k, refXor(rand, opc));
  const in1 = new Uint8Array([...sqn, ...amf, ...sqn, ...amf]);
  const out1 = refXor(refE(k, refXor(tmp, refXor(refRot(refXor(in1, opc), r[0]!), c[0]!))), opc);
  const [o2, o3, o4, o5] = [1, 2, 3, 4].map((i) => refXor(refE(k, refXor(refRot(refXor(tmp, opc), r[i]!), c[i]!)), opc)) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  return {
    opc,
    macA: out1.slice(0, 8),
    macS: out1.slice(8),
    res: o2.slice(8),
    ak: o2.slice(0, 6),
    ck: o3,
    ik: o4,
    akStar: o5.slice(0, 6),
  };
}

test('the reference model reproduces TS 35.208 set 1 (so the property below compares against something true)', () => {
  const s = SETS[0]!;
  const m = refMilenage(fromHex(s.K), fromHex(s.OP), fromHex(s.RAND), fromHex(s.SQN), fromHex(s.AMF));
  assert.deepEqual([m.opc, m.macA, m.macS, m.res, m.ck, m.ik, m.ak, m.akStar].map(toHex), [
    s.OPc,
    s.f1,
    s.f1s,
    s.f2,
    s.f3,
    s.f4,
    s.f5,
    s.f5s,
  ]);
});

test('property: every function equals the per-block reference on random inputs, keys interleaved beyond the context cache', () => {
  const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
  // A few keys drawn again and again (cache hits), mixed with fresh ones (misses, evictions).
  const input = fc.record({
    k: fc.oneof(fc.constantFrom(...SETS.slice(0, 3).map((s) => fromHex(s.K))), bytes(16)),
    op: bytes(16),
    rand: bytes(16),
    sqn: bytes(6),
    amf: bytes(2),
  });
  fc.assert(
    fc.property(fc.array(input, { minLength: 1, maxLength: 16 }), (inputs) => {
      for (const { k, op, rand, sqn, amf } of inputs) {
        const want = refMilenage(k, op, rand, sqn, amf);
        const opc = computeOpc(k, op);
        assert.equal(toHex(opc), toHex(want.opc));
        const all = milenage(k, opc, rand, sqn, amf);
        const keys = milenageKeys(k, opc, rand);
        const macs = milenageMacs(k, opc, rand, sqn, amf);
        for (const name of ['macA', 'macS'] as const) {
          assert.equal(toHex(all[name]), toHex(want[name]), name);
          assert.equal(toHex(macs[name]), toHex(want[name]), name);
        }
        const autn = new Uint8Array([...sqn.map((v, i) => v ^ want.ak[i]!), ...amf, ...want.macA]);
        const usim = milenageForAutn(k, opc, rand, autn);
        assert.deepEqual([usim.sqn, usim.amf, usim.xmacA].map(toHex), [sqn, amf, want.macA].map(toHex));
        for (const name of ['res', 'ck', 'ik', 'ak', 'akStar'] as const) {
          assert.equal(toHex(all[name]), toHex(want[name]), name);
          assert.equal(toHex(keys[name]), toHex(want[name]), name);
          assert.equal(toHex(usim[name]), toHex(want[name]), name);
        }
      }
    }),
    { numRuns: 200 },
  );
});

test('TS 35.208 set 1: the partial functions and wrappers agree with milenage()', () => {
  const s = SETS[0]!;
  const [k, opc, rand, sqn, amf] = [s.K, s.OPc, s.RAND, s.SQN, s.AMF].map((h) => fromHex(h)) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  const keys = milenageKeys(k, opc, rand);
  const macs = milenageMacs(k, opc, rand, sqn, amf);
  assert.deepEqual([macs.macA, macs.macS, keys.res, keys.ck, keys.ik, keys.ak, keys.akStar].map(toHex), [
    s.f1,
    s.f1s,
    s.f2,
    s.f3,
    s.f4,
    s.f5,
    s.f5s,
  ]);
  assert.deepEqual(
    [
      f1(k, opc, rand, sqn, amf),
      f1Star(k, opc, rand, sqn, amf),
      f2(k, opc, rand),
      f3(k, opc, rand),
      f4(k, opc, rand),
      f5(k, opc, rand),
      f5Star(k, opc, rand),
    ].map(toHex),
    [s.f1, s.f1s, s.f2, s.f3, s.f4, s.f5, s.f5s],
  );
});

test('outputs are plain Uint8Arrays, not Buffers', () => {
  const s = SETS[0]!;
  const o = milenage(fromHex(s.K), fromHex(s.OPc), fromHex(s.RAND), fromHex(s.SQN), fromHex(s.AMF));
  for (const v of Object.values(o)) assert.equal(Object.getPrototypeOf(v), Uint8Array.prototype);
});

test('milenage() and milenageForAutn: each output is its own array (wiping one leaves the others), never the scratch', () => {
  const s = SETS[0]!;
  const [k, opc, rand, sqn, amf] = [s.K, s.OPc, s.RAND, s.SQN, s.AMF].map((h) => fromHex(h)) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  const check = (o: Record<string, Uint8Array>, again: () => Record<string, Uint8Array>) => {
    const want = Object.fromEntries(Object.entries(o).map(([n, v]) => [n, toHex(v)]));
    const names = Object.keys(o);
    for (const wiped of names) {
      const fresh = again();
      fresh[wiped]!.fill(0);
      for (const n of names) if (n !== wiped) assert.equal(toHex(fresh[n]!), want[n], `wiping ${wiped} left ${n}`);
    }
    // A later computation does not write into earlier outputs.
    again();
    for (const n of names) assert.equal(toHex(o[n]!), want[n]);
  };
  const m = () => ({ ...milenage(k, opc, rand, sqn, amf) });
  check(m(), m);
  const autn = fromHex(s.SQN).map((b, i) => b ^ fromHex(s.f5)[i]!);
  const full = new Uint8Array([...autn, ...amf, ...fromHex(s.f1)]);
  const u = () => ({ ...milenageForAutn(k, opc, rand, full) });
  check(u(), u);
  assert.equal(toHex(u().sqn), s.SQN);
  assert.equal(toHex(u().xmacA), s.f1);
});

test('f2..f5* do not depend on SQN or AMF; f1 and f1* do', () => {
  const s = SETS[0]!;
  const [k, opc, rand] = [fromHex(s.K), fromHex(s.OPc), fromHex(s.RAND)];
  const a = milenage(k, opc, rand, fromHex(s.SQN), fromHex(s.AMF));
  const b = milenage(k, opc, rand, fromHex('000000000001'), fromHex('0000'));
  assert.deepEqual([a.res, a.ck, a.ik, a.ak, a.akStar], [b.res, b.ck, b.ik, b.ak, b.akStar]);
  assert.notDeepEqual(a.macA, b.macA);
  assert.notDeepEqual(a.macS, b.macS);
});

test('inputs of the wrong length throw an InputError naming the field, without key material', () => {
  const s = SETS[0]!;
  const k = fromHex(s.K);
  const opc = fromHex(s.OPc);
  const cases: [() => unknown, RegExp][] = [
    [() => milenageKeys(k.subarray(0, 15), opc, fromHex(s.RAND)), /^k: must be 16 octets, got 15$/],
    [() => milenageKeys(k, opc.subarray(1), fromHex(s.RAND)), /^opc: must be 16 octets/],
    [() => milenageKeys(k, opc, new Uint8Array(17)), /^rand: must be 16 octets/],
    [() => milenageMacs(k, opc, fromHex(s.RAND), new Uint8Array(5), fromHex(s.AMF)), /^sqn: must be 6 octets/],
    [() => milenageMacs(k, opc, fromHex(s.RAND), fromHex(s.SQN), new Uint8Array(3)), /^amf: must be 2 octets/],
    [() => computeOpc(k, new Uint8Array(8)), /^op: must be 16 octets/],
  ];
  for (const [fn, re] of cases) {
    assert.throws(fn, (err: unknown) => err instanceof InputError && err.code === 'AKA_BAD_INPUT' && re.test(err.message));
  }
});
