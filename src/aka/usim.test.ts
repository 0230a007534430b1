// USIM side: AUTN check order, results, AUTS (TS 33.102 §6.3.3), checked against the HSS side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Usim, akaFailureError, buildAuts } from './usim.ts';
import { generateVector, verifyAuts } from './hss.ts';
import { joinSqn, nextSqnAfter } from './sqn.ts';
import { AkaError } from './errors.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { inspect } from 'node:util';

// TS 35.208 Test Set 1.
const K = fromHex('465b5ce8b199b49faa5f0a2ee238a6bc');
const OP = fromHex('cdc202d5123e20f62b6d676ac72cb318');
const OPC = fromHex('cd63cb71954a9f4e48a5994e37a02baf');
const RAND = fromHex('23553cbe9637a89d218ae64dae47bf35');
const AUTN = fromHex('55f328b43577b9b94a9ffac354dfafb3');
const SQN = 0xff9bb4d0b607;

test('a valid AUTN gives RES, CK, IK, SQN and AMF of Test Set 1', () => {
  const r = new Usim({ k: K, opc: OPC }).respond(RAND, AUTN);
  assert.equal(r.result, 'ok');
  if (r.result !== 'ok') return;
  assert.equal(toHex(r.res), 'a54211d5e3ba50bf');
  assert.equal(toHex(r.ck), 'b40ba9a3c58b2a05bbf0d987b21bf8cb');
  assert.equal(toHex(r.ik), 'f769bcd751044604127672711c6d3441');
  assert.equal(toHex(r.sqn), 'ff9bb4d0b607');
  assert.equal(toHex(r.amf), 'b9b9');
});

test('OP is accepted in place of OPc; exactly one of them must be given', () => {
  assert.equal(new Usim({ k: K, op: OP }).respond(RAND, AUTN).result, 'ok');
  assert.throws(() => new Usim({ k: K }), /op\/opc: give exactly one of op and opc/);
  assert.throws(() => new Usim({ k: K, op: OP, opc: OPC }), InputError);
});

test('a wrong K, a flipped MAC bit or a changed AMF is a MAC failure', () => {
  const k = K.slice();
  k[15]! ^= 1;
  assert.equal(new Usim({ k, opc: OPC }).respond(RAND, AUTN).result, 'mac_failure');
  const autn = AUTN.slice();
  autn[15]! ^= 1;
  assert.equal(new Usim({ k: K, opc: OPC }).respond(RAND, autn).result, 'mac_failure');
  const amf = AUTN.slice();
  amf[6]! ^= 0x80;
  assert.equal(new Usim({ k: K, opc: OPC }).respond(RAND, amf).result, 'mac_failure');
});

test('a MAC failure records nothing: the same SQN with a good MAC is accepted afterwards', () => {
  const usim = new Usim({ k: K, opc: OPC });
  const autn = AUTN.slice();
  autn[15]! ^= 1;
  usim.respond(RAND, autn);
  assert.equal(toHex(usim.sqnMs), '000000000000');
  assert.equal(usim.respond(RAND, AUTN).result, 'ok');
});

test('a replayed AUTN is a sync failure whose AUTS carries SQN_MS and verifies at the HSS', () => {
  const usim = new Usim({ k: K, opc: OPC });
  assert.equal(usim.respond(RAND, AUTN).result, 'ok');
  const r = usim.respond(RAND, AUTN);
  assert.equal(r.result, 'sync_failure');
  if (r.result !== 'sync_failure') return;
  assert.equal(r.reason, 'not_fresh');
  assert.equal(toHex(r.sqnMs), 'ff9bb4d0b607');
  assert.equal(r.auts.length, 14);
  const hss = verifyAuts({ k: K, opc: OPC, rand: RAND, auts: r.auts });
  assert.equal(hss.ok, true);
  assert.equal(toHex(hss.sqnMs), 'ff9bb4d0b607');
});

test('sqnMs option: an AUTN whose SQN is not above it is a sync failure', () => {
  assert.equal(new Usim({ k: K, opc: OPC, sqnMs: SQN }).respond(RAND, AUTN).result, 'sync_failure');
  assert.equal(new Usim({ k: K, opc: OPC, sqnMs: fromHex('ff9bb4d0b606') }).respond(RAND, AUTN).result, 'ok');
  assert.equal(new Usim({ k: K, opc: OPC, sqnMs: SQN, acceptAnySqn: true }).respond(RAND, AUTN).result, 'ok');
});

test('AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S reproduces test-vectors §2 A1 (set 20, SQN_MS 1)', () => {
  const auts = buildAuts(
    fromHex('90dca4eda45b53cf0f12d7c9c3bc6a89'),
    fromHex('cb9cccc4b9258e6dca4760379fb82581'),
    fromHex('9fddc72092c6ad036b6e464789315b78'),
    1,
  );
  assert.equal(toHex(auts), '4f2039392ddd4bb4316ed4a14688');
});

test('HSS and USIM round trip: AVs from the Annex C generator are accepted once, in any order within the array', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 1, max: 20 }), (k, n) => {
      const usim = new Usim({ k, opc: OPC });
      let last = 0;
      const avs = [];
      for (let i = 0; i < n; i++) {
        last = nextSqnAfter(last);
        avs.push(generateVector({ k, opc: OPC, sqn: last, amf: fromHex('8000'), rand: fromHex(i.toString(16).padStart(32, '0')) }));
      }
      for (const av of avs.reverse()) {
        const r = usim.respond(av.rand, av.autn);
        if (r.result !== 'ok' || toHex(r.res) !== toHex(av.xres) || toHex(r.ck) !== toHex(av.ck)) return false;
      }
      return avs.every((av) => usim.respond(av.rand, av.autn).result === 'sync_failure');
    }),
    { numRuns: 20 },
  );
});

test('the Annex C array refuses an older SEQ in the same IND slot', () => {
  const usim = new Usim({ k: K, opc: OPC });
  const av = (sqn: number, i: number) =>
    generateVector({ k: K, opc: OPC, sqn, amf: fromHex('8000'), rand: fromHex(i.toString(16).padStart(32, '0')) });
  const a = av(joinSqn(9, 4), 1);
  const b = av(joinSqn(8, 4), 2);
  assert.equal(usim.respond(a.rand, a.autn).result, 'ok');
  assert.equal(usim.respond(b.rand, b.autn).result, 'sync_failure');
});

test('the USIM never shows K or OPc through inspect or JSON', () => {
  const usim = new Usim({ k: K, opc: OPC });
  for (const text of [inspect(usim, { depth: 5 }), JSON.stringify(usim)]) {
    assert.ok(!text.includes('465b5ce8') && !/70, 91, 92/.test(text), text);
  }
});

test('akaFailureError maps failures to AKA_MAC_FAILURE / AKA_SYNC_FAILURE', () => {
  const k = K.slice();
  k[0]! ^= 1;
  const mac = new Usim({ k, opc: OPC }).respond(RAND, AUTN);
  const sync = new Usim({ k: K, opc: OPC, sqnMs: SQN }).respond(RAND, AUTN);
  assert.ok(mac.result === 'mac_failure' && sync.result === 'sync_failure');
  const e1 = akaFailureError(mac);
  const e2 = akaFailureError(sync);
  assert.ok(e1 instanceof AkaError && e1.code === 'AKA_MAC_FAILURE');
  assert.ok(e2 instanceof AkaError && e2.code === 'AKA_SYNC_FAILURE');
});

test('RAND or AUTN of the wrong length is an InputError', () => {
  const usim = new Usim({ k: K, opc: OPC });
  assert.throws(() => usim.respond(RAND.subarray(1), AUTN), /rand: must be 16 octets/);
  assert.throws(() => usim.respond(RAND, AUTN.subarray(1)), /autn: must be 16 octets/);
});
