import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { expand, parsePattern, rangeAt, subscriberRange } from './pattern.ts';
import { InputError } from '../util/errors.ts';

test('{n:10} zero-pads, {n} does not, and {{ }} are literal braces', () => {
  assert.equal(expand(parsePattern('00101{n:10}@ims.example', 'x'), 1), '001010000000001@ims.example');
  assert.equal(expand(parsePattern('sip:u{n}@d', 'x'), 42), 'sip:u42@d');
  assert.equal(expand(parsePattern('a{{b}}{n:2}', 'x'), 7), 'a{b}07');
  assert.equal(expand(parsePattern('fixed@d', 'x'), 9), 'fixed@d');
});

test('malformed patterns are input errors naming the flag', () => {
  for (const bad of ['a{n', 'a{m}', 'a}', '{n}{n}', '{n:99}', '{n:}']) {
    assert.throws(
      () => parsePattern(bad, '--impi'),
      (e: unknown) => e instanceof InputError && e.message.startsWith('--impi:'),
      bad,
    );
  }
});

test('a range needs counters when count > 1 and checks the last value fits the width', () => {
  assert.throws(() => subscriberRange({ impi: 'a@d', count: 2 }), /--impi: --count 2 needs a \{n\}/);
  assert.throws(() => subscriberRange({ impi: 'a{n:2}@d', first: 99, count: 2 }), /does not fit \{n:2\}/);
  const r = subscriberRange({ impi: 'u{n:3}@d', first: 5, count: 3 });
  assert.deepEqual(rangeAt(r, 2), { impi: 'u007@d', impu: 'sip:u007@d', n: 7 });
});

// Property: text without braces, a counter of any width, any value that fits: the expansion is the
// text around it with the number (padded) in between, and distinct values give distinct identities.
const plain = fc.string({ maxLength: 12 }).filter((s) => !s.includes('{') && !s.includes('}'));
test('expansion puts the padded counter between prefix and suffix; distinct n give distinct identities', () => {
  fc.assert(
    fc.property(plain, plain, fc.integer({ min: 0, max: 15 }), fc.nat(), fc.nat(), (pre, suf, width, a, b) => {
      const limit = width === 0 ? Number.MAX_SAFE_INTEGER : 10 ** width - 1;
      a %= limit + 1;
      b %= limit + 1;
      const p = parsePattern(`${pre}{n${width ? `:${width}` : ''}}${suf}`, 'x');
      const ea = expand(p, a);
      assert.ok(ea.startsWith(pre) && ea.endsWith(suf));
      const digits = ea.slice(pre.length, ea.length - suf.length);
      assert.equal(Number(digits), a);
      if (width) assert.equal(digits.length, width);
      assert.equal(ea === expand(p, b), a === b);
    }),
  );
});

test('parsePattern never throws anything but an InputError, and escaped braces round-trip', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), (s) => {
      try {
        parsePattern(s, 'x');
      } catch (e) {
        assert.ok(e instanceof InputError, String(e));
      }
      const escaped = s.replace(/[{}]/g, (c) => c + c);
      assert.equal(expand(parsePattern(escaped, 'x'), 1), s);
    }),
  );
});
