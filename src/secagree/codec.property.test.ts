// fast-check properties of the codec: round trip of valid models, and "parse or SecAgreeError,
// never another exception" for arbitrary (unicode, mutated, huge) inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSecurityHeaderOrThrow, scanAll, serializeMechanism, serializeMechanisms } from './codec.ts';
import { parseCommonForm } from './common-form.ts';
import { buildSecurityClient } from './ue-choice.ts';
import { SecAgreeError } from './errors.ts';
import { IPSEC_PARAM_ORDER, qKey, type ExtraParam, type SecMechanism } from './mechanism.ts';
import { ENCRYPTION_ALGS, INTEGRITY_ALGS } from '../ipsec/algorithms.ts';
import { verifySecurityClientUnchanged, verifySecurityVerify } from './verify.ts';

const lowerToken = fc.stringMatching(/^[a-z0-9][a-z0-9\-.!%*_+`'~]{0,11}$/);
const rawToken = fc.stringMatching(/^[A-Za-z0-9\-.!%*_+`'~]{1,12}$/);
const quoted = fc
  .array(fc.oneof(fc.stringMatching(/^[ !#-[\]-~\t]$/), fc.constantFrom('\\"', '\\\\', '\\a')), { maxLength: 12 })
  .map((parts) => `"${parts.join('')}"`);
const ipv6 = fc
  .ipV6()
  .map((a) => `[${a}]`)
  .filter((a) => /^\[[0-9A-Fa-f:.]+\]$/.test(a));

const known = new Set<string>(['q', ...IPSEC_PARAM_ORDER]);
const extraParam = (forIpsec: boolean): fc.Arbitrary<ExtraParam> =>
  fc
    .record(
      { name: lowerToken.filter((n) => n !== 'q' && !(forIpsec && known.has(n))), value: fc.oneof(rawToken, quoted, ipv6) },
      { requiredKeys: ['name'] },
    )
    .map((r) => ({ ...r })); // fc.record builds null-prototype objects; the parser builds plain ones

const q = fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000);
const ipsecMechanism: fc.Arbitrary<SecMechanism> = fc
  .tuple(
    fc.record(
      {
        q,
        alg: fc.oneof(fc.constantFrom(...INTEGRITY_ALGS), lowerToken),
        ealg: fc.oneof(fc.constantFrom(...ENCRYPTION_ALGS), lowerToken),
        prot: fc.constantFrom('esp' as const, 'ah' as const),
        mod: fc.constantFrom('trans' as const, 'tun' as const, 'UDP-enc-tun' as const),
        spiC: fc.integer({ min: 1, max: 0xffffffff }),
        spiS: fc.integer({ min: 1, max: 0xffffffff }),
        portC: fc.integer({ min: 1, max: 65535 }),
        portS: fc.integer({ min: 1, max: 65535 }),
      },
      { requiredKeys: [] },
    ),
    fc.array(extraParam(true), { maxLength: 3 }),
  )
  .map(([p, extra]) => ({ name: 'ipsec-3gpp', ...p, extra }));
const otherMechanism: fc.Arbitrary<SecMechanism> = fc
  .tuple(
    lowerToken.filter((n) => n !== 'ipsec-3gpp'),
    fc.option(q, { nil: undefined }),
    fc.array(extraParam(false), { maxLength: 3 }),
  )
  .map(([name, qv, extra]) => (qv === undefined ? { name, extra } : { name, q: qv, extra }));

/** Valid lists: one header's q values must be distinct, so later duplicates lose their q. */
const mechanismList = fc
  .array(fc.oneof({ weight: 3, arbitrary: ipsecMechanism }, { weight: 1, arbitrary: otherMechanism }), { minLength: 1, maxLength: 6 })
  .map((ms) => {
    const seen = new Set<number>();
    return ms.map((m) => {
      if (m.q === undefined) return m;
      if (seen.has(qKey(m.q))) {
        const { q: _drop, ...rest } = m;
        return rest;
      }
      seen.add(qKey(m.q));
      return m;
    });
  });

test('property: parse(serialize(x)) deep-equals x for arbitrary valid mechanism lists', () => {
  fc.assert(
    fc.property(mechanismList, (ms) => {
      assert.deepStrictEqual(parseSecurityHeaderOrThrow(serializeMechanisms(ms)), ms);
    }),
    { numRuns: 500 },
  );
});

test('property: a serialized list verifies against its own model (Security-Verify and Security-Client)', () => {
  fc.assert(
    fc.property(mechanismList, (ms) => {
      const text = serializeMechanisms(ms);
      assert.deepEqual(verifySecurityVerify(text, ms), { ok: true });
      assert.deepEqual(verifySecurityClientUnchanged(ms, ms.map(serializeMechanism)), { ok: true }); // one header per entry
    }),
    { numRuns: 200 },
  );
});

function parsesOrSecAgreeError(values: string | string[]): void {
  try {
    parseSecurityHeaderOrThrow(values);
  } catch (e) {
    if (!(e instanceof SecAgreeError)) throw new Error(`unexpected ${String(e)} for ${JSON.stringify(values).slice(0, 200)}`);
  }
}

// Fragments that reach deep into the scanner and the Annex H checks when glued at random.
const fragment = fc.constantFrom(
  'ipsec-3gpp',
  'tls',
  ';',
  ',',
  '=',
  '"',
  '\\',
  ' ',
  '\r\n',
  '\t',
  'q',
  '0.5',
  '1.000',
  'spi-c',
  'spi\u2011s',
  'port-c',
  'port-s',
  'alg',
  'ealg',
  'mod',
  'prot',
  'UDP-enc-tun',
  'hmac-sha-1-96',
  '4294967296',
  '0',
  '65535',
  '[',
  ']',
  '::1',
  '\u00a0',
  '\u2212',
  '\u0000',
  '\ud800',
  '😀',
  'é',
);

test('property: arbitrary strings (unicode, glued fragments, mutations) parse or throw SecAgreeError only', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.array(fragment, { maxLength: 60 }).map((a) => a.join('')),
        fc.tuple(mechanismList, fc.nat(), fc.string({ unit: 'binary', maxLength: 4 })).map(([ms, at, ins]) => {
          const s = serializeMechanisms(ms);
          const i = at % (s.length + 1);
          return s.slice(0, i) + ins + s.slice(i + 1);
        }),
      ),
      fc.boolean(),
      (s, asList) => parsesOrSecAgreeError(asList ? s.split('\n') : s),
    ),
    { numRuns: 2000 },
  );
});

test('property: huge inputs parse or throw SecAgreeError quickly', () => {
  fc.assert(
    // Up to 70 000 characters: most are scanned in full, some hit the 64 KiB limit.
    fc.property(fc.array(fragment, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1000, max: 70_000 }), (parts, len) => {
      const s = parts.join('').repeat(len).slice(0, len);
      const t0 = performance.now();
      parsesOrSecAgreeError(s);
      assert.ok(performance.now() - t0 < 1000, 'parse took over a second');
    }),
    { numRuns: 30 },
  );
  // A valid header just under the limit is scanned in full.
  const big = Array(250)
    .fill(`ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4;x="${'y'.repeat(180)}"`)
    .join(', ');
  const t0 = performance.now();
  assert.equal(parseSecurityHeaderOrThrow(big).length, 250);
  assert.ok(performance.now() - t0 < 1000);
  parsesOrSecAgreeError('x'.repeat(5_000_000));
  parsesOrSecAgreeError(Array(10_000).fill('tls').join(','));
});

/** The common-form reader agrees with the full one wherever it answers (and the full one does not refuse it). */
function agrees(list: string[]): boolean {
  const fast = parseCommonForm(list, 256);
  if (fast === undefined) return false;
  assert.deepStrictEqual(fast, scanAll(list, 'h'), JSON.stringify(list).slice(0, 300));
  return true;
}

/** Random upper/lower case per character: names and Annex H values are case-insensitive. */
const recase = (s: string, bits: number): string => [...s].map((c, i) => ((bits >> (i % 31)) & 1 ? c.toUpperCase() : c)).join('');

test('property: the common-form reader gives what the full reader gives, and reads every list without quotes or IPv6 references', () => {
  fc.assert(
    fc.property(mechanismList, fc.integer(), fc.constantFrom(',', ', ', ' ,\t'), (ms, bits, sep) => {
      const plain = !ms.some((m) => m.extra.some((e) => e.value !== undefined && /["[]/.test(e.value)));
      const text = ms.map(serializeMechanism).join(sep);
      assert.equal(agrees([text]), plain);
      agrees([recase(text, bits)]);
      agrees(ms.map(serializeMechanism)); // one header instance per entry
    }),
    { numRuns: 500 },
  );
});

test('property: on arbitrary and mutated input the common-form reader answers only where the full reader agrees', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.array(fragment, { maxLength: 60 }).map((a) => a.join('')),
        fc.tuple(mechanismList, fc.nat(), fc.string({ unit: 'binary', maxLength: 4 })).map(([ms, at, ins]) => {
          const s = serializeMechanisms(ms);
          const i = at % (s.length + 1);
          return s.slice(0, i) + ins + s.slice(i + 1);
        }),
        fc.string({ unit: 'binary', maxLength: 100 }),
      ),
      (s) => {
        let full: unknown;
        try {
          full = scanAll([s], 'h');
        } catch (e) {
          if (!(e instanceof SecAgreeError)) throw e;
          assert.equal(parseCommonForm([s], 256), undefined, `accepted what the full reader refuses: ${JSON.stringify(s)}`);
          return;
        }
        const fast = parseCommonForm([s], 256);
        if (fast !== undefined) assert.deepStrictEqual(fast, full);
      },
    ),
    { numRuns: 3000 },
  );
});

test('the common-form reader reads what UEs send and leaves limits and edge values to the full reader', () => {
  const ue = serializeMechanisms(
    buildSecurityClient(
      [
        { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' },
        { alg: 'hmac-md5-96', ealg: 'null' },
        { alg: 'null', ealg: 'aes-gcm' },
      ],
      { spiC: 4294967295, spiS: 1, portC: 65535, portS: 1 },
      ['trans', 'UDP-enc-tun'],
    ),
  );
  assert.ok(agrees([ue]));
  assert.ok(agrees(['ipsec-3gpp; alg=HMAC-SHA-1-96 ;spi-c=0001; x ;y=z, tls;q=0.5, digest;q=1.']));
  for (const bad of [
    'ipsec-3gpp;spi-c=0',
    'ipsec-3gpp;spi-c=4294967296',
    'ipsec-3gpp;spi-c=12345678901',
    'ipsec-3gpp;port-c=65536',
    'ipsec-3gpp;port-c=000001',
    'ipsec-3gpp;port-c',
    'ipsec-3gpp;alg=a;alg=b',
    'ipsec-3gpp;mod=tunnel',
    'ipsec-3gpp;prot=esp2',
    'tls;q=0.5, digest;q=0.500',
    'tls;q=1.5',
    'ipsec-3gpp;x="y"',
    'ipsec-3gpp;x=[::1]',
    'ipsec\u20113gpp',
    'ipsec-3gpp,',
    'ipsec-3gpp;alg=a\r\n',
  ]) {
    assert.equal(parseCommonForm([bad], 256), undefined, bad);
    parsesOrSecAgreeError(bad);
  }
  assert.equal(parseCommonForm([Array(257).fill('tls').join(',')], 256), undefined);
  assert.equal(parseCommonForm([Array(256).fill('tls').join(',')], 256)?.length, 256);
});
