// Anti-replay window (RFC 4303 §3.4.3): table cases and a fast-check model test against a naive
// Set-of-seen-numbers window, for sizes 32, 64, 100, 128 and 1024.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ReplayWindow, type ReplayVerdict } from './replay-window.ts';

class NaiveWindow {
  seen = new Set<number>();
  highest = 0;
  constructor(readonly size: number) {}
  check(s: number): ReplayVerdict {
    if (s === 0) return 'outside-window';
    if (s > this.highest) return 'ok';
    if (this.highest - s >= this.size) return 'outside-window';
    return this.seen.has(s) ? 'replay' : 'ok';
  }
  commit(s: number): void {
    this.seen.add(s);
    if (s > this.highest) this.highest = s;
  }
}

describe('ReplayWindow', () => {
  it('starts empty: T = 0, seq 0 is invalid, 1 passes', () => {
    const w = new ReplayWindow();
    assert.equal(w.highest, 0);
    assert.equal(w.size, 64);
    assert.equal(w.check(0), 'outside-window');
    assert.equal(w.check(1), 'ok');
  });

  it('check() is read-only; commit() moves the window', () => {
    const w = new ReplayWindow(32);
    assert.equal(w.check(100), 'ok');
    assert.equal(w.check(100), 'ok');
    assert.equal(w.highest, 0);
    w.commit(100);
    assert.equal(w.check(100), 'replay');
    assert.equal(w.check(69), 'ok'); // T - 31
    assert.equal(w.check(68), 'outside-window'); // T - 32
    w.commit(69);
    assert.equal(w.check(69), 'replay');
  });

  it('a large jump clears every old bit', () => {
    const w = new ReplayWindow(64);
    for (let s = 1; s <= 64; s++) w.commit(s);
    w.commit(1_000_000);
    for (let s = 1_000_000 - 63; s < 1_000_000; s++) assert.equal(w.check(s), 'ok');
  });

  it('handles the top of the sequence space', () => {
    const w = new ReplayWindow(128);
    w.commit(0xffffffff);
    assert.equal(w.check(0xffffffff), 'replay');
    assert.equal(w.check(0xffffffff - 127), 'ok');
    assert.equal(w.check(0xffffffff - 128), 'outside-window');
  });

  it('refuses windows below 32 and commits without a passing check', () => {
    assert.throws(() => new ReplayWindow(31), { code: 'ESP_BAD_INPUT' });
    assert.throws(() => new ReplayWindow(64.5), { code: 'ESP_BAD_INPUT' });
    const w = new ReplayWindow();
    w.commit(5);
    assert.throws(() => w.commit(5), { code: 'ESP_BAD_INPUT' });
  });

  for (const size of [32, 64, 100, 128, 1024]) {
    it(`agrees with a naive model (size ${size})`, () => {
      const seqArb = fc.oneof(
        fc.integer({ min: 0, max: 3 * size }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0xffffffff - 3 * size, max: 0xffffffff }),
      );
      // Sequences mostly advance with local disorder, sometimes jump.
      const steps = fc.array(fc.tuple(fc.integer({ min: -2 * size, max: 2 * size }), fc.boolean(), seqArb), { maxLength: 300 });
      fc.assert(
        fc.property(steps, (ops) => {
          const w = new ReplayWindow(size);
          const m = new NaiveWindow(size);
          let cur = 1;
          for (const [delta, jump, abs] of ops) {
            const s = jump ? abs : Math.min(0xffffffff, Math.max(0, cur + delta));
            cur = Math.max(cur, s);
            const v = w.check(s);
            assert.equal(v, m.check(s), `check(${s}) with T=${m.highest}`);
            if (v === 'ok') {
              w.commit(s);
              m.commit(s);
            }
            assert.equal(w.highest, m.highest);
          }
        }),
        { numRuns: 300 },
      );
    });
  }
});
