// ExpiryQueue against a naive model (a list of due times) on virtual time: every item fires once,
// at its due time, in due-time order; moved and deleted items follow their last change; the queue
// holds one clock timer at most, and none once empty (a process with no set due is not kept alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../util/clock.ts';
import { boundaryCounts, setBoundaryReporter } from '../util/guard.ts';
import { ExpiryQueue, type ExpiryItem } from './expiry-queue.ts';

class Item implements ExpiryItem {
  at = 0;
  pos = -1;
  constructor(readonly id: number) {}
}

type Op = { kind: 'set'; which: number; in: number } | { kind: 'delete'; which: number } | { kind: 'advance'; ms: number };

test('ExpiryQueue fires what a naive list would: each item once, at its last due time, in due-time order; deleted ones never', () => {
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), which: fc.nat(40), in: fc.integer({ min: 0, max: 50 }) }),
    fc.record({ kind: fc.constant('delete' as const), which: fc.nat(40) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const clock = new ManualClock(1000);
      const fired: { id: number; at: number; when: number }[] = [];
      const q = new ExpiryQueue<Item>(clock, (it) => fired.push({ id: it.id, at: it.at, when: clock.now() }));
      const items = Array.from({ length: 41 }, (_, i) => new Item(i));
      const model = new Map<number, number>(); // id -> due time
      const want: { id: number; at: number; when: number }[] = [];
      for (const o of ops) {
        if (o.kind === 'set') {
          const at = clock.now() + o.in;
          q.set(items[o.which]!, at);
          model.set(o.which, at);
        } else if (o.kind === 'delete') {
          q.delete(items[o.which]!);
          model.delete(o.which);
        } else {
          const target = clock.now() + o.ms;
          const due = [...model].filter(([, at]) => at <= target).sort((a, b) => a[1] - b[1]);
          for (const [id, at] of due) {
            want.push({ id, at, when: at });
            model.delete(id);
          }
          clock.advance(o.ms);
        }
        assert.equal(q.size, model.size);
        assert.equal(q.armed, model.size > 0, 'a clock timer exactly while something is queued');
        assert.ok(clock.pending <= 1, 'one clock timer for the whole queue');
        for (const it of items) assert.equal(it.pos >= 0, model.has(it.id));
      }
      // Equal due times fire in no promised order: compare within each due time as sets.
      const norm = (l: typeof fired) => [...l].sort((a, b) => a.at - b.at || a.id - b.id);
      assert.deepEqual(norm(fired), norm(want));
      for (let i = 1; i < fired.length; i++) assert.ok(fired[i - 1]!.at <= fired[i]!.at, 'in due-time order');
    }),
    { numRuns: 300 },
  );
});

test('ExpiryQueue: a callback may move its own item later or queue others; one that throws does not stop the rest', () => {
  const clock = new ManualClock(0);
  const log: string[] = [];
  let rearmed = false;
  const a = new Item(1);
  const b = new Item(2);
  const c = new Item(3);
  const q = new ExpiryQueue<Item>(clock, (it) => {
    log.push(`${it.id}@${clock.now()}`);
    if (it === a && !rearmed) {
      rearmed = true;
      q.set(a, clock.now() + 100); // re-armed from its own callback
      q.set(c, clock.now()); // due now: fires in the same pass
    }
    if (it === b) throw new Error('a broken owner');
  });
  const before = boundaryCounts()['sa-expiry'] ?? 0;
  const previous = setBoundaryReporter(() => {}); // quiet: the fault is expected
  try {
    q.set(b, 10);
    q.set(a, 10);
    clock.advance(10);
    assert.deepEqual(log.slice().sort(), ['1@10', '2@10', '3@10']);
    assert.equal(q.size, 1);
    assert.equal((boundaryCounts()['sa-expiry'] ?? 0) - before, 1, 'the throw was contained and counted');
    clock.advance(100);
    assert.deepEqual(log.at(-1), '1@110');
    assert.equal(q.size, 0);
    assert.equal(q.armed, false);
    assert.equal(clock.pending, 0);
  } finally {
    setBoundaryReporter(previous);
  }
});
