// TS 33.102 Annex C SQN management: converters, HE generator and resync, USIM array.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_IND_LEN,
  SQN_MAX,
  SqnArray,
  SqnFloor,
  joinSqn,
  maxSeq,
  nextSqnAfter,
  resyncSqn,
  splitSqn,
  sqnFromBytes,
  sqnToBytes,
  toSqn,
} from './sqn.ts';
import { AkaError } from './errors.ts';
import { InputError } from '../util/errors.ts';
import { toHex } from '../util/bytes.ts';

test('SQN converts to 6 big-endian octets and back, exactly over the whole 48-bit range', () => {
  assert.equal(toHex(sqnToBytes(0xff9bb4d0b607)), 'ff9bb4d0b607');
  assert.equal(toHex(sqnToBytes(SQN_MAX)), 'ffffffffffff');
  assert.equal(toHex(sqnToBytes(1n)), '000000000001');
  fc.assert(fc.property(fc.integer({ min: 0, max: SQN_MAX }), (n) => sqnFromBytes(sqnToBytes(n)) === n));
});

test('SQN out of 0..2^48-1, fractional, or of the wrong octet count is an InputError', () => {
  for (const v of [-1, SQN_MAX + 1, 1.5, 2n ** 48n, -1n]) assert.throws(() => toSqn(v), InputError);
  assert.throws(() => sqnFromBytes(new Uint8Array(5)), /sqn: must be 6 octets/);
});

test('SQN = SEQ ‖ IND with IND in the low 5 bits by default', () => {
  assert.equal(DEFAULT_IND_LEN, 5);
  assert.deepEqual(splitSqn(0x21), { seq: 1, ind: 1 });
  assert.equal(joinSqn(1, 1), 0x21);
  assert.deepEqual(splitSqn(0x21, 0), { seq: 0x21, ind: 0 });
  assert.equal(maxSeq(5), 2 ** 43 - 1);
  assert.throws(() => joinSqn(0, 32), /ind: must be 0..31/);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: SQN_MAX }), fc.integer({ min: 0, max: 16 }), (sqn, indLen) => {
      const { seq, ind } = splitSqn(sqn, indLen);
      return joinSqn(seq, ind, indLen) === sqn;
    }),
  );
});

test('HE: each vector increments SEQ and cycles IND through 0..2^indLen-1', () => {
  let last = 0;
  const seen: { seq: number; ind: number }[] = [];
  for (let i = 0; i < 34; i++) {
    last = nextSqnAfter(last);
    seen.push(splitSqn(last));
  }
  assert.deepEqual(seen.slice(0, 3), [
    { seq: 1, ind: 1 },
    { seq: 2, ind: 2 },
    { seq: 3, ind: 3 },
  ]);
  assert.deepEqual(seen[30], { seq: 31, ind: 31 });
  assert.deepEqual(seen[31], { seq: 32, ind: 0 });
  assert.equal(nextSqnAfter(0x21, 0), 0x22, 'indLen 0: plain counter');
});

test('HE: a fixed-IND profile keeps IND and increments SEQ', () => {
  const a = nextSqnAfter(0, { ind: 7 });
  const b = nextSqnAfter(a, { ind: 7 });
  assert.deepEqual(
    [splitSqn(a), splitSqn(b)],
    [
      { seq: 1, ind: 7 },
      { seq: 2, ind: 7 },
    ],
  );
  assert.throws(() => nextSqnAfter(0, { ind: 32 }), InputError);
});

test('HE: refuses with AKA_SQN_EXHAUSTED rather than wrap SEQ past 2^(48-indLen)-1', () => {
  const last = joinSqn(maxSeq(5), 3);
  assert.throws(
    () => nextSqnAfter(last),
    (e: unknown) => e instanceof AkaError && e.code === 'AKA_SQN_EXHAUSTED' && /2\^43-1/.test(e.message),
  );
  assert.equal(splitSqn(nextSqnAfter(joinSqn(maxSeq(5) - 1, 3))).seq, maxSeq(5));
  assert.throws(() => nextSqnAfter(SQN_MAX, 0), AkaError);
});

test('HE resync: the next vector after resync carries SEQ_MS + 1', () => {
  const last = joinSqn(5, 5);
  const after = resyncSqn(last, joinSqn(100, 9));
  assert.equal(splitSqn(nextSqnAfter(after)).seq, 101);
  assert.equal(resyncSqn(last, sqnToBytes(joinSqn(100, 9))), after, 'SQN_MS as 6 octets');
});

test('HE resync never moves SEQ_HE backwards', () => {
  const last = joinSqn(500, 2);
  assert.equal(resyncSqn(last, joinSqn(100, 9)), last);
  assert.equal(resyncSqn(last, joinSqn(500, 31)), last);
});

test('USIM array: accepts SEQ > SEQ_MS[IND] per slot, so vectors of other slots may arrive out of order', () => {
  const a = new SqnArray();
  const s = (seq: number, ind: number) => joinSqn(seq, ind);
  for (const sqn of [s(10, 1), s(12, 3)]) {
    assert.deepEqual(a.check(sqn), { ok: true });
    a.accept(sqn);
  }
  assert.deepEqual(a.check(s(11, 2)), { ok: true }, 'older SEQ, unused slot');
  assert.deepEqual(a.check(s(10, 1)), { ok: false, reason: 'not_fresh' }, 'replay');
  assert.deepEqual(a.check(s(9, 1)), { ok: false, reason: 'not_fresh' });
  assert.deepEqual(a.check(s(11, 1)), { ok: true });
  assert.equal(a.highest(), s(12, 3));
  assert.equal(a.snapshot()[1], 10);
});

test('USIM array: check changes nothing; only accept records', () => {
  const a = new SqnArray();
  a.check(joinSqn(4, 0));
  assert.equal(a.highest(), 0);
  assert.deepEqual(a.snapshot(), new Array(32).fill(0));
});

test('USIM array: the age limit L is off by default and refuses SEQ more than L below the highest', () => {
  const seqMs = new Array(32).fill(0);
  seqMs[0] = 100;
  assert.deepEqual(new SqnArray({ seqMs }).check(joinSqn(2, 1)), { ok: true });
  const a = new SqnArray({ seqMs, ageLimit: 10 });
  assert.equal(a.highest(), joinSqn(100, 0));
  assert.deepEqual(a.check(joinSqn(89, 1)), { ok: false, reason: 'too_old' });
  assert.deepEqual(a.check(joinSqn(90, 1)), { ok: true });
});

test('USIM array: the optional jump limit Δ refuses SEQ too far ahead of the highest', () => {
  const a = new SqnArray({ maxJump: 1000 });
  assert.deepEqual(a.check(joinSqn(1000, 0)), { ok: true });
  assert.deepEqual(a.check(joinSqn(1001, 0)), { ok: false, reason: 'too_far' });
});

test('USIM array: acceptAny passes every SQN but still records without lowering a slot', () => {
  const a = new SqnArray({ acceptAny: true });
  a.accept(joinSqn(50, 4));
  assert.deepEqual(a.check(joinSqn(1, 4)), { ok: true });
  a.accept(joinSqn(1, 4));
  assert.equal(a.snapshot()[4], 50);
  assert.equal(a.highest(), joinSqn(50, 4));
});

test('USIM array: a restored seqMs must have 2^indLen entries', () => {
  assert.throws(() => new SqnArray({ seqMs: [1, 2, 3] }), /seqMs: must have 32 entries/);
  assert.equal(new SqnArray({ indLen: 2, seqMs: [0, 0, 7, 0] }).highest(), joinSqn(7, 2, 2));
});

test('simple rule: accept only SQN > SQN_MS, then SQN_MS := SQN', () => {
  const f = new SqnFloor(0x20);
  assert.deepEqual(f.check(0x20), { ok: false, reason: 'not_fresh' });
  assert.deepEqual(f.check(0x21), { ok: true });
  f.accept(0x30);
  assert.equal(f.highest(), 0x30);
  assert.deepEqual(f.check(0x30), { ok: false, reason: 'not_fresh' });
  assert.deepEqual(new SqnFloor(0x30, { acceptAny: true }).check(1), { ok: true });
});

test('the HE generator and the USIM array agree: every new SQN is fresh, every repeat is not (model)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 80 }), (indLen, n) => {
      const usim = new SqnArray({ indLen });
      let last = 0;
      for (let i = 0; i < n; i++) {
        last = nextSqnAfter(last, indLen);
        if (!usim.check(last).ok) return false;
        usim.accept(last);
        if (usim.check(last).ok) return false;
      }
      return usim.highest() === last;
    }),
  );
});
