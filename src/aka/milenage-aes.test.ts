// The AES-128-ECB contexts of Milenage: a kept context encrypts every block as a fresh one does (ECB,
// padding off, nothing buffered between calls), keys never mix, only a returning K is kept, and what is
// kept stays bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { AES_CONTEXT_SLOTS, aesContextCount, aesDone, aesEcb, clearAesContexts } from './milenage-aes.ts';
import { fromHex, toHex } from '../util/bytes.ts';

/** One block, one brand-new context (the path Milenage used before contexts were kept). */
function freshBlock(k: Uint8Array, block: Uint8Array): string {
  const c = createCipheriv('aes-128-ecb', k, null);
  c.setAutoPadding(false);
  return toHex(Buffer.concat([c.update(block), c.final()]));
}

/** The kept context for k (asked for twice: the second time keeps it). */
function kept(k: Uint8Array) {
  const before = aesContextCount();
  aesDone(aesEcb(k));
  const c = aesEcb(k);
  assert.ok(aesContextCount() === before + 1 || aesContextCount() === AES_CONTEXT_SLOTS, 'kept on its second use');
  return c;
}

test('FIPS-197 Appendix C.1 (AES-128): one-off and kept contexts, several calls each', () => {
  clearAesContexts();
  const k = fromHex('000102030405060708090a0b0c0d0e0f');
  const pt = fromHex('00112233445566778899aabbccddeeff');
  for (let i = 0; i < 4; i++) {
    const c = aesEcb(k);
    assert.equal(toHex(c.update(pt)), '69c4e0d86a7b0430d8cdb78070b4c55a');
    aesDone(c);
  }
  assert.equal(aesContextCount(), 1);
});

test('a kept context: an update of 16 or 80 octets returns as many, each block as a fresh context encrypts it on its own', () => {
  clearAesContexts();
  const k = randomBytes(16);
  const c = kept(k);
  for (let n = 0; n < 200; n++) {
    const blocks = n % 2 === 0 ? 1 : 5;
    const data = randomBytes(16 * blocks);
    const out = c.update(data);
    assert.equal(out.length, data.length, 'nothing held back, nothing left over');
    for (let b = 0; b < blocks; b++) {
      assert.equal(toHex(out.subarray(16 * b, 16 * b + 16)), freshBlock(k, data.subarray(16 * b, 16 * b + 16)));
    }
  }
  // The same block twice gives the same output: no chaining, no state carried from one call to the next.
  const block = randomBytes(16);
  assert.equal(toHex(c.update(block)), toHex(c.update(block)));
  aesDone(c);
  assert.equal(aesEcb(k), c, 'still kept after aesDone');
});

test('keys used once each (per-subscriber keys) are not kept: one-off contexts, finalised by aesDone', () => {
  clearAesContexts();
  for (let i = 0; i < 100; i++) {
    const c = aesEcb(randomBytes(16));
    aesDone(c);
    assert.throws(() => c.update(new Uint8Array(16)), 'finalised');
  }
  assert.equal(aesContextCount(), 0);
});

test('property: interleaved keys (more than the cache holds) each get their own cipher; the cache stays bounded', () => {
  clearAesContexts();
  const keys = Array.from({ length: AES_CONTEXT_SLOTS + 4 }, () => randomBytes(16));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(keys.length - 1), fc.uint8Array({ minLength: 16, maxLength: 16 })), { minLength: 1, maxLength: 40 }),
      (ops) => {
        for (const [i, block] of ops) {
          const k = keys[i]!;
          const c = aesEcb(k);
          assert.equal(toHex(c.update(block)), freshBlock(k, block));
          aesDone(c);
        }
        assert.ok(aesContextCount() <= AES_CONTEXT_SLOTS);
      },
    ),
  );
});

test('the cache holds its own copy of K: the caller may wipe or reuse its array', () => {
  clearAesContexts();
  const k = fromHex('000102030405060708090a0b0c0d0e0f');
  const pt = fromHex('00112233445566778899aabbccddeeff');
  aesDone(kept(k));
  const other = randomBytes(16);
  k.set(other); // same array, another key: must not find the old context
  const c = aesEcb(k);
  assert.equal(toHex(c.update(pt)), freshBlock(other, pt));
  aesDone(c);
  clearAesContexts();
  assert.equal(aesContextCount(), 0);
});
