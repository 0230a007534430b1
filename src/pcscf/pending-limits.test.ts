// PendingLimits (issue 10 §2): per-source and total pending caps, the challenge token bucket in
// virtual time, releases counted once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PendingLimits, REFUSALS_PER_SECOND } from './pending-limits.ts';

test('per-source and total caps; a replacement round needs no new slot; releases are idempotent', () => {
  const l = new PendingLimits({ maxPendingPerSource: 2, maxPendingTotal: 3, challengesPerSecond: 1000, challengeBurst: 1000 }, () => 0);
  const a1 = l.hold('192.0.2.1');
  l.hold('192.0.2.1');
  const v = l.admit('192.0.2.1', false);
  assert.equal(v.ok || v.reason, 'overload-pending-source');
  assert.equal(l.admit('192.0.2.1', true).ok, true, 'replacing its own pending round');
  assert.equal(l.admit('::ffff:192.0.2.2', false).ok, true);
  l.hold('192.0.2.2');
  const t = l.admit('192.0.2.3', false);
  assert.equal(t.ok || t.reason, 'overload-pending-total');
  a1();
  a1();
  assert.equal(l.total, 2);
  assert.equal(l.pendingFrom('192.0.2.1'), 1);
  assert.equal(l.admit('192.0.2.3', false).ok, true);
});

test('challenge token bucket: a burst, then the sustained rate, with Retry-After ≥ 1 s', () => {
  let now = 0;
  const l = new PendingLimits({ maxPendingPerSource: 1e6, maxPendingTotal: 1e6, challengesPerSecond: 10, challengeBurst: 5 }, () => now);
  for (let i = 0; i < 5; i++) assert.equal(l.admit('192.0.2.1', false).ok, true);
  const r = l.admit('192.0.2.1', false);
  assert.ok(!r.ok && r.reason === 'overload-challenge-rate' && r.retryAfterS >= 1);
  now += 100; // one token
  assert.equal(l.admit('192.0.2.1', false).ok, true);
  assert.equal(l.admit('192.0.2.1', false).ok, false);
  now += 10_000; // refills to the burst, not beyond
  let n = 0;
  while (l.admit('192.0.2.1', false).ok) n++;
  assert.equal(n, 5);
});

test('a source at its pending limit gets a few datagrams a second parsed (503), the rest dropped unparsed; others are never affected', () => {
  let now = 0;
  const l = new PendingLimits({ maxPendingPerSource: 1, maxPendingTotal: 10, challengesPerSecond: 100, challengeBurst: 100 }, () => now);
  assert.equal(l.readUnparsed('192.0.2.1'), true);
  const give = l.hold('192.0.2.1');
  let read = 0;
  for (let i = 0; i < 1000; i++) if (l.readUnparsed('192.0.2.1')) read++;
  assert.equal(read, REFUSALS_PER_SECOND);
  assert.equal(l.readUnparsed('192.0.2.2'), true);
  now += 1000;
  assert.equal(l.readUnparsed('192.0.2.1'), true, 'a new second');
  give();
  for (let i = 0; i < 100; i++) assert.equal(l.readUnparsed('192.0.2.1'), true);
});

test('in flight to the S-CSCF: a source at maxInFlightPerSource is dropped unparsed (no 503 quota), others are not; landing is idempotent', () => {
  const l = new PendingLimits(
    { maxPendingPerSource: 100, maxPendingTotal: 100, challengesPerSecond: 100, challengeBurst: 100, maxInFlightPerSource: 2 },
    () => 0,
  );
  const a = l.fly('192.0.2.1');
  assert.equal(l.readUnparsed('192.0.2.1'), true);
  l.fly('192.0.2.1');
  assert.equal(l.inFlightFrom('192.0.2.1'), 2);
  for (let i = 0; i < 100; i++) assert.equal(l.readUnparsed('192.0.2.1'), false);
  assert.equal(l.readUnparsed('192.0.2.2'), true);
  a();
  a();
  assert.equal(l.inFlightFrom('192.0.2.1'), 1);
  assert.equal(l.readUnparsed('192.0.2.1'), true);
});
