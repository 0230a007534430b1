// The INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §8.4) in virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';
import { TransactionLayer } from './transaction-manager.ts';
import { createResponse } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import type { SipResponse } from './message.ts';
import { context, request, sentMessage, spyTransport } from './_test-helpers.ts';

function setup(protocol: 'udp' | 'tcp' = 'udp') {
  const clock = new ManualClock();
  const transport = spyTransport(clock, protocol);
  const stray: SipResponse[] = [];
  const layer = new TransactionLayer({ clock, user: { onRequest: () => {}, onStrayResponse: (r) => stray.push(r) } });
  const events: string[] = [];
  const responses: number[] = [];
  const invite = request('INVITE', { transport: protocol.toUpperCase() });
  const to = { address: '198.51.100.1', port: 5060 };
  const tx = layer.sendRequest(
    invite,
    { transport, to },
    {
      onResponse: (r) => responses.push(r.status),
      onTimeout: () => events.push(`timeout@${clock.now()}`),
      onTerminated: () => events.push(`terminated@${clock.now()}`),
    },
  );
  const deliver = (status: number) =>
    layer.receive(serializeMessage(createResponse(invite, status, undefined, [], { toTag: 'callee' })), context(transport, to));
  return { clock, transport, layer, events, responses, tx, deliver, to, stray, invite };
}

test('a UDP INVITE client retransmits on Timer A, doubling from T1, until Timer B fires at 64·T1', () => {
  const { clock, transport, events, tx } = setup();
  assert.equal(tx.state, 'calling');
  clock.advance(32_000);
  assert.deepEqual(
    transport.sent.map((s) => s.at),
    [0, 500, 1500, 3500, 7500, 15500, 31500],
  );
  assert.deepEqual(events, ['timeout@32000', 'terminated@32000']);
  assert.ok(
    transport.startLines().every((l) => l.startsWith('INVITE')),
    'Timer B: "The client transaction MUST NOT generate an ACK"',
  );
});

test('a provisional response stops INVITE retransmissions (Proceeding)', () => {
  const { clock, transport, deliver, tx, responses } = setup();
  clock.advance(700);
  deliver(180);
  clock.advance(60_000);
  assert.equal(tx.state, 'proceeding');
  assert.deepEqual(responses, [180]);
  assert.equal(transport.sent.length, 2);
});

test('the INVITE client transaction ACKs a non-2xx final itself, to the INVITE destination, and re-ACKs retransmissions without passing them up', () => {
  const { clock, transport, deliver, tx, responses, to, events, invite } = setup();
  deliver(100);
  deliver(486);
  assert.equal(tx.state, 'completed');
  assert.throws(() => tx.request, /released/, 'Completed keeps the ACK bytes and the route, not the INVITE');
  assert.deepEqual(transport.startLines(), ['INVITE sip:bob@biloxi.example.com SIP/2.0', 'ACK sip:bob@biloxi.example.com SIP/2.0']);
  const ack = sentMessage(transport, 1);
  assert.equal(ack.headers.get('Via'), invite.headers.get('Via'));
  assert.match(ack.headers.get('To')!, /;tag=callee$/);
  assert.deepEqual(transport.sent[1]!.to, to);
  deliver(486);
  assert.equal(transport.sent.length, 3);
  assert.deepEqual(responses, [100, 486]);
  clock.advance(32_000);
  assert.deepEqual(events, ['terminated@32000'], 'Timer D');
});

test('a 2xx moves the INVITE client to Accepted (RFC 6026): passed up, not ACKed by the transaction, retransmissions passed up until Timer M', () => {
  const { clock, transport, deliver, tx, responses, events } = setup();
  deliver(200);
  assert.equal(tx.state, 'accepted');
  assert.equal(transport.sent.length, 1, 'the TU, not the transaction, ACKs a 2xx');
  clock.advance(1000);
  deliver(200);
  assert.deepEqual(responses, [200, 200]);
  clock.advance(31_000);
  assert.deepEqual(events, ['terminated@32000']);
});

test('a 2xx arriving after the INVITE client terminated goes to the core as a stray response (§18.1.2)', () => {
  const { clock, deliver, stray } = setup();
  deliver(200);
  clock.advance(32_000);
  deliver(200);
  assert.deepEqual(
    stray.map((r) => r.status),
    [200],
  );
});

test('over TCP the INVITE client does not retransmit and Timer D is zero', () => {
  const { clock, transport, deliver, tx } = setup('tcp');
  clock.advance(10_000);
  assert.equal(transport.sent.length, 1);
  deliver(603);
  assert.equal(tx.state, 'terminated');
  assert.deepEqual(
    transport.startLines().map((l) => l.split(' ')[0]),
    ['INVITE', 'ACK'],
  );
});
