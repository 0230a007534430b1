// Timer values (RFC 3261 Table 4, RFC 6026 §8.1) and the virtual clock the transactions run on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { transactionTimers } from './timers.ts';
import { ManualClock } from './clock.ts';

test('unreliable transports: A=E=G=T1, B=F=H=J=L=M=64·T1, D=32 s, I=K=T4', () => {
  const t = transactionTimers(false);
  assert.deepEqual(
    [t.A, t.B, t.D, t.E, t.F, t.G, t.H, t.I, t.J, t.K, t.L, t.M, t.T2],
    [500, 32000, 32000, 500, 32000, 500, 32000, 5000, 32000, 5000, 32000, 32000, 4000],
  );
});

test('reliable transports: no retransmission timers and zero D, I, J, K (§17)', () => {
  const t = transactionTimers(true);
  assert.deepEqual([t.A, t.E, t.G, t.D, t.I, t.J, t.K], [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([t.B, t.F, t.H], [32000, 32000, 32000]);
});

test('timers derive from a configured T1/T2/T4', () => {
  const t = transactionTimers(false, { t1: 100, t2: 1000, t4: 2000 });
  assert.deepEqual([t.A, t.B, t.K, t.T2], [100, 6400, 2000, 1000]);
});

test('ManualClock fires due timers in time order, then creation order, including timers set while firing', () => {
  const c = new ManualClock();
  const log: string[] = [];
  c.setTimer(20, () => log.push(`b@${c.now()}`));
  c.setTimer(10, () => {
    log.push(`a@${c.now()}`);
    c.setTimer(5, () => log.push(`a2@${c.now()}`));
  });
  c.setTimer(20, () => log.push(`c@${c.now()}`));
  const cancel = c.setTimer(15, () => log.push('cancelled'));
  cancel();
  c.advance(19);
  assert.deepEqual(log, ['a@10', 'a2@15']);
  c.advance(1);
  assert.deepEqual(log, ['a@10', 'a2@15', 'b@20', 'c@20']);
  assert.equal(c.now(), 20);
  assert.equal(c.pending, 0);
});
