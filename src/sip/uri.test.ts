// SIP/SIPS/tel URIs (RFC 3261 §19.1, RFC 3966): fields, IPv6 brackets, and format ∘ parse = identity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatUri, parseUri, parseUriOrThrow, type SipUri } from './uri.ts';
import { Params } from './params.ts';
import { SipParseError } from './errors.ts';

test('reads user, password, host, port, parameters and headers of a SIP URI', () => {
  const u = parseUriOrThrow('sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent') as SipUri;
  assert.equal(u.scheme, 'sips');
  assert.equal(u.user, 'alice');
  assert.equal(u.password, 'secret');
  assert.equal(u.host, 'atlanta.example.com');
  assert.equal(u.port, 5061);
  assert.equal(u.params.get('transport'), 'tcp');
  assert.equal(u.params.get('lr'), null);
  assert.deepEqual(u.headers, [
    { name: 'subject', value: 'project%20x' },
    { name: 'priority', value: 'urgent' },
  ]);
});

test('an IPv6 host is stored without brackets and written with them (RFC 3261 §19.1.1, RFC 5118)', () => {
  const u = parseUriOrThrow('sip:ue@[2001:db8::1]:5064;transport=udp') as SipUri;
  assert.equal(u.host, '2001:db8::1');
  assert.equal(u.port, 5064);
  assert.equal(formatUri(u), 'sip:ue@[2001:db8::1]:5064;transport=udp');
  assert.equal((parseUriOrThrow('sip:[::1]') as SipUri).host, '::1');
});

test('the scheme is case-insensitive and normalised to lower case', () => {
  assert.equal(parseUriOrThrow('SIP:a@b').scheme, 'sip');
});

test('tel URIs keep the number and its parameters (RFC 3966)', () => {
  const u = parseUriOrThrow('tel:+1-201-555-0123;phone-context=example.com');
  assert.equal(u.scheme, 'tel');
  assert.equal(u.scheme === 'tel' && u.number, '+1-201-555-0123');
  assert.equal(u.params.get('phone-context'), 'example.com');
});

test('bad URIs are SIP_BAD_URI: unknown scheme, empty host, bad port, whitespace, bad escape', () => {
  for (const bad of [
    'http://x',
    'sip:',
    'sip:a@',
    'sip:a@b:99999',
    'sip:a@b:x',
    'sip:a b@c',
    'sip:%zz@b',
    'sip:[::1',
    'sip:a@b;',
    'tel:xyz',
  ]) {
    assert.throws(
      () => parseUriOrThrow(bad),
      (e: unknown) => e instanceof SipParseError && e.code === 'SIP_BAD_URI',
      bad,
    );
  }
});

const alnum = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 8 });
const hostArb = fc.oneof(
  fc.array(alnum, { minLength: 1, maxLength: 3 }).map((l) => l.join('.')),
  fc.ipV4(),
  fc.ipV6(),
);
const paramsArb = fc
  .array(fc.tuple(alnum, fc.option(alnum, { nil: null })), { maxLength: 3 })
  .map((l) => new Params(l.map(([name, value]) => ({ name, value }))));
const sipUriArb: fc.Arbitrary<SipUri> = fc
  .record({
    scheme: fc.constantFrom('sip' as const, 'sips' as const),
    user: fc.option(alnum, { nil: undefined }),
    host: hostArb,
    port: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
    params: paramsArb,
    headers: fc.array(
      fc.tuple(alnum, alnum).map(([name, value]) => ({ name, value })),
      { maxLength: 2 },
    ),
  })
  .map((u) => {
    const { user, port, ...rest } = u;
    return { ...rest, ...(user !== undefined && { user }), ...(port !== undefined && { port }) };
  });

test('parseUri(formatUri(u)) equals u for generated SIP URIs', () => {
  fc.assert(
    fc.property(sipUriArb, (u) => {
      assert.deepEqual(parseUri(formatUri(u)), { ok: true, value: u });
    }),
  );
});
