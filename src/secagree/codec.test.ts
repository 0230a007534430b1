// Security-Client/-Server/-Verify codec: RFC 3329 §2.2 syntax, 33.203 Annex H params (digest §4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSecurityHeader, parseSecurityHeaderOrThrow, serializeMechanism, serializeMechanisms } from './codec.ts';
import { SecAgreeError, type SecAgreeCode } from './errors.ts';
import { InputError } from '../util/errors.ts';
import type { SecMechanism } from './mechanism.ts';

const ENTRY = 'ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1236;spi-s=1237;port-c=7004;port-s=7005';
const SHA1_NULL: SecMechanism = {
  name: 'ipsec-3gpp',
  alg: 'hmac-sha-1-96',
  ealg: 'null',
  spiC: 1236,
  spiS: 1237,
  portC: 7004,
  portS: 7005,
  extra: [],
};

function rejects(value: string | string[], code: SecAgreeCode, text: RegExp): void {
  assert.throws(
    () => parseSecurityHeaderOrThrow(value, 'Security-Client'),
    (e: unknown) => {
      assert.ok(e instanceof SecAgreeError && e instanceof InputError, `not a SecAgreeError: ${String(e)}`);
      assert.equal(e.code, code);
      assert.match(e.message, text);
      return true;
    },
  );
}

test('parses the Kamailio-issue Security-Client of digest §4.3 (two entries, same SPIs and ports)', () => {
  const v =
    'ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=1236;spi-s=1237;port-c=7004;port-s=7005,\r\n' +
    '                 ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1236;spi-s=1237;port-c=7004;port-s=7005';
  assert.deepEqual(parseSecurityHeaderOrThrow(v, 'Security-Client'), [{ ...SHA1_NULL, alg: 'hmac-md5-96' }, SHA1_NULL]);
});

test('parses and re-emits the Kamailio-style Security-Server of digest §4.3 exactly', () => {
  const v = 'ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=4096;spi-s=4097;port-c=5062;port-s=5063;alg=hmac-sha-1-96;ealg=aes-cbc';
  const [m] = parseSecurityHeaderOrThrow(v, 'Security-Server');
  assert.deepEqual(m, {
    name: 'ipsec-3gpp',
    q: 0.1,
    prot: 'esp',
    mod: 'trans',
    spiC: 4096,
    spiS: 4097,
    portC: 5062,
    portS: 5063,
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    extra: [],
  });
  assert.equal(serializeMechanism(m!), v);
});

test('merges repeated header instances and comma lists in order', () => {
  const ms = parseSecurityHeaderOrThrow([`${ENTRY}, tls;q=0.2`, 'digest;q=0.3;d-alg=md5'], 'Security-Client');
  assert.deepEqual(
    ms.map((m) => m.name),
    ['ipsec-3gpp', 'tls', 'digest'],
  );
  assert.deepEqual(ms[2], { name: 'digest', q: 0.3, extra: [{ name: 'd-alg', value: 'md5' }] });
});

test('tolerates LWS, line folding and no-break spaces around every separator', () => {
  const v = '  IPSEC-3GPP ; ALG = hmac-sha-1-96 ;\tealg=null;spi-c =1236;\r\n spi-s= 1237 ; port-c=7004;\u00a0port-s=7005  ';
  assert.deepEqual(parseSecurityHeaderOrThrow(v), [SHA1_NULL]);
});

test('parameter and mechanism names are case-insensitive; alg/ealg are lower-cased', () => {
  const [m] = parseSecurityHeaderOrThrow(
    'Ipsec-3GPP;ALG=HMAC-SHA-1-96;EALG=AES-CBC;Spi-C=1;SPI-S=2;Port-C=3;PORT-S=4;Mod=udp-ENC-tun;PROT=ESP',
  );
  assert.deepEqual(m, {
    name: 'ipsec-3gpp',
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    spiC: 1,
    spiS: 2,
    portC: 3,
    portS: 4,
    mod: 'UDP-enc-tun',
    prot: 'esp',
    extra: [],
  });
});

test('accepts U+2011 hyphens in spi‑c and other unicode hyphens (U+2010, U+2212) in names and values', () => {
  const v = 'ipsec\u20113gpp;alg=hmac\u2010sha\u20111\u201196;ealg=null;spi\u2011c=1236;spi\u2011s=1237;port\u2011c=7004;port\u2212s=7005';
  assert.deepEqual(parseSecurityHeaderOrThrow(v), [SHA1_NULL]);
  assert.equal(parseSecurityHeaderOrThrow('ipsec-3gpp;mod=UDP\u2011enc\u2011tun')[0]!.mod, 'UDP-enc-tun');
});

test('an absent ealg stays absent (null semantics) and is remembered as absent', () => {
  const [m] = parseSecurityHeaderOrThrow('ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4');
  assert.equal('ealg' in m!, false);
  assert.equal('prot' in m!, false);
  assert.equal('mod' in m!, false);
});

test('accepts SPIs of 1 to 10 digits, including leading zeros and 4294967295', () => {
  const [m] = parseSecurityHeaderOrThrow('ipsec-3gpp;spi-c=7;spi-s=4294967295');
  assert.equal(m!.spiC, 7);
  assert.equal(m!.spiS, 4294967295);
  assert.equal(parseSecurityHeaderOrThrow('ipsec-3gpp;spi-c=0000001236')[0]!.spiC, 1236);
});

test('rejects SPI 0 naming spi-c and the value', () =>
  rejects('ipsec-3gpp;spi-c=0', 'SECAGREE_BAD_SPI', /spi-c: SPI must be 1\.\.4294967295, got 0/));
test('rejects an SPI above 4294967295', () => rejects('ipsec-3gpp;spi-s=4294967296', 'SECAGREE_BAD_SPI', /spi-s: .*4294967296/));
test('rejects a non-numeric SPI', () =>
  rejects('ipsec-3gpp;spi-c=12ab', 'SECAGREE_BAD_SPI', /spi-c: SPI must be 1 to 10 decimal digits, got "12ab"/));
test('rejects an SPI of 11 digits', () => rejects('ipsec-3gpp;spi-c=00000001236', 'SECAGREE_BAD_SPI', /spi-c/));
test('rejects port 0', () => rejects('ipsec-3gpp;port-c=0', 'SECAGREE_BAD_PORT', /port-c: port must be 1\.\.65535, got "0"/));
test('rejects a port over 65535', () => rejects('ipsec-3gpp;port-s=65536', 'SECAGREE_BAD_PORT', /port-s: .*"65536"/));
test('rejects a non-numeric port', () => rejects('ipsec-3gpp;port-s=-1', 'SECAGREE_BAD_PORT', /port-s/));
test('rejects a q above 1', () => rejects('ipsec-3gpp;q=1.5', 'SECAGREE_BAD_Q', /q: not an RFC 3329 qvalue.*"1\.5"/));
test('rejects a q with four decimals', () => rejects('ipsec-3gpp;q=0.1234', 'SECAGREE_BAD_Q', /q:/));
test('rejects a quoted q', () => rejects('ipsec-3gpp;q="0.5"', 'SECAGREE_BAD_Q', /q:/));

test('rejects duplicate q values in one header (RFC 3329 §2.2), 0.1 and 0.100 being equal', () => {
  rejects(
    'ipsec-3gpp;q=0.1;alg=hmac-sha-1-96, ipsec-3gpp;q=0.100;alg=hmac-md5-96',
    'SECAGREE_DUPLICATE_Q',
    /mechanisms 1 and 2 both have q=0\.1/,
  );
});

test('issue 10 §5: one q rule: equal q values in different instances of the header are refused like in one value', () => {
  assert.throws(
    () => parseSecurityHeaderOrThrow(['tls;q=0.5', 'ipsec-3gpp;q=0.5']),
    (e: unknown) => e instanceof SecAgreeError && e.code === 'SECAGREE_DUPLICATE_Q' && /mechanisms 1 and 2/.test(e.message),
  );
});

test('whatever parses also serializes (the q rule is the same both ways)', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.array(
          fc.tuple(
            fc.constantFrom('tls', 'digest', 'ipsec-3gpp'),
            fc.option(fc.constantFrom('0', '0.1', '0.10', '0.5', '0.500', '1', '1.0')),
          ),
          { minLength: 1, maxLength: 3 },
        ),
        { minLength: 1, maxLength: 3 },
      ),
      (values) => {
        const headers = values.map((v) => v.map(([name, q]) => (q === null ? name : `${name};q=${q}`)).join(', '));
        let parsed;
        try {
          parsed = parseSecurityHeaderOrThrow(headers);
        } catch (e) {
          assert.ok(e instanceof SecAgreeError && e.code === 'SECAGREE_DUPLICATE_Q');
          return;
        }
        assert.deepEqual(parseSecurityHeaderOrThrow(serializeMechanisms(parsed)), parsed);
      },
    ),
    { numRuns: 300 },
  );
});

test('entries without q never count as duplicates', () => {
  assert.equal(parseSecurityHeaderOrThrow(`${ENTRY}, ${ENTRY}`).length, 2);
});

test('rejects an empty mechanism between commas, a leading or trailing comma and an empty value', () => {
  rejects(`${ENTRY},,tls`, 'SECAGREE_EMPTY_MECHANISM', /empty mechanism 2/);
  rejects(`,${ENTRY}`, 'SECAGREE_EMPTY_MECHANISM', /empty mechanism 1/);
  rejects(`${ENTRY},  `, 'SECAGREE_EMPTY_MECHANISM', /empty mechanism 2/);
  rejects('   ', 'SECAGREE_EMPTY_MECHANISM', /empty mechanism 1/);
  rejects([], 'SECAGREE_EMPTY_MECHANISM', /no value/);
  rejects(';alg=hmac-sha-1-96', 'SECAGREE_EMPTY_MECHANISM', /empty mechanism 1/);
});

test('rejects garbage with the offset and the rest of the input', () => {
  rejects('ipsec-3gpp;alg=hmac-sha-1-96 ealg=null', 'SECAGREE_SYNTAX', /unexpected "e" at offset 29/);
  rejects('ipsec-3gpp;=1', 'SECAGREE_SYNTAX', /expected a parameter name/);
  rejects('ipsec-3gpp;alg=', 'SECAGREE_SYNTAX', /expected a value for alg/);
  rejects('ipsec-3gpp;x="abc', 'SECAGREE_SYNTAX', /unterminated quoted string/);
  rejects('<script>', 'SECAGREE_SYNTAX', /expected a mechanism name/);
  rejects('ipsec-3gpp;alg=hmac\u00e9', 'SECAGREE_SYNTAX', /unexpected/);
});

test('rejects a known parameter given twice or without a value', () => {
  rejects('ipsec-3gpp;spi-c=1;spi-c=2', 'SECAGREE_DUPLICATE_PARAM', /spi-c: parameter given twice/);
  rejects('ipsec-3gpp;alg', 'SECAGREE_BAD_PARAM', /alg: missing value/);
});

test('rejects unknown prot and mod values, naming them', () => {
  rejects('ipsec-3gpp;prot=udp', 'SECAGREE_BAD_PARAM', /prot: must be esp or ah, got "udp"/);
  rejects('ipsec-3gpp;mod=tunnel', 'SECAGREE_BAD_PARAM', /mod: must be trans, tun or UDP-enc-tun, got "tunnel"/);
});

test('unknown alg/ealg names are not a parse error: they are kept as strings', () => {
  const [m] = parseSecurityHeaderOrThrow('ipsec-3gpp;alg=hmac-sha-256-128;ealg=aes-256-gcm');
  assert.equal(m!.alg, 'hmac-sha-256-128');
  assert.equal(m!.ealg, 'aes-256-gcm');
});

test('accepts quoted values where RFC 3329 generic-param allows, unquoting Annex H params', () => {
  const [m] = parseSecurityHeaderOrThrow('ipsec-3gpp;spi-c="1236";alg="hmac-sha-1-96";d-ver="0123\\"x";flag;host=[2001:db8::1]');
  assert.equal(m!.spiC, 1236);
  assert.equal(m!.alg, 'hmac-sha-1-96');
  assert.deepEqual(m!.extra, [{ name: 'd-ver', value: '"0123\\"x"' }, { name: 'flag' }, { name: 'host', value: '[2001:db8::1]' }]);
});

test('non-ipsec-3gpp mechanisms keep Annex H names as extensions (only q applies to tls)', () => {
  const [m] = parseSecurityHeaderOrThrow('tls;q=0.2;alg=x;spi-c=0');
  assert.deepEqual(m, {
    name: 'tls',
    q: 0.2,
    extra: [
      { name: 'alg', value: 'x' },
      { name: 'spi-c', value: '0' },
    ],
  });
});

test('refuses inputs over 64 KiB and more than 256 mechanisms before doing real work', () => {
  rejects('ipsec-3gpp;x=' + 'a'.repeat(70000), 'SECAGREE_TOO_LONG', /more than 65536/);
  rejects(Array(300).fill('tls').join(','), 'SECAGREE_TOO_LONG', /more than 256 mechanisms/);
});

test('serializes in the canonical order with ASCII hyphens and UDP-enc-tun spelled exactly', () => {
  const m: SecMechanism = {
    name: 'ipsec-3gpp',
    extra: [{ name: 'x', value: 'y' }],
    ealg: 'aes-cbc',
    alg: 'hmac-sha-1-96',
    portS: 4,
    portC: 3,
    spiS: 2,
    spiC: 1,
    mod: 'UDP-enc-tun',
    prot: 'esp',
    q: 0.125,
  };
  assert.equal(
    serializeMechanism(m),
    'ipsec-3gpp;q=0.125;prot=esp;mod=UDP-enc-tun;spi-c=1;spi-s=2;port-c=3;port-s=4;alg=hmac-sha-1-96;ealg=aes-cbc;x=y',
  );
  assert.equal(serializeMechanism({ name: 'tls', q: 1, extra: [] }), 'tls;q=1');
  assert.equal(serializeMechanism({ name: 'tls', q: 0, extra: [] }), 'tls;q=0');
});

test('serialization is strict: it refuses values that would not parse back', () => {
  const bad: [SecMechanism, RegExp][] = [
    [{ ...SHA1_NULL, spiC: 0 }, /spi-c/],
    [{ ...SHA1_NULL, portS: 65536 }, /port-s/],
    [{ ...SHA1_NULL, q: 0.1234 }, /q must be/],
    [{ ...SHA1_NULL, alg: 'a b' }, /alg: cannot serialize/],
    [{ name: 'tls', alg: 'x', extra: [] }, /ipsec-3gpp parameter/],
    [{ ...SHA1_NULL, extra: [{ name: 'spi-c', value: '1' }] }, /known parameter/],
    [{ ...SHA1_NULL, extra: [{ name: 'x', value: 'a b' }] }, /not a token, host or quoted-string/],
    [{ name: 'bad name', extra: [] }, /not a token/],
  ];
  for (const [m, re] of bad)
    assert.throws(
      () => serializeMechanism(m),
      (e: unknown) => e instanceof SecAgreeError && re.test(e.message),
    );
  assert.throws(() => serializeMechanisms([]), /at least one/);
  assert.throws(
    () =>
      serializeMechanisms([
        { ...SHA1_NULL, q: 0.5 },
        { name: 'tls', q: 0.5, extra: [] },
      ]),
    /mechanisms 1 and 2 both have q=0\.5/,
  );
});

test('issue 12 §4: parseSecurityHeader returns a result; bad input is a typed error, never a throw', () => {
  const good = parseSecurityHeader(ENTRY, 'Security-Client');
  assert.ok(good.ok);
  assert.deepEqual(good.value, [SHA1_NULL]);
  const bad = parseSecurityHeader('ipsec-3gpp;spi-c=0x10', 'Security-Client');
  assert.ok(!bad.ok);
  assert.equal(bad.error.code, 'SECAGREE_BAD_SPI');
  assert.match(bad.error.message, /Security-Client mechanism 1/);
});
