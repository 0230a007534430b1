import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCapacity, descriptorsNeeded, openFileLimit, UES_PER_ADDRESS } from './capacity.ts';
import { InputError } from '../util/errors.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             95000                95000                processes
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

test('openFileLimit reads RLIMIT_NOFILE from /proc/self/limits text', () => {
  assert.deepEqual(openFileLimit(LIMITS), { soft: 20000, hard: 20000 });
  assert.deepEqual(openFileLimit('Max open files            unlimited            unlimited            files\n'), {
    soft: Infinity,
    hard: Infinity,
  });
  assert.equal(openFileLimit('nothing here'), undefined);
  const own = openFileLimit();
  if (own) assert.ok(own.soft > 0 && own.soft <= own.hard);
});

test('userspace: descriptors grow with addresses and concurrency, not with the UEs', () => {
  const a = descriptorsNeeded({ count: 1000, locals: 20, concurrency: 200, backend: 'userspace' });
  const b = descriptorsNeeded({ count: 100_000, locals: 20, concurrency: 200, backend: 'userspace' });
  assert.equal(a, b);
  assert.ok(descriptorsNeeded({ count: 100_000, locals: 1, concurrency: 200, backend: 'xfrm' }) > 300_000);
});

test('100k UEs over 20 loopback addresses fit a 20k descriptor limit; clear errors otherwise', () => {
  const limit = openFileLimit(LIMITS);
  assertCapacity({ count: 100_000, locals: 20, concurrency: 200, backend: 'userspace', limit });
  assert.throws(
    () => assertCapacity({ count: 100_000, locals: 10, concurrency: 200, backend: 'userspace', limit }),
    (e: unknown) => e instanceof InputError && /at most 5000 UEs per address/.test(e.message) && /at least 20 with --local/.test(e.message),
  );
  assert.throws(
    () => assertCapacity({ count: 100_000, locals: 20, concurrency: 30_000, backend: 'userspace', limit }),
    (e: unknown) => e instanceof InputError && /limit is 20000/.test(e.message) && /lower --concurrency/.test(e.message),
  );
  assert.throws(
    () => assertCapacity({ count: 10_000, locals: 1, concurrency: 200, backend: 'xfrm', limit }),
    (e: unknown) => e instanceof InputError && /--backend xfrm/.test(e.message),
  );
  assertCapacity({ count: UES_PER_ADDRESS, locals: 1, concurrency: 200, backend: 'userspace', limit: undefined });
});
