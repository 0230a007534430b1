// CompletedTable against a naive model (a list of records, each with its own due time, searched
// linearly): under any sequence of adds, lookups, removals, resends and clock advances (non-integer
// ones too), a key is found exactly while its record is filed and not yet due; owners are told once,
// at their due time or when the cap evicts them (oldest first), never after a removal; resends send the
// record's own bytes to its own destination; nothing is left armed once the table is empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from './clock.ts';
import { CompletedTable, type CompletedRecord } from './completed-table.ts';
import type { Destination, SipTransport } from './transport.ts';

type Op =
  | { kind: 'add'; key: number; size: number; listens: boolean }
  | { kind: 'find'; key: number }
  | { kind: 'remove'; key: number }
  | { kind: 'resend'; key: number }
  | { kind: 'advance'; ms: number };

const KEYS = 4;
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), key: fc.nat(KEYS), size: fc.integer({ min: 0, max: 20_000 }), listens: fc.boolean() }),
  fc.record({ kind: fc.constant('find' as const), key: fc.nat(KEYS) }),
  fc.record({ kind: fc.constant('remove' as const), key: fc.nat(KEYS) }),
  fc.record({ kind: fc.constant('resend' as const), key: fc.nat(KEYS) }),
  fc.record({
    kind: fc.constant('advance' as const),
    ms: fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.double({ min: 0, max: 50, noNaN: true })),
  }),
);

interface ModelRecord {
  readonly key: string;
  readonly due: number;
  readonly body: Uint8Array;
  readonly to: Destination;
  readonly listens: boolean;
  readonly seq: number;
}

test('CompletedTable behaves like a linear list of records with due times (find, expiry, cap, owners told once)', () => {
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 120 }),
      fc.integer({ min: 1, max: 6 }),
      fc.constantFrom(1000, 5000, 32000),
      (ops, cap, delayMs) => {
        const clock = new ManualClock(0.25);
        const sent: { to: Destination; bytes: string }[] = [];
        const transport: SipTransport = {
          protocol: 'udp',
          local: { address: '192.0.2.10', port: 5060 },
          send: (bytes, to) => {
            sent.push({ to, bytes: Buffer.from(bytes).toString('hex') });
            return Promise.resolve();
          },
          close: () => Promise.resolve(),
        };
        const table = new CompletedTable(clock, { delayMs, cap });
        const told: string[] = [];
        const modelTold: string[] = [];
        const records = new Map<string, CompletedRecord>();
        let model: ModelRecord[] = [];
        let seq = 0;
        let evictions = 0;
        // The model's clock: records due by now are gone (their owners told in due order).
        const modelExpire = (): void => {
          const now = clock.now();
          for (const r of model.filter((x) => x.due <= now)) if (r.listens) modelTold.push(`${r.key}#${r.seq}`);
          model = model.filter((x) => x.due > now);
        };
        for (const o of ops) {
          if (o.kind === 'advance') {
            clock.advance(o.ms);
            modelExpire();
            assert.deepEqual(told, modelTold, 'owners told at their due time, in due order');
            continue;
          }
          modelExpire();
          const key = `k${o.key}`;
          const m = model.find((x) => x.key === key);
          if (o.kind === 'add') {
            if (m !== undefined) continue; // the layer never files a key twice
            if (model.length >= cap) {
              const oldest = model[0]!;
              model = model.slice(1);
              evictions++;
              if (oldest.listens) modelTold.push(`${oldest.key}#${oldest.seq}`);
            }
            const s = seq++;
            const body = new Uint8Array(o.size).fill(s & 0xff);
            const to = { address: '203.0.113.5', port: 1000 + s };
            const owner = o.listens
              ? { onCompletedEnd: () => told.push(`${key}#${s}`), sendFailed: () => assert.fail('no failures here') }
              : undefined;
            records.set(key, table.add(key, body, to, transport, owner));
            model.push({ key, due: Math.ceil(clock.now() + delayMs), body, to, listens: o.listens, seq: s });
            body.fill(0xee); // the table keeps a copy
          } else if (o.kind === 'find') {
            const r = table.find(key);
            assert.equal(r !== undefined, m !== undefined, `find ${key} at ${clock.now()}`);
            if (r !== undefined) assert.equal(r, records.get(key));
          } else if (o.kind === 'remove') {
            const r = records.get(key);
            if (r === undefined) continue;
            table.remove(r); // also for a record gone already: nothing then
            records.delete(key);
            model = model.filter((x) => x.key !== key);
          } else if (o.kind === 'resend') {
            const r = table.find(key);
            if (r === undefined) continue;
            const before = sent.length;
            table.resend(r);
            assert.equal(sent.length, before + 1, 'one send per resend');
            const expected = Buffer.from(new Uint8Array(m!.body.length).fill(m!.seq & 0xff)).toString('hex');
            assert.deepEqual(sent.at(-1), { to: m!.to, bytes: expected }, 'the record’s own bytes, to its own destination');
          }
          assert.deepEqual(told, modelTold);
          assert.equal(table.size, model.length);
          assert.equal(table.evictions, evictions);
        }
        clock.advance(100_000);
        modelExpire();
        assert.deepEqual(told, modelTold);
        assert.equal(table.size, 0);
        assert.equal(clock.pending, 0, 'no clock timer left armed');
      },
    ),
    { numRuns: 300 },
  );
});

test('CompletedTable.clear tells every listening owner once and disarms its clock timer', () => {
  const clock = new ManualClock();
  const table = new CompletedTable(clock, { delayMs: 32000, cap: 10 });
  const told: string[] = [];
  table.add('a', undefined, undefined, undefined, { onCompletedEnd: () => told.push('a'), sendFailed: () => {} });
  table.add('b', undefined, undefined, undefined, undefined);
  table.clear();
  clock.advance(40_000);
  assert.deepEqual(told, ['a']);
  assert.equal(clock.pending, 0);
  assert.equal(table.find('a'), undefined);
});

test('a removed record that falls due later ends nothing: the key filed again since stays found', () => {
  const clock = new ManualClock();
  const table = new CompletedTable(clock, { delayMs: 1000, cap: 5 });
  table.add('other', undefined, undefined, undefined, undefined);
  const first = table.add('k', undefined, undefined, undefined, undefined);
  table.remove(first);
  clock.advance(10);
  const again = table.add('k', undefined, undefined, undefined, undefined);
  clock.advance(995); // the first record's due time has passed, the second's not
  assert.equal(table.find('k'), again);
  clock.advance(5);
  assert.equal(table.find('k'), undefined);
});

test('an owner told of its end may remove and add records (the table is consistent by then)', () => {
  const clock = new ManualClock();
  const table = new CompletedTable(clock, { delayMs: 1000, cap: 2 });
  const told: string[] = [];
  const a: CompletedRecord = table.add('a', undefined, undefined, undefined, {
    onCompletedEnd: () => {
      told.push('a');
      table.remove(a); // what a terminating transaction does
      table.add('c', undefined, undefined, undefined, undefined);
    },
    sendFailed: () => {},
  });
  const b = table.add('b', undefined, undefined, undefined, undefined);
  table.remove(b);
  clock.advance(1000);
  assert.deepEqual(told, ['a']);
  assert.notEqual(table.find('c'), undefined);
  assert.equal(table.size, 1);
  clock.advance(1000);
  assert.equal(table.size, 0);
  assert.equal(clock.pending, 0);
});
