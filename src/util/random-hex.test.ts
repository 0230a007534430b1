import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newBranch, newCallId, newTag } from '../sip/builders.ts';
import { randomHex, randomUint32, seededRandomHex } from './random-hex.ts';

test('seededRandomHex: one seed, one sequence; another seed, another; lengths as asked', () => {
  const a = seededRandomHex('s1');
  const b = seededRandomHex('s1');
  const c = seededRandomHex('s2');
  const xs = [a(12), a(8), a(16), a(40)];
  assert.deepEqual([b(12), b(8), b(16), b(40)], xs);
  assert.notEqual(c(12), xs[0]);
  assert.deepEqual(
    xs.map((x) => x.length),
    [24, 16, 32, 80],
  );
  assert.ok(xs.every((x) => /^[0-9a-f]+$/.test(x)));
  assert.throws(() => a(0), RangeError);
});

test('builders take injected randomness: reproducible branch, tag and Call-ID', () => {
  const r1 = seededRandomHex('ids');
  const r2 = seededRandomHex('ids');
  const one = [newBranch(r1), newTag(r1), newCallId('ue.example', r1)];
  assert.deepEqual([newBranch(r2), newTag(r2), newCallId('ue.example', r2)], one);
  assert.match(one[0]!, /^z9hG4bK[0-9a-f]{24}$/);
  assert.match(one[2]!, /^[0-9a-f]{32}@ue\.example$/);
  assert.notEqual(newBranch(), newBranch(), 'the default stays random');
  assert.equal(randomHex(4).length, 8);
});

test('randomUint32: unsigned 32-bit values across pool refills, interleaved with randomHex', () => {
  const xs: number[] = [];
  // 3,000 draws cross the 4 KiB pool's refill twice; the odd randomHex(3) leaves unaligned offsets.
  for (let i = 0; i < 3000; i++) {
    xs.push(randomUint32());
    if (i % 7 === 0) randomHex(3);
  }
  assert.ok(xs.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff));
  assert.ok(
    xs.some((x) => x >= 2 ** 31),
    'the top bit is used (an unsigned read)',
  );
  // 3,000 random 32-bit values: ~0.001 expected collisions; a stuck pool would repeat many.
  assert.ok(new Set(xs).size >= 2990);
});
