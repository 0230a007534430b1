import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Histogram, __TESTS } from './histogram.ts';

const { indexOf, upperOf, BUCKETS } = __TESTS;

test('every value lands in a bucket whose upper edge is above it and within 1/128 of it', () => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 2 ** 34, noNaN: true }), (v) => {
      const i = indexOf(v);
      assert.ok(i >= 0 && i < BUCKETS);
      const up = upperOf(i);
      assert.ok(up > v, `${v} → bucket ${i} upper ${up}`);
      assert.ok(up - v <= Math.max(1, v / 128), `${v}: upper ${up} too far`);
      if (i > 0) assert.ok(upperOf(i - 1) <= v, `${v} belongs above bucket ${i - 1}`);
    }),
  );
});

// Against a naive model: sort the samples and read the rank (nearest-rank definition).
test('percentiles match a sorted-array model within the bucket width', () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 60_000, noNaN: true }), { minLength: 1, maxLength: 400 }),
      fc.constantFrom(0.5, 0.9, 0.99, 0.999, 1),
      (ms, q) => {
        const h = new Histogram();
        for (const x of ms) h.recordMs(x);
        const sorted = [...ms].sort((a, b) => a - b);
        const exact = sorted[Math.max(1, Math.ceil(q * ms.length)) - 1]!;
        const got = h.percentileMs(q);
        assert.ok(got >= exact - 1e-9, `q=${q}: ${got} < exact ${exact}`);
        assert.ok(got <= exact + Math.max(0.001, exact / 128) + 1e-9, `q=${q}: ${got} ≫ exact ${exact}`);
        assert.equal(h.count, ms.length);
        assert.ok(Math.abs(h.maxMs - Math.max(...ms)) < 1e-6);
      },
    ),
  );
});

test('merging histograms (also through JSON) equals recording everything in one', () => {
  const a = new Histogram();
  const b = new Histogram();
  const all = new Histogram();
  for (let i = 0; i < 5000; i++) {
    const x = (i * 7919) % 3001;
    (i % 2 ? a : b).recordMs(x);
    all.recordMs(x);
  }
  const m = Histogram.fromJSON(JSON.parse(JSON.stringify(a)));
  m.add(b);
  for (const q of [0.5, 0.9, 0.99, 0.999, 1]) assert.equal(m.percentileMs(q), all.percentileMs(q));
  assert.equal(m.count, 5000);
});

test('memory does not grow with samples: one fixed array', () => {
  const h = new Histogram();
  const before = JSON.stringify(h.toJSON()).length;
  for (let i = 0; i < 200_000; i++) h.recordMs(5);
  assert.equal(h.toJSON().buckets.length, 1);
  assert.ok(before > 0);
});
