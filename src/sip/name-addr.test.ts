// name-addr / addr-spec (RFC 3261 §20.10, §25.1), parameter lists and CSeq.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatNameAddr, isStarContact, parseNameAddr, parseNameAddrOrThrow, tagOf, type NameAddr } from './name-addr.ts';
import { Params, parseParams } from './params.ts';
import { formatCSeq, parseCSeqOrThrow } from './cseq.ts';
import { SipParseError } from './errors.ts';

test('display name, URI and params of a name-addr', () => {
  const na = parseNameAddrOrThrow('"Alice, the 1st" <sip:alice@atlanta.example.com;transport=tcp>;tag=88sja8x;expires=60');
  assert.equal(na.displayName, 'Alice, the 1st');
  assert.equal(na.uri, 'sip:alice@atlanta.example.com;transport=tcp');
  assert.equal(tagOf(na), '88sja8x');
  assert.equal(na.params.get('expires'), '60');
});

test('in the addr-spec form the parameters belong to the header, not the URI (§20.10)', () => {
  const na = parseNameAddrOrThrow('sip:bob@biloxi.example.com;tag=a6c85cf');
  assert.equal(na.uri, 'sip:bob@biloxi.example.com');
  assert.equal(tagOf(na), 'a6c85cf');
  assert.equal(na.displayName, undefined);
});

test('an IPv6 Contact with +sip.instance and expires', () => {
  const na = parseNameAddrOrThrow(
    '<sip:ue@[2001:db8::10]:42312>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";expires=600000',
  );
  assert.equal(na.uri, 'sip:ue@[2001:db8::10]:42312');
  assert.equal(na.params.getUnquoted('+sip.instance'), '<urn:uuid:00000000-0000-1000-8000-000A95A0E128>');
});

test('token display names keep their words; UTF-8 must be quoted but is tolerated', () => {
  assert.equal(parseNameAddrOrThrow('Bob  Smith <sip:b@x>').displayName, 'Bob  Smith');
  assert.equal(parseNameAddrOrThrow('Zoë <sip:z@x>').displayName, 'Zoë');
});

test('Contact: * is recognised (REGISTER removing all bindings, §10.2.2)', () => {
  assert.ok(isStarContact(' * '));
  assert.throws(() => parseNameAddrOrThrow('*'), SipParseError);
});

test('malformed name-addr values are SIP_BAD_NAME_ADDR', () => {
  for (const bad of ['"unterminated <sip:a@b>', '<sip:a@b', 'Bell, Alexander <sip:a@b>', '< sip:a@b >', '<>', 'no-scheme', '<sip:a@b>;;']) {
    assert.throws(
      () => parseNameAddrOrThrow(bad),
      (e: unknown) => e instanceof SipParseError && e.code === 'SIP_BAD_NAME_ADDR',
      bad,
    );
  }
});

const tok = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+'), minLength: 1, maxLength: 8 });
const nameAddrArb: fc.Arbitrary<NameAddr> = fc
  .record({
    displayName: fc.option(
      fc.string({ maxLength: 12 }).filter((s) => !/[\r\n]/.test(s)),
      { nil: undefined },
    ),
    uri: tok.map((u) => `sip:${u}@example.com`),
    params: fc.array(
      fc.tuple(
        tok,
        fc.option(
          fc.oneof(
            tok,
            fc
              .string({ maxLength: 8 })
              .filter((s) => !/[\r\n]/.test(s))
              .map((s) => `"${s.replace(/["\\]/g, '\\$&')}"`),
          ),
          { nil: null },
        ),
      ),
      { maxLength: 3 },
    ),
  })
  .map(({ displayName, params, uri }) => ({
    ...(displayName !== undefined && { displayName }),
    uri,
    params: new Params(params.map(([name, value]) => ({ name, value }))),
  }));

test('parseNameAddr(formatNameAddr(x)) equals x, quoting and escaping display names', () => {
  fc.assert(
    fc.property(nameAddrArb, (na) => {
      assert.deepEqual(parseNameAddr(formatNameAddr(na)), { ok: true, value: na });
    }),
  );
});

test('Params: case-insensitive get, set in place, delete, flags, toString', () => {
  const p = parseParams(' ; Branch = z9hG4bK1 ;lr; q=0.5', 'header');
  assert.equal(p.get('branch'), 'z9hG4bK1');
  assert.equal(p.get('LR'), null);
  assert.equal(p.get('x'), undefined);
  p.set('BRANCH', 'z9hG4bK2').set('new', '"a b"');
  assert.equal(p.toString(), ';Branch=z9hG4bK2;lr;q=0.5;new="a b"');
  assert.equal(p.getUnquoted('new'), 'a b');
  assert.ok(p.delete('lr'));
  assert.equal(p.size, 3);
});

test('URI-mode params allow no whitespace', () => {
  assert.throws(() => parseParams('; lr', 'uri'), SipParseError);
  assert.equal(parseParams(';lr;maddr=[::1]', 'uri').get('maddr'), '[::1]');
});

test('CSeq: number and method; LWS between; range up to 2^32-1', () => {
  assert.deepEqual(parseCSeqOrThrow('4711   INVITE'), { seq: 4711, method: 'INVITE' });
  assert.equal(formatCSeq({ seq: 1, method: 'REGISTER' }), '1 REGISTER');
  assert.equal(parseCSeqOrThrow('4294967295 ACK').seq, 4294967295);
  for (const bad of ['4294967296 ACK', 'INVITE', '12', '-1 INVITE', '1 IN VITE', 'a1 INVITE']) {
    assert.throws(
      () => parseCSeqOrThrow(bad),
      (e: unknown) => e instanceof SipParseError && e.code === 'SIP_BAD_CSEQ',
      bad,
    );
  }
});

test('an empty Params formats as nothing', () => {
  assert.equal(new Params().toString(), '');
});
