import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DueQueue, Pool, TokenBucket } from './scheduler.ts';

/** Takes as many tokens as offered at each tick from 0 to `ms`; returns the count. */
function drain(b: TokenBucket, ms: number, tick: number): number {
  let n = 0;
  for (let t = 0; t <= ms; t += tick) while (b.take(t)) n++;
  return n;
}

test('the bucket gives rate × time tokens, whatever the tick (up to one burst)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 50 }), (rate, tick) => {
      const b = new TokenBucket({ rate, start: 0 });
      const n = drain(b, 10_000, tick);
      assert.ok(Math.abs(n - rate * 10) <= b.burst + 1, `rate ${rate} tick ${tick}: ${n}`);
    }),
  );
});

test('a ramp gives half the tokens over the ramp, then the full rate', () => {
  const b = new TokenBucket({ rate: 1000, rampMs: 10_000, start: 0 });
  let n = 0;
  for (let t = 0; t <= 10_000; t += 5) while (b.take(t)) n++;
  assert.ok(Math.abs(n - 5000) <= 60, `ramp: ${n}`);
  assert.equal(b.currentRate(5000), 500);
  for (let t = 10_005; t <= 20_000; t += 5) while (b.take(t)) n++;
  assert.ok(Math.abs(n - 15_000) <= 60, `after ramp: ${n}`);
});

test('a stalled loop does not get a burst larger than the bucket', () => {
  const b = new TokenBucket({ rate: 1000, start: 0 });
  let n = 0;
  while (b.take(60_000)) n++;
  assert.equal(n, b.burst);
});

test('DueQueue hands items out in order, only when due', () => {
  const q = new DueQueue<number>();
  for (let i = 0; i < 5000; i++) q.push(i, i * 10);
  assert.equal(q.popDue(-1), undefined);
  let next = 0;
  for (let t = 0; t < 50_000; t += 7) for (let x = q.popDue(t); x !== undefined; x = q.popDue(t)) assert.equal(x, next++);
  assert.equal(next, 5000);
  assert.equal(q.size, 0);
});

test('Pool matches a Set model under random add/delete and picks only members', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 30 }))), (ops) => {
      const p = new Pool<number>();
      const m = new Set<number>();
      for (const [add, x] of ops) {
        if (add) {
          p.add(x);
          m.add(x);
        } else assert.equal(p.delete(x), m.delete(x));
        assert.equal(p.size, m.size);
        const picked = p.pick();
        assert.ok(picked === undefined ? m.size === 0 : m.has(picked));
      }
      assert.deepEqual([...p.values()].sort(), [...m].sort());
    }),
  );
});

test('Pool with positions in its members (a slot) matches a Set model too', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 30 }))), (ops) => {
      const items = Array.from({ length: 31 }, (_, id) => ({ id, pos: undefined as number | undefined }));
      const p = new Pool<(typeof items)[number]>({ get: (x) => x.pos, set: (x, i) => void (x.pos = i) });
      const m = new Set<number>();
      for (const [add, x] of ops) {
        if (add) {
          p.add(items[x]!);
          m.add(x);
        } else assert.equal(p.delete(items[x]!), m.delete(x));
        assert.equal(p.size, m.size);
        assert.equal(p.has(items[x]!), m.has(x));
      }
      assert.deepEqual(
        p
          .values()
          .map((i) => i.id)
          .sort(),
        [...m].sort(),
      );
      // Each member's slot says where it is.
      p.values().forEach((item, i) => assert.equal(item.pos, i));
    }),
  );
});
