// TimerQueues against a naive model (each timer its own clock timer): under any sequence of sets,
// cancels and clock advances, every timer fires once, at its due time, unless cancelled before;
// timers of one delay fire in the order they were set; nothing is left armed once all are done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from './clock.ts';
import { TimerQueues, type QueuedTimer } from './timer-queues.ts';

type Op = { kind: 'set'; ms: number } | { kind: 'cancel'; pick: number } | { kind: 'advance'; ms: number } | { kind: 'nested'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), ms: fc.constantFrom(500, 1000, 4000, 5000, 32000) }),
  fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 12000 }) }),
  fc.record({ kind: fc.constant('nested' as const), ms: fc.constantFrom(500, 4000) }),
);

test('TimerQueues fire like one clock timer per timer (same instants, FIFO per delay, cancels honoured)', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const real = new ManualClock();
      const model = new ManualClock();
      const queues = new TimerQueues(real);
      const firedReal: string[] = [];
      const firedModel: string[] = [];
      const handles: { q: QueuedTimer; cancelModel: () => void }[] = [];
      let n = 0;
      const set = (ms: number, nestedMs?: number): void => {
        const id = `t${n++}`;
        const owner = {
          onTimer: (name: string) => {
            firedReal.push(`${name}@${real.now()}`);
            if (nestedMs !== undefined && name === id) queues.set(owner, `${id}.n`, nestedMs);
          },
        };
        const q = queues.set(owner, id, ms);
        const cancelModel = model.setTimer(ms, () => {
          firedModel.push(`${id}@${model.now()}`);
          if (nestedMs !== undefined) model.setTimer(nestedMs, () => firedModel.push(`${id}.n@${model.now()}`));
        });
        handles.push({ q, cancelModel });
      };
      for (const o of ops) {
        if (o.kind === 'set') set(o.ms);
        else if (o.kind === 'nested') set(o.ms, o.ms);
        else if (o.kind === 'cancel' && handles.length > 0) {
          const h = handles[o.pick % handles.length]!;
          queues.cancel(h.q);
          queues.cancel(h.q); // idempotent
          h.cancelModel();
        } else if (o.kind === 'advance') {
          real.advance(o.ms);
          model.advance(o.ms);
        }
      }
      real.advance(100_000);
      model.advance(100_000);
      // Same firings at the same instants (the order across different delays at one instant may differ).
      assert.deepEqual([...firedReal].sort(), [...firedModel].sort());
      // FIFO within a delay: timers set earlier with the same delay fired earlier.
      const at = (s: string) => Number(s.slice(s.indexOf('@') + 1));
      for (let i = 1; i < firedReal.length; i++) assert.ok(at(firedReal[i - 1]!) <= at(firedReal[i]!), 'in time order');
      assert.equal(real.pending, 0, 'nothing left armed');
    }),
    { numRuns: 300 },
  );
});

test('a throwing timer is contained and the others of its queue still fire', () => {
  const clock = new ManualClock();
  const queues = new TimerQueues(clock);
  const fired: string[] = [];
  const owner = {
    onTimer: (name: string) => {
      if (name === 'a') throw new Error('bug');
      fired.push(name);
    },
  };
  queues.set(owner, 'a', 1000);
  queues.set(owner, 'b', 1000);
  clock.advance(1000);
  assert.deepEqual(fired, ['b']);
  assert.equal(clock.pending, 0);
});
