// The S-CSCF's small parts: IMPU comparison, Route popping and hops (RFC 3261 §16.4), Max-Forwards
// (§16.3), the pending-challenge table (cap, expiry, key wiping) and the binding table (refresh, expiry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRequest, ManualClock } from '../sip/index.ts';
import { MAX_PENDING_PER_IMPI, PendingChallenges, type PendingChallenge } from './auth-pending.ts';
import { BindingTable, impuKey, type Registration } from './bindings.ts';
import { hopOf, nextMaxForwards, popOwnRoutes } from './routing.ts';

test('impuKey folds host case, sips, ports and parameters; tel numbers lose visual separators', () => {
  assert.equal(impuKey('sip:alice@IMS.Example:5060;user=phone'), 'sip:alice@ims.example');
  assert.equal(impuKey('sips:alice@ims.example'), 'sip:alice@ims.example');
  assert.notEqual(impuKey('sip:Alice@ims.example'), impuKey('sip:alice@ims.example'), 'the user part is case-sensitive (RFC 3261 §19.1.4)');
  assert.equal(impuKey('tel:+1-555-0100'), 'tel:+15550100');
  assert.equal(impuKey('not a uri'), 'not a uri');
});

test('hopOf: host and port of a Route/Path value, 5060 by default; popOwnRoutes removes only our leading entries', () => {
  assert.deepEqual(hopOf('<sip:term@10.0.0.4:5070;lr>'), { address: '10.0.0.4', port: 5070 });
  assert.deepEqual(hopOf('<sip:pcscf.ims.example;lr>'), { address: 'pcscf.ims.example', port: 5060 });
  assert.deepEqual(hopOf('<sip:[2001:db8::1]:5080;lr>'), { address: '2001:db8::1', port: 5080 });
  assert.equal(hopOf('garbage'), undefined);
  const req = createRequest({
    method: 'MESSAGE',
    uri: 'sip:bob@ims.example',
    via: 'SIP/2.0/UDP 10.0.0.4;branch=z9hG4bKx',
    from: '<sip:a@b>;tag=1',
    to: '<sip:bob@ims.example>',
    callId: 'c',
    cseq: 1,
    headers: [
      ['Route', '<sip:orig@10.0.0.5:6060;lr>, <sip:10.0.0.5:6060;lr>'],
      ['Route', '<sip:as@10.0.0.9;lr>'],
      ['Route', '<sip:orig@10.0.0.5:6060;lr>'],
    ],
  });
  popOwnRoutes(req, { host: '10.0.0.5', port: 6060 });
  assert.deepEqual(req.headers.getAll('Route'), ['<sip:as@10.0.0.9;lr>', '<sip:orig@10.0.0.5:6060;lr>']);
});

test('nextMaxForwards decrements, treats absence as 70 and 0 as exhausted', () => {
  const req = createRequest({
    method: 'MESSAGE',
    uri: 'sip:x@y',
    via: 'SIP/2.0/UDP h;branch=z9hG4bKx',
    from: '<sip:a@b>;tag=1',
    to: '<sip:x@y>',
    callId: 'c',
    cseq: 1,
    maxForwards: 5,
  });
  assert.equal(nextMaxForwards(req), 4);
  req.headers.set('Max-Forwards', '0');
  assert.equal(nextMaxForwards(req), 'exhausted');
  req.headers.remove('Max-Forwards');
  assert.equal(nextMaxForwards(req), 69);
});

function pending(impi: string, callId: string, expiresAt: number): PendingChallenge {
  return {
    impi,
    impu: `sip:${impi}`,
    callId,
    nonce: `n-${callId}`,
    rand: new Uint8Array(16),
    xres: new Uint8Array(8).fill(1),
    ck: new Uint8Array(16).fill(2),
    ik: new Uint8Array(16).fill(3),
    expiresAt,
  };
}

test('pending challenges agree with a naive model (a list scanned in full) under random set/drop/get/advance', () => {
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('set' as const),
      impi: fc.constantFrom('a', 'b', 'c'),
      callId: fc.integer({ min: 0, max: 11 }),
      ttl: fc.integer({ min: 1, max: 50 }),
    }),
    fc.record({ kind: fc.constant('drop' as const), impi: fc.constantFrom('a', 'b', 'c'), callId: fc.integer({ min: 0, max: 11 }) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const clock = new ManualClock();
      const t = new PendingChallenges(clock);
      let model: { impi: string; callId: string; expiresAt: number }[] = [];
      for (const o of ops) {
        if (o.kind === 'set') {
          const callId = `c${o.callId}`;
          model = model.filter((m) => !(m.impi === o.impi && m.callId === callId));
          const same = model.filter((m) => m.impi === o.impi);
          const evict = new Set(same.slice(0, Math.max(0, same.length - MAX_PENDING_PER_IMPI + 1)));
          model = model.filter((m) => !evict.has(m));
          model.push({ impi: o.impi, callId, expiresAt: clock.now() + o.ttl });
          t.set(pending(o.impi, callId, clock.now() + o.ttl));
        } else if (o.kind === 'drop') {
          const callId = `c${o.callId}`;
          const had = model.some((m) => m.impi === o.impi && m.callId === callId);
          model = model.filter((m) => !(m.impi === o.impi && m.callId === callId));
          assert.equal(t.drop(o.impi, callId), had);
        } else {
          clock.advance(o.ms);
          model = model.filter((m) => m.expiresAt > clock.now());
        }
        assert.equal(t.size, model.length);
        for (const impi of ['a', 'b', 'c'])
          for (let i = 0; i < 12; i++)
            assert.equal(
              t.get(impi, `c${i}`) !== undefined,
              model.some((m) => m.impi === impi && m.callId === `c${i}`),
            );
      }
      t.clear();
      assert.equal(clock.pending, 0);
    }),
  );
});

test('pending challenges: replaced per (IMPI, Call-ID), capped per IMPI (oldest evicted), keys wiped when they leave', () => {
  const clock = new ManualClock();
  const expired: string[] = [];
  const t = new PendingChallenges(clock, (p) => expired.push(p.callId));
  const first = pending('a', 'c0', 1000);
  t.set(first);
  t.set(pending('a', 'c0', 1000));
  assert.equal(t.size, 1);
  assert.deepEqual(
    [...first.xres, ...first.ck, ...first.ik].filter((b) => b !== 0),
    [],
    'the replaced vector is wiped',
  );
  for (let i = 1; i <= MAX_PENDING_PER_IMPI; i++) t.set(pending('a', `c${i}`, 1000));
  t.set(pending('b', 'c0', 500));
  assert.equal(t.size, MAX_PENDING_PER_IMPI + 1);
  assert.equal(t.get('a', 'c0'), undefined, 'the oldest of IMPI a went');
  assert.ok(t.get('a', `c${MAX_PENDING_PER_IMPI}`));
  clock.advance(500);
  assert.deepEqual(expired, ['c0']);
  assert.equal(t.get('b', 'c0'), undefined);
  assert.ok(t.drop('a', 'c1'));
  assert.equal(t.drop('a', 'c1'), false);
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(clock.pending, 0, 'no timer left behind');
});

function registration(impi: string, expiresAt: number, contact = 'sip:u@10.0.0.2:5062'): Registration {
  return {
    impi,
    impus: [`sip:${impi}`, 'tel:+15550100'],
    contact,
    path: ['<sip:term@10.0.0.4;lr>'],
    callId: 'c',
    expires: expiresAt / 1000,
    expiresAt,
  };
}

test('binding table: a refresh replaces the registration and its timer; expiry removes every IMPU of the set', () => {
  const clock = new ManualClock();
  const gone: string[] = [];
  const t = new BindingTable(clock, (r) => gone.push(r.contact));
  assert.equal(t.bind(registration('a@x', 10_000, 'sip:old@h')), false);
  assert.equal(t.bind(registration('a@x', 20_000, 'sip:new@h')), true);
  assert.equal(t.lookup('tel:+1-555-0100')!.contact, 'sip:new@h');
  clock.advance(10_000);
  assert.deepEqual(gone, [], 'the old timer was cancelled');
  assert.equal(t.view.size, 2);
  clock.advance(10_000);
  assert.deepEqual(gone, ['sip:new@h']);
  assert.equal(t.view.size, 0);
  assert.equal(t.lookup('sip:a@x'), undefined);
  t.bind(registration('b@x', 5_000));
  assert.ok(t.unbind('b@x'));
  assert.equal(clock.pending, 0);
});
