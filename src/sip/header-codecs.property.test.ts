// Properties of the header codecs that read network input (parseVia, parseNameAddr, parseUri,
// parseCSeq): whatever the string, they return a result and never throw; a failure is a
// SipParseError with the codec's own code (or SIP_BAD_PARAMS from a parameter list); what parses
// survives format → parse. Round trips of generated Via, name-addr and URI values are in
// via.test.ts, name-addr.test.ts and uri.test.ts; CSeq's is here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SipParseError, type SipParseErrorCode } from './errors.ts';
import { formatCSeq, parseCSeq, CSEQ_MAX } from './cseq.ts';
import { formatNameAddr, parseNameAddr } from './name-addr.ts';
import { formatUri, parseUri } from './uri.ts';
import { formatVia, parseVia } from './via.ts';
import type { Result } from '../util/result.ts';

/** Strings a peer could send: anything, SIP-looking fragments, and mutated valid values. */
const PIECES = [
  'SIP',
  '/',
  '2.0',
  'UDP',
  'TCP',
  ' ',
  '\t',
  ':',
  ';',
  ',',
  '"',
  '\\',
  '<',
  '>',
  '[',
  ']',
  '?',
  '&',
  '=',
  '%',
  '%4',
  '%41',
  'sip:',
  'sips:',
  'tel:',
  '+1',
  '@',
  'branch=z9hG4bK',
  'rport',
  'received=',
  'tag=',
  'lr',
  'maddr=',
  '::1',
  '192.0.2.1',
  '5060',
  '65536',
  '99999999999',
  'é',
  '\u{1F600}',
  '\0',
];
const SEEDS = [
  'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport;received=192.0.2.1',
  'SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK1;maddr=239.1.1.1;ttl=16',
  '"Alice \\"A\\"" <sip:alice@ims.example.net;transport=udp>;tag=abc',
  'sip:bob@example.net;tag=1',
  '<tel:+15551234567;phone-context=ims.example.net>',
  'sip:alice:pw@[2001:db8::1]:5060;transport=tcp;lr?subject=x&h=y',
  '4294967295 INVITE',
];
const mutated = fc.tuple(fc.constantFrom(...SEEDS), fc.nat(), fc.nat({ max: 8 }), fc.string({ maxLength: 4 })).map(([s, at, cut, ins]) => {
  const i = s.length === 0 ? 0 : at % s.length;
  return s.slice(0, i) + ins + s.slice(i + cut);
});
const anyText = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.array(fc.constantFrom(...PIECES), { maxLength: 30 }).map((a) => a.join('')),
  mutated,
);

/** Calls `parse` (which must not throw), checks the failure shape, and returns the value. */
function checked<T>(parse: () => Result<T, SipParseError>, codes: readonly SipParseErrorCode[]): T | undefined {
  const r = parse();
  if (r.ok) return r.value;
  assert.ok(r.error instanceof SipParseError, 'a failure carries a SipParseError');
  assert.ok(codes.includes(r.error.code), `code ${r.error.code} is one of ${codes.join(', ')}`);
  return undefined;
}

test('parseVia never throws; what parses formats back to the same Via', () => {
  fc.assert(
    fc.property(anyText, (s) => {
      const v = checked(() => parseVia(s), ['SIP_BAD_VIA', 'SIP_BAD_URI']);
      if (v) assert.deepEqual(parseVia(formatVia(v)), { ok: true, value: v });
    }),
    { numRuns: 2000 },
  );
});

test('parseNameAddr never throws; what parses formats back to the same value', () => {
  fc.assert(
    fc.property(anyText, (s) => {
      const na = checked(() => parseNameAddr(s, 'Contact'), ['SIP_BAD_NAME_ADDR', 'SIP_BAD_PARAMS']);
      if (na) assert.deepEqual(parseNameAddr(formatNameAddr(na), 'Contact'), { ok: true, value: na });
    }),
    { numRuns: 2000 },
  );
});

test('parseUri never throws; what parses formats back to the same URI', () => {
  fc.assert(
    fc.property(anyText, (s) => {
      const u = checked(() => parseUri(s), ['SIP_BAD_URI']);
      if (u) assert.deepEqual(parseUri(formatUri(u)), { ok: true, value: u });
    }),
    { numRuns: 2000 },
  );
});

test('parseCSeq never throws; what parses formats back to the same CSeq', () => {
  fc.assert(
    fc.property(anyText, (s) => {
      const c = checked(() => parseCSeq(s), ['SIP_BAD_CSEQ']);
      if (c) assert.deepEqual(parseCSeq(formatCSeq(c)), { ok: true, value: c });
    }),
    { numRuns: 2000 },
  );
});

test('parseCSeq(formatCSeq(c)) equals c for generated CSeqs, and refuses numbers above 2^32-1', () => {
  const method = fc.string({ unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZ-.!%*_+`'~"), minLength: 1, maxLength: 12 });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: CSEQ_MAX }), method, (seq, m) => {
      assert.deepEqual(parseCSeq(formatCSeq({ seq, method: m })), { ok: true, value: { seq, method: m } });
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.bigInt({ min: BigInt(CSEQ_MAX) + 1n, max: 10n ** 30n }), (n) => {
      const r = parseCSeq(`${n} INVITE`);
      assert.ok(!r.ok && r.error.code === 'SIP_BAD_CSEQ');
    }),
    { numRuns: 200 },
  );
});
