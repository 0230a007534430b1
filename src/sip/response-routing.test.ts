// Default response destinations: RFC 3261 §18.2.2 and RFC 3581 §4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultResponseDestination } from './response-routing.ts';
import { SipHeaders, SipResponse } from './message.ts';
import { ManualClock } from './clock.ts';
import { context, spyTransport } from './_test-helpers.ts';

const udp = spyTransport(new ManualClock());
const tcp = spyTransport(new ManualClock(), 'tcp');
const src = { address: '203.0.113.9', port: 61000 };
const res = (via: string) => new SipResponse(200, 'OK', new SipHeaders([['Via', via]]));

test('UDP with received and rport: to the received address and the rport port (RFC 3581 §4)', () => {
  assert.deepEqual(
    defaultResponseDestination(res('SIP/2.0/UDP 10.0.0.1:5060;rport=61000;received=203.0.113.9;branch=z9hG4bK1'), context(udp, src)),
    src,
  );
});

test('UDP with received only: to received, at the sent-by port or 5060', () => {
  assert.deepEqual(defaultResponseDestination(res('SIP/2.0/UDP 10.0.0.1:5070;received=203.0.113.9;branch=z9hG4bK1'), context(udp, src)), {
    address: '203.0.113.9',
    port: 5070,
  });
  assert.deepEqual(defaultResponseDestination(res('SIP/2.0/UDP 10.0.0.1;received=203.0.113.9;branch=z9hG4bK1'), context(udp, src)), {
    address: '203.0.113.9',
    port: 5060,
  });
});

test('UDP without received: to sent-by (TLS defaults to 5061)', () => {
  assert.deepEqual(defaultResponseDestination(res('SIP/2.0/UDP [2001:db8::5]:5064;branch=z9hG4bK1'), context(udp, src)), {
    address: '2001:db8::5',
    port: 5064,
  });
  assert.deepEqual(defaultResponseDestination(res('SIP/2.0/TLS ue.example;branch=z9hG4bK1'), context(udp, src)), {
    address: 'ue.example',
    port: 5061,
  });
});

test('maddr wins over received for unreliable transports', () => {
  assert.deepEqual(
    defaultResponseDestination(res('SIP/2.0/UDP 10.0.0.1;maddr=239.255.255.1;received=203.0.113.9;branch=z9hG4bK1'), context(udp, src)),
    { address: '239.255.255.1', port: 5060 },
  );
});

test('TCP: the connection the request came on, with received and the sent-by port as fallback', () => {
  const d = defaultResponseDestination(
    res('SIP/2.0/TCP 10.0.0.1:5060;received=203.0.113.9;branch=z9hG4bK1'),
    context(tcp, src, { connectionId: 'tcp:7' }),
  );
  assert.deepEqual(d, { address: '203.0.113.9', port: 5060, connectionId: 'tcp:7' });
});

test('an unparseable top Via falls back to the packet source', () => {
  assert.deepEqual(defaultResponseDestination(res('garbage'), context(udp, src)), src);
});
