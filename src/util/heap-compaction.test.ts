import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { ManualClock } from './clock.ts';
import { compactHeapNow, startBurstCompaction, type CompactionReport } from './heap-compaction.ts';

const fake: CompactionReport = { oldSpaceBefore: 2, oldSpaceAfter: 1, oldSpaceUsed: 1, rssBefore: 2, rssAfter: 1, cpuMs: 1, pauseMs: 1 };
const policy = { minNew: 100, quietMs: 10_000, quietMax: 0, minIntervalMs: 60_000 };

test('startBurstCompaction samples on its clock and compacts once after a burst, reporting its size', () => {
  const clock = new ManualClock();
  let count = 0;
  const calls: number[] = [];
  const reports: unknown[] = [];
  const stop = startBurstCompaction({
    clock,
    count: () => count,
    policy,
    compact: () => (calls.push(clock.now()), fake),
    rss: () => 7,
    onCompacted: (r, n) => reports.push([r, n, clock.now()]),
  });
  clock.advance(1000);
  count = 150;
  clock.advance(1000); // the burst is seen at 2 s
  clock.advance(9000);
  assert.deepEqual(calls, []);
  clock.advance(1000); // 12 s: quiet since 2 s
  assert.deepEqual(calls, [12_000]);
  assert.deepEqual(reports, []);
  clock.advance(5000); // the RSS is read once V8 has had time to unmap the pages
  assert.deepEqual(reports, [[{ ...fake, rssAfter: 7 }, 150, 17_000]]);
  clock.advance(600_000);
  assert.deepEqual(calls, [12_000], 'no new burst, no second compaction');
  stop();
  assert.equal(clock.pending, 0, 'stopped: no timer left');
});

test('startBurstCompaction stops sampling when gc cannot be reached, and says so once', () => {
  const clock = new ManualClock();
  let unavailable = 0;
  let calls = 0;
  startBurstCompaction({
    clock,
    count: () => (calls++ === 0 ? 0 : 1000),
    policy,
    compact: () => undefined,
    onUnavailable: () => unavailable++,
  });
  clock.advance(100_000);
  assert.equal(unavailable, 1);
  assert.equal(clock.pending, 0);
});

test('compactHeapNow gives back the old-space pages that a promoted burst of dead objects left', () => {
  const oldSize = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_size;
  // A burst: objects promoted to old space, every other one kept: pages half live, which an ordinary
  // full GC leaves as they are (V8 evacuates only pages that are mostly free).
  const keep: object[] = [];
  let all: object[] = [];
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let r = 0; r < 6; r++)
    for (let i = 0; i < 100_000; i++) {
      const o = { i, a: `x${i}_${r}`, b: [i, i + 1, i + 2] };
      all.push(o);
      if (i % 2 === 0) keep.push(o);
    }
  gc();
  all = [];
  void all;
  // Ordinary full GCs free the dead objects but keep the pages they shared with live ones.
  gc();
  gc();
  const plain = oldSize();
  const r = compactHeapNow();
  assert.ok(r, 'gc reachable');
  assert.ok(r.oldSpaceAfter < r.oldSpaceBefore, `old space ${r.oldSpaceBefore} -> ${r.oldSpaceAfter}`);
  assert.ok(r.oldSpaceUsed <= r.oldSpaceAfter);
  assert.ok(r.pauseMs >= 0 && r.cpuMs >= 0);
  assert.equal(oldSize(), r.oldSpaceAfter);
  assert.ok(r.oldSpaceAfter < plain * 0.9, `ordinary GC left ${plain}, the compaction ${r.oldSpaceAfter}`);
  assert.equal(keep.length, 300_000);
});

test('compactHeapNow trims the C heap after its GC when given a trim, reports it, and survives a trim that throws', () => {
  let calls = 0;
  const r = compactHeapNow(() => (calls++, true));
  assert.ok(r, 'gc reachable');
  assert.equal(calls, 1);
  assert.ok(r.trim && 'released' in r.trim, JSON.stringify(r.trim));
  assert.equal(r.trim.released, true);
  assert.ok(r.trim.rssBefore > 0 && r.trim.rssAfter > 0);
  const none = compactHeapNow();
  assert.ok(none);
  assert.equal(none.trim, undefined, 'no trim given: none reported');
  const failed = compactHeapNow(() => {
    throw new Error('boom');
  });
  assert.deepEqual(failed?.trim, { error: 'boom' });
});

test('startBurstCompaction passes its mallocTrim to the compaction, and runs none without it', () => {
  for (const withTrim of [true, false]) {
    const clock = new ManualClock();
    let count = 0;
    let trims = 0;
    const reports: CompactionReport[] = [];
    const stop = startBurstCompaction({
      clock,
      count: () => count,
      policy,
      ...(withTrim && { mallocTrim: () => (trims++, false) }),
      rss: () => 7,
      onCompacted: (r) => reports.push(r),
    });
    clock.advance(1000);
    count = 150;
    clock.advance(20_000);
    assert.equal(reports.length, 1, 'one compaction (the real one: gc reachable)');
    assert.equal(trims, withTrim ? 1 : 0);
    const t = reports[0]!.trim;
    if (withTrim) assert.ok(t && 'released' in t && t.released === false, JSON.stringify(t));
    else assert.equal(t, undefined);
    stop();
  }
});

test('startBurstCompaction also compacts a heap that stays fragmented under steady traffic, and says why', () => {
  const clock = new ManualClock();
  const calls: number[] = [];
  const reasons: string[] = [];
  let heap = { size: 400, used: 150 };
  const stop = startBurstCompaction({
    clock,
    count: () => 0, // no new registrations: the burst trigger never fires
    policy,
    fragmentation: { minWasteBytes: 100, minRatio: 2, windowSamples: 10, minIntervalMs: 60_000 },
    oldSpace: () => heap,
    compact: () => {
      calls.push(clock.now());
      heap = { size: 160, used: 150 };
      return fake;
    },
    rss: () => 7,
    onCompacted: (_r, _n, why) => reasons.push(why),
  });
  clock.advance(9_000);
  assert.deepEqual(calls, []);
  clock.advance(1_000); // the tenth sample fills the window
  assert.deepEqual(calls, [10_000]);
  clock.advance(200_000);
  assert.deepEqual(calls, [10_000], 'compacted: no longer fragmented');
  heap = { size: 400, used: 150 };
  clock.advance(10_000);
  assert.deepEqual(calls, [10_000, 220_000], 'fragmented again: a new window of samples, past the interval');
  clock.advance(5_000); // each report once the RSS has settled
  assert.deepEqual(reasons, ['fragmentation', 'fragmentation']);
  stop();
});

test('startBurstCompaction with fragmentation: false never samples the heap', () => {
  const clock = new ManualClock();
  startBurstCompaction({
    clock,
    count: () => 0,
    policy,
    fragmentation: false,
    oldSpace: () => assert.fail('sampled'),
    compact: () => fake,
  })();
  clock.advance(100_000);
});
