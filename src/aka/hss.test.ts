// HSS side: AUTN assembly (test-vectors §2.1, §6) and the AUTS check (test-vectors §2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateVector, verifyAuts } from './hss.ts';
import { milenageMacs } from './milenage.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';

// TS 35.208 Test Set 20 K/OPc, used by both AUTS rows of test-vectors §2.
const K20 = fromHex('90dca4eda45b53cf0f12d7c9c3bc6a89');
const OPC20 = fromHex('cb9cccc4b9258e6dca4760379fb82581');
const RAND_A1 = fromHex('9fddc72092c6ad036b6e464789315b78');
const AUTS_A1 = fromHex('4f2039392ddd4bb4316ed4a14688');

test('§2.1: AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A (free5gc TestRAND vector)', () => {
  const av = generateVector({
    k: fromHex('5122250214c33e723a5dd523fc145fc0'),
    opc: fromHex('981d464c7c52eb6e5036234984ad0bcf'),
    sqn: fromHex('16f3b3f70fc2'),
    amf: fromHex('c3ab'),
    rand: fromHex('81e92b6c0ee0e12ebceba8d92a99dfa5'),
  });
  assert.equal(toHex(av.autn), 'bb52e91c747ac3ab2a5c23d15ee351d5');
  assert.equal(toHex(av.xres), '28d7b0f2a2ec3de5');
  assert.equal(toHex(av.ck), '5349fbe098649f948f5d2e973a81c00f');
  assert.equal(toHex(av.ik), '9744871ad32bf9bbd1dd5ce54e3e2e5a');
  assert.equal(toHex(av.ak), 'ada15aeb7bb8');
  assert.equal(toHex(av.macA), '2a5c23d15ee351d5');
});

test('§6: the Test Set 1 vector (SQN as a number) gives AUTN 55f328b43577b9b94a9ffac354dfafb3', () => {
  const av = generateVector({
    k: fromHex('465b5ce8b199b49faa5f0a2ee238a6bc'),
    opc: fromHex('cd63cb71954a9f4e48a5994e37a02baf'),
    sqn: 0xff9bb4d0b607,
    amf: fromHex('b9b9'),
    rand: fromHex('23553cbe9637a89d218ae64dae47bf35'),
  });
  assert.equal(toHex(av.autn), '55f328b43577b9b94a9ffac354dfafb3');
  assert.equal(toHex(av.sqn), 'ff9bb4d0b607');
  assert.equal(toHex(av.xres), 'a54211d5e3ba50bf');
});

test('without a RAND the vector takes 16 octets from the injected rng', () => {
  const calls: number[] = [];
  const av = generateVector({ k: K20, opc: OPC20, sqn: 1, amf: fromHex('8000') }, (n) => {
    calls.push(n);
    return new Uint8Array(n).fill(0xaa);
  });
  assert.deepEqual(calls, [16]);
  assert.equal(toHex(av.rand), 'aa'.repeat(16));
  assert.equal(generateVector({ k: K20, opc: OPC20, sqn: 1, amf: fromHex('8000') }).rand.length, 16);
});

test('§2 A1: AUTS recovers SQN_MS 000000000001 and MAC-S verifies with AMF* = 0000', () => {
  const r = verifyAuts({ k: K20, opc: OPC20, rand: RAND_A1, auts: AUTS_A1 });
  assert.equal(r.ok, true);
  assert.equal(toHex(r.sqnMs), '000000000001');
  assert.equal(toHex(r.macS), '4bb4316ed4a14688');
});

test('§2 A2: the AUTS of a test USIM recovers SQN_MS 00000000002a and verifies', () => {
  const r = verifyAuts({ k: K20, opc: OPC20, rand: fromHex('aa'.repeat(16)), auts: fromHex('43681ad3daf006bcde405a207267') });
  assert.equal(r.ok, true);
  assert.equal(toHex(r.sqnMs), '00000000002a');
});

test("MAC-S uses AMF* = 0000, not the AUTN's AMF (§2 negative check with set 20 AMF 61df)", () => {
  const withRealAmf = milenageMacs(K20, OPC20, RAND_A1, fromHex('000000000001'), fromHex('61df')).macS;
  assert.equal(toHex(withRealAmf), '147cbf9c2578f4a6');
  assert.notEqual(toHex(withRealAmf), toHex(AUTS_A1.subarray(6)));
});

test('an AUTS with a flipped bit, another RAND or another K fails the MAC-S check', () => {
  const flipped = AUTS_A1.slice();
  flipped[13]! ^= 0x01;
  assert.equal(verifyAuts({ k: K20, opc: OPC20, rand: RAND_A1, auts: flipped }).ok, false);
  assert.equal(verifyAuts({ k: K20, opc: OPC20, rand: fromHex('00'.repeat(16)), auts: AUTS_A1 }).ok, false);
  const k = K20.slice();
  k[0]! ^= 0x80;
  assert.equal(verifyAuts({ k, opc: OPC20, rand: RAND_A1, auts: AUTS_A1 }).ok, false);
});

test('an AUTS that is not 14 octets is an InputError', () => {
  assert.throws(
    () => verifyAuts({ k: K20, opc: OPC20, rand: RAND_A1, auts: AUTS_A1.subarray(0, 13) }),
    (e: unknown) => e instanceof InputError && /^auts: must be 14 octets, got 13$/.test(e.message),
  );
});

test('default RANDs: 1,000 vectors (several refills of the RAND block) carry 1,000 distinct non-zero RANDs', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const v = generateVector({ k: new Uint8Array(16).fill(1), opc: new Uint8Array(16).fill(2), sqn: i + 1, amf: new Uint8Array(2) });
    assert.equal(v.rand.length, 16);
    assert.ok(v.rand.some((b) => b !== 0));
    seen.add(toHex(v.rand));
  }
  assert.equal(seen.size, 1000);
});
