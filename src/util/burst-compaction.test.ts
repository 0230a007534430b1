import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BurstDetector, FragmentationTrigger, type BurstCompactionPolicy, type FragmentationPolicy } from './burst-compaction.ts';

const P: BurstCompactionPolicy = { minNew: 100, quietMs: 10_000, quietMax: 5, minIntervalMs: 60_000 };

/** Feeds one sample per second: `perSecond(t)` new registrations in second t; returns the seconds at which it said compact. */
function run(d: BurstDetector, seconds: number, perSecond: (t: number) => number): number[] {
  const out: number[] = [];
  let count = 0;
  for (let t = 0; t <= seconds; t++) {
    count += perSecond(t);
    if (d.observe(t * 1000, count)) out.push(t);
  }
  return out;
}

test('a burst then quiet: one compaction, quietMs after the last new registration; none without a new burst', () => {
  const d = new BurstDetector(P);
  // 50/s for seconds 1..4 (200 new), then nothing for five minutes.
  assert.deepEqual(
    run(d, 300, (t) => (t >= 1 && t <= 4 ? 50 : 0)),
    [14],
  );
});

test('no compaction below minNew, however long the quiet', () => {
  assert.deepEqual(
    run(new BurstDetector(P), 600, (t) => (t >= 1 && t <= 3 ? 33 : 0)),
    [],
  );
});

test('a trickle up to quietMax per window is quiet; above it is not', () => {
  // Burst of 200 in second 1, then 1 every 2 s (5 per 10 s window): quiet.
  assert.deepEqual(
    run(new BurstDetector(P), 100, (t) => (t === 1 ? 200 : t % 2 === 0 ? 1 : 0)),
    [11],
  );
  // Then 1 per second (10 per window): never quiet.
  assert.deepEqual(
    run(new BurstDetector(P), 100, (t) => (t === 1 ? 200 : 1)),
    [],
  );
});

test('bounded frequency: a second burst right after the first waits out minIntervalMs', () => {
  // Bursts at 1 and 30 s: the first compacts at 11, the second's quiet is reached at 40 but the
  // interval allows the next one only at 71.
  assert.deepEqual(
    run(new BurstDetector(P), 300, (t) => (t === 1 || t === 30 ? 200 : 0)),
    [11, 71],
  );
});

test('the window keeps a bounded number of samples however long it runs', () => {
  const d = new BurstDetector(P);
  run(d, 5_000, (t) => t % 3);
  assert.ok(d.kept <= 12, `kept ${d.kept}`);
});

test('BurstDetector decides what a naive scan over every sample decides', () => {
  const policy = fc.record({
    minNew: fc.integer({ min: 1, max: 40 }),
    quietMs: fc.integer({ min: 1, max: 50 }),
    quietMax: fc.integer({ min: 0, max: 5 }),
    minIntervalMs: fc.integer({ min: 0, max: 200 }),
    quietCpuShare: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
  });
  const steps = fc.array(
    fc.record({ dt: fc.integer({ min: 1, max: 20 }), dn: fc.integer({ min: 0, max: 8 }), dc: fc.integer({ min: 0, max: 20 }) }),
    { maxLength: 300 },
  );
  fc.assert(
    fc.property(policy, steps, (p, ss) => {
      const d = new BurstDetector(p);
      const samples: { t: number; n: number; c: number }[] = [];
      let t = 0;
      let n = 0;
      let c = 0;
      let base: number | undefined;
      let last: number | undefined;
      for (const s of ss) {
        t += s.dt;
        n += s.dn;
        c += s.dc;
        samples.push({ t, n, c });
        base ??= n;
        // Naive: the latest sample at or before t - quietMs is the reference.
        const ref = [...samples].reverse().find((x) => x.t <= t - p.quietMs);
        const want =
          n - base >= p.minNew &&
          ref !== undefined &&
          n - ref.n <= p.quietMax &&
          (p.quietCpuShare === undefined || c - ref.c <= p.quietCpuShare * (t - ref.t)) &&
          (last === undefined || t - last >= p.minIntervalMs);
        if (want) {
          last = t;
          base = n;
        }
        assert.equal(d.observe(t, n, c), want, `at t=${t} n=${n} cpu=${c}`);
      }
    }),
  );
});

test('no compaction while the process is busy (refreshes that are not new registrations), once it is quiet', () => {
  const d = new BurstDetector({ ...P, quietCpuShare: 0.25 });
  // A burst of 1000 new registrations in 10 s, then none, but the process stays at 40 % of a core
  // (refreshes) until t = 60 s, then at 5 %.
  let count = 0;
  let cpu = 0;
  const fired: number[] = [];
  for (let t = 0; t <= 120; t++) {
    if (t < 10) count += 100;
    cpu += t < 60 ? 400 : 50;
    if (d.observe(t * 1000, count, cpu)) fired.push(t);
  }
  // Quiet by count from t = 20 (window 10 s); by CPU once the window's average is at most 25 %: with k
  // busy seconds in it, 400k + 50(10 - k) <= 2500 ms, so k <= 5, first at t = 64.
  assert.deepEqual(fired, [64]);
});

const F: FragmentationPolicy = { minWasteBytes: 100, minRatio: 2, windowSamples: 10, minIntervalMs: 60_000 };

test('fragmentation: a steady heap committed far beyond its least use compacts once per interval; a growing or mostly live one never', () => {
  // Steady: committed 400, use swinging 150..250 (garbage between full GCs): live estimate 150.
  const steady = new FragmentationTrigger(F);
  const fired: number[] = [];
  for (let t = 0; t <= 200; t++) if (steady.observe(t * 1000, 400, t % 5 === 0 ? 150 : 250)) fired.push(t);
  // Ten samples fill the window (t = 9), then every 60 s; the window starts again after each.
  assert.deepEqual(fired, [9, 69, 129, 189]);
  // Mostly live: committed 400, least use 250 (ratio 1.6).
  const live = new FragmentationTrigger(F);
  for (let t = 0; t <= 200; t++) assert.equal(live.observe(t * 1000, 400, 250), false);
  // Growing (a burst): committed up 10 a second, least use far below it.
  const burst = new FragmentationTrigger(F);
  for (let t = 0; t <= 200; t++) assert.equal(burst.observe(t * 1000, 400 + 10 * t, 100), false);
  // Small: 130 committed for 40 used (ratio 3.25) wastes less than minWasteBytes.
  const small = new FragmentationTrigger(F);
  for (let t = 0; t <= 200; t++) assert.equal(small.observe(t * 1000, 130, 40), false);
});

test('FragmentationTrigger decides what a naive scan over every sample since the last compaction decides', () => {
  const policy = fc.record({
    minWasteBytes: fc.integer({ min: 0, max: 50 }),
    minRatio: fc.double({ min: 1, max: 4, noNaN: true }),
    windowSamples: fc.integer({ min: 1, max: 8 }),
    minIntervalMs: fc.integer({ min: 0, max: 100 }),
  });
  const steps = fc.array(
    fc.record({ dt: fc.integer({ min: 1, max: 20 }), committed: fc.integer({ min: 0, max: 100 }), used: fc.integer({ min: 0, max: 100 }) }),
    { maxLength: 300 },
  );
  fc.assert(
    fc.property(policy, steps, (p, ss) => {
      const trig = new FragmentationTrigger(p);
      let since: { committed: number; used: number }[] = [];
      let last: number | undefined;
      let t = 0;
      for (const s of ss) {
        t += s.dt;
        since.push(s);
        const win = since.slice(-p.windowSamples);
        const live = Math.min(...win.map((x) => x.used));
        const want =
          win.length === p.windowSamples &&
          s.committed <= win[0]!.committed &&
          s.committed - live >= p.minWasteBytes &&
          s.committed >= p.minRatio * live &&
          (last === undefined || t - last >= p.minIntervalMs);
        if (want) {
          last = t;
          since = [];
        }
        assert.equal(trig.observe(t, s.committed, s.used), want, `at t=${t}`);
      }
    }),
  );
});
