// The boundary helper: contains sync throws and async rejections, counts per boundary, reports the
// first fault and then only at powers of ten, never the input's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundaryCounts, containFault, describeFault, guard, setBoundaryReporter, type BoundaryFault } from './guard.ts';

function capture(): { faults: BoundaryFault[]; restore: () => void } {
  const faults: BoundaryFault[] = [];
  const prev = setBoundaryReporter((f) => faults.push(f));
  return { faults, restore: () => setBoundaryReporter(prev) };
}

test('a throwing callback is contained: counted, reported with the input size, and the next call runs', () => {
  const { faults, restore } = capture();
  try {
    let calls = 0;
    const h = guard(
      't.sync',
      (b: Uint8Array) => {
        calls++;
        if (b[0] === 0xee) throw new TypeError('boom');
      },
      (b) => b.length,
    );
    h(Uint8Array.of(0xee, 1, 2));
    h(Uint8Array.of(1));
    assert.equal(calls, 2);
    assert.equal(boundaryCounts()['t.sync'], 1);
    assert.equal(faults.length, 1);
    assert.equal(faults[0]!.inputSize, 3);
    assert.match(describeFault(faults[0]!), /t\.sync \(#1, input 3 octets\): TypeError: boom/);
  } finally {
    restore();
  }
});

test('a rejected promise from a guarded callback is contained too', async () => {
  const { faults, restore } = capture();
  try {
    guard('t.async', async () => {
      throw new Error('later');
    })();
    await new Promise((r) => setImmediate(r));
    assert.equal(boundaryCounts()['t.async'], 1);
    assert.equal(faults.length, 1);
  } finally {
    restore();
  }
});

test('a flood of one fault is reported at 1, 10, 100, … only, and counted every time', () => {
  const { faults, restore } = capture();
  try {
    for (let i = 0; i < 250; i++) containFault('t.flood', new Error('x'));
    assert.equal(boundaryCounts()['t.flood'], 250);
    assert.deepEqual(
      faults.map((f) => f.count),
      [1, 10, 100],
    );
  } finally {
    restore();
  }
});

test('a reporter that throws does not turn a contained fault into an uncontained one', () => {
  const prev = setBoundaryReporter(() => {
    throw new Error('reporter broke');
  });
  try {
    assert.doesNotThrow(() =>
      guard('t.reporter', () => {
        throw new Error('x');
      })(),
    );
  } finally {
    setBoundaryReporter(prev);
  }
});

test('the report never carries the input: only its size', () => {
  const secret = 'c0ffee00deadbeef';
  const line = describeFault({ boundary: 'b', error: new Error('bad'), inputSize: secret.length, count: 1 });
  assert.doesNotMatch(line, new RegExp(secret));
  assert.match(line, /input 16 octets/);
});
