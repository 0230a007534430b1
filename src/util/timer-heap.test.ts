import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { boundaryCounts, setBoundaryReporter } from './guard.ts';
import { HeapClock, TimerHeap } from './timer-heap.ts';

type Op = { kind: 'add'; at: number } | { kind: 'cancel'; which: number } | { kind: 'pop'; now: number };

test('TimerHeap fires what a naive list would, in (due time, insertion) order, cancelled ones never', () => {
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), at: fc.integer({ min: 0, max: 50 }) }),
    fc.record({ kind: fc.constant('cancel' as const), which: fc.nat(3000) }),
    fc.record({ kind: fc.constant('pop' as const), now: fc.integer({ min: 0, max: 60 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
      const heap = new TimerHeap();
      const model: { id: number; at: number; live: boolean }[] = [];
      const cancels: (() => void)[] = [];
      const fired: number[] = [];
      const want: number[] = [];
      for (const o of ops) {
        if (o.kind === 'add') {
          const id = model.length;
          model.push({ id, at: o.at, live: true });
          cancels.push(heap.add(o.at, () => fired.push(id)));
        } else if (o.kind === 'cancel') {
          if (model.length === 0) continue;
          const i = o.which % model.length;
          cancels[i]!();
          model[i]!.live = false;
        } else {
          for (let fn = heap.popDue(o.now); fn; fn = heap.popDue(o.now)) fn();
          const due = model.filter((m) => m.live && m.at <= o.now).sort((a, b) => a.at - b.at || a.id - b.id);
          for (const m of due) {
            m.live = false;
            want.push(m.id);
          }
        }
        assert.equal(heap.size, model.filter((m) => m.live).length);
      }
      assert.deepEqual(fired, want);
      const live = model.filter((m) => m.live);
      assert.equal(heap.nextAt(), live.length ? Math.min(...live.map((m) => m.at)) : undefined);
    }),
    { numRuns: 200 },
  );
});

test('TimerHeap: a cancelled entry lets go of its callback at once, and cancelling after firing changes nothing', () => {
  const heap = new TimerHeap();
  const cancelA = heap.add(10, () => {});
  const cancelB = heap.add(20, () => {});
  cancelA();
  cancelA();
  assert.equal(heap.size, 1);
  assert.equal(heap.nextAt(), 20);
  const fn = heap.popDue(25);
  assert.ok(fn);
  cancelB(); // already fired
  assert.equal(heap.size, 0);
  assert.equal(heap.popDue(1e9), undefined);
});

test('TimerHeap stays bounded by the live timers when most are cancelled (compaction)', () => {
  const heap = new TimerHeap();
  for (let i = 0; i < 100_000; i++) heap.add(1e9 + i, () => {})();
  heap.add(5, () => {});
  assert.equal(heap.size, 1);
  assert.equal(heap.nextAt(), 5);
});

test('HeapClock: timers fire in order on one setTimeout; cancel works; a throwing callback does not stop the others', async () => {
  const prev = setBoundaryReporter(() => {});
  const faultsBefore = boundaryCounts()['timer'] ?? 0;
  try {
    const clock = new HeapClock();
    const seen: string[] = [];
    clock.setTimer(70, () => seen.push('c'));
    clock.setTimer(10, () => {
      seen.push('a');
      throw new Error('bug in a timer');
    });
    const cancel = clock.setTimer(15, () => seen.push('x'));
    clock.setTimer(20, () => {
      seen.push('b');
      clock.setTimer(0, () => seen.push('b2'));
    });
    cancel();
    assert.equal(clock.pending, 3);
    for (let i = 0; i < 100 && clock.pending > 0; i++) await new Promise((r) => setTimeout(r, 50));
    // b2 is due when b ran: before c unless the machine was so slow that c was due by then too.
    assert.deepEqual(seen.slice(0, 2), ['a', 'b']);
    assert.deepEqual([...seen].sort(), ['a', 'b', 'b2', 'c']);
    assert.equal(clock.pending, 0);
    assert.equal((boundaryCounts()['timer'] ?? 0) - faultsBefore, 1);
  } finally {
    setBoundaryReporter(prev);
  }
});

test('HeapClock: once every timer is cancelled it holds no Node timer (nothing left to fire)', () => {
  const clock = new HeapClock();
  assert.equal(clock.armed, false);
  const cancels = [clock.setTimer(60_000, () => {}), clock.setTimer(30_000, () => {})];
  assert.equal(clock.armed, true);
  cancels[1]!();
  assert.equal(clock.armed, true);
  cancels[0]!();
  assert.equal(clock.armed, false);
  assert.equal(clock.pending, 0);
});
