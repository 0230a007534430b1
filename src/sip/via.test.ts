// Via (RFC 3261 §20.42) with received/rport (§18.2.1, RFC 3581 §4) and IPv6 sent-by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatVia, parseVia, parseViaOrThrow, sentByKey, stampVia, viaBranch, viaRport, type Via } from './via.ts';
import { Params } from './params.ts';
import { SipParseError } from './errors.ts';

test('reads protocol, transport, sent-by and parameters', () => {
  const v = parseViaOrThrow('SIP/2.0/udp pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;ttl=1');
  assert.equal(v.protocol, 'SIP/2.0');
  assert.equal(v.transport, 'UDP');
  assert.equal(v.host, 'pc33.atlanta.com');
  assert.equal(v.port, 5066);
  assert.equal(viaBranch(v), 'z9hG4bK776asdhds');
  assert.equal(v.params.get('ttl'), '1');
});

test('an IPv6 sent-by and an IPv6 received parameter (RFC 5118 §4.5)', () => {
  const v = parseViaOrThrow('SIP/2.0/UDP [2001:db8::9:1]:5060;received=2001:db8::9:255;branch=z9hG4bKas3-111');
  assert.equal(v.host, '2001:db8::9:1');
  assert.equal(v.params.get('received'), '2001:db8::9:255');
  assert.equal(sentByKey(v), '[2001:db8::9:1]:5060');
  assert.equal(formatVia(v), 'SIP/2.0/UDP [2001:db8::9:1]:5060;received=2001:db8::9:255;branch=z9hG4bKas3-111');
});

test('rport without a value is a flag; with a value it is a port (RFC 3581 §3)', () => {
  assert.equal(viaRport(parseViaOrThrow('SIP/2.0/UDP h;rport;branch=z9hG4bK1')), 'flag');
  assert.equal(viaRport(parseViaOrThrow('SIP/2.0/UDP h;rport=5070;branch=z9hG4bK1')), 5070);
  assert.equal(viaRport(parseViaOrThrow('SIP/2.0/UDP h;branch=z9hG4bK1')), undefined);
  assert.throws(() => parseViaOrThrow('SIP/2.0/UDP h;rport=70000'), SipParseError);
});

test('RFC 3581 §4: an rport flag gets the source port, and received is added even when the address is the same', () => {
  const v = stampVia(parseViaOrThrow('SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKkjshdyff'), { address: '192.0.2.1', port: 9988 });
  assert.equal(formatVia(v), 'SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff');
  const again = stampVia(parseViaOrThrow('SIP/2.0/UDP 10.0.0.1;received=1.2.3.4;rport;branch=z9hG4bK1'), { address: '192.0.2.9', port: 1 });
  assert.equal(formatVia(again), 'SIP/2.0/UDP 10.0.0.1;received=192.0.2.9;rport=1;branch=z9hG4bK1', 'a stale received is replaced');
});

test('RFC 3261 §18.2.1: received is added when sent-by differs from the source address or is a domain name', () => {
  assert.equal(
    stampVia(parseViaOrThrow('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1'), { address: '198.51.100.7', port: 1024 }).params.get('received'),
    '198.51.100.7',
  );
  assert.equal(
    stampVia(parseViaOrThrow('SIP/2.0/UDP ue.example;branch=z9hG4bK1'), { address: '198.51.100.7', port: 1024 }).params.get('received'),
    '198.51.100.7',
  );
  const same = parseViaOrThrow('SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1');
  assert.equal(stampVia(same, { address: '198.51.100.7', port: 1024 }).params.has('received'), false);
  assert.equal(same.params.has('received'), false, 'the input Via is not changed');
});

test('malformed Via values are SIP_BAD_VIA', () => {
  for (const bad of [
    'SIP/2.0 host',
    'SIP/2.0/UDP',
    'SIP/2.0/UDP host;;',
    'SIP/2.0/UDP host:99999',
    'SIP/2.0/UDP [::1;branch=x',
    'SIP/2.0/UDP h;branch=',
  ]) {
    assert.throws(
      () => parseViaOrThrow(bad),
      (e: unknown) => e instanceof SipParseError && e.code === 'SIP_BAD_VIA',
      bad,
    );
  }
});

const tok = fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"), minLength: 1, maxLength: 10 });
const viaArb: fc.Arbitrary<Via> = fc
  .record({
    transport: fc.constantFrom('UDP', 'TCP', 'TLS', 'SCTP', 'WS'),
    host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    params: fc.array(fc.tuple(tok, fc.option(tok, { nil: null })), { maxLength: 4 }),
  })
  .map(({ port, params, ...v }) => ({
    protocol: 'SIP/2.0',
    ...v,
    ...(port !== undefined && { port }),
    params: new Params(params.map(([name, value]) => ({ name, value }))),
  }));

test('parseVia(formatVia(v)) equals v for generated Via values', () => {
  fc.assert(
    fc.property(viaArb, (v) => {
      assert.deepEqual(parseVia(formatVia(v)), { ok: true, value: v });
    }),
  );
});
