// The INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §8.7) in virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';
import { TransactionLayer, type ServerTransaction } from './transaction-manager.ts';
import { createAck, createResponse } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import type { SipRequest } from './message.ts';
import { ServerInviteTransaction } from './server-invite.ts';
import { context, request, spyTransport } from './_test-helpers.ts';

function setup(protocol: 'udp' | 'tcp' = 'udp', answer?: (tx: ServerTransaction, r: SipRequest) => void) {
  const clock = new ManualClock();
  const transport = spyTransport(clock, protocol);
  const txs: ServerTransaction[] = [];
  const acks: SipRequest[] = [];
  const layer = new TransactionLayer({
    clock,
    user: {
      onRequest: (tx, r) => {
        txs.push(tx);
        answer?.(tx, r);
      },
      onAck: (a) => acks.push(a),
    },
  });
  const invite = request('INVITE', { transport: protocol.toUpperCase() });
  const ctx = context(transport);
  const receive = (r: SipRequest) => layer.receive(serializeMessage(r), ctx);
  receive(invite);
  const tx = txs[0]! as ServerInviteTransaction;
  assert.ok(tx instanceof ServerInviteTransaction);
  const events: string[] = [];
  tx.user = { onTimeout: () => events.push(`timeout@${clock.now()}`), onTerminated: () => events.push(`terminated@${clock.now()}`) };
  return { clock, transport, layer, txs, invite, receive, tx, events, acks };
}

test('the INVITE server sends 100 Trying when the TU stays silent for 200 ms (§17.2.1)', () => {
  const { clock, transport } = setup();
  clock.advance(199);
  assert.equal(transport.sent.length, 0);
  clock.advance(1);
  assert.deepEqual(transport.startLines(), ['SIP/2.0 100 Trying']);
});

test('no 100 Trying when the TU answers within 200 ms', () => {
  const { clock, transport } = setup('udp', (tx, r) => tx.respond(createResponse(r, 180, undefined, [], { toTag: 'x' })));
  clock.advance(1000);
  assert.deepEqual(transport.startLines(), ['SIP/2.0 180 Ringing']);
});

test('a retransmitted INVITE in Proceeding resends the most recent provisional response', () => {
  const { clock, transport, receive, invite, txs } = setup();
  clock.advance(300);
  receive(invite);
  assert.equal(txs.length, 1);
  assert.deepEqual(transport.startLines(), ['SIP/2.0 100 Trying', 'SIP/2.0 100 Trying']);
});

test('a non-2xx final is retransmitted on Timer G (T1 doubling, capped at T2) until Timer H reports a failure at 64·T1', () => {
  const { clock, transport, tx, invite, events } = setup();
  tx.respond(createResponse(invite, 486, undefined, [], { toTag: 'x' }));
  assert.equal(tx.state, 'completed');
  clock.advance(32_000);
  assert.deepEqual(
    transport.sent.map((s) => s.at),
    [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500],
  );
  assert.deepEqual(events, ['timeout@32000', 'terminated@32000']);
});

test('the ACK for a non-2xx moves to Confirmed, stops Timer G, is absorbed, and Timer I (T4) ends the transaction', () => {
  const { clock, transport, tx, invite, receive, events, acks } = setup();
  const res = createResponse(invite, 404, undefined, [], { toTag: 'x' });
  tx.respond(res);
  clock.advance(600);
  receive(createAck(invite, res));
  assert.equal(tx.state, 'confirmed');
  receive(createAck(invite, res));
  assert.equal(acks.length, 0, 'the ACK of a non-2xx never reaches the TU');
  clock.advance(4999);
  assert.equal(tx.state, 'confirmed');
  assert.equal(transport.sent.length, 2, 'one retransmission at 500 ms, none after the ACK');
  clock.advance(1);
  assert.deepEqual(events, ['terminated@5600']);
});

test('a 2xx moves to Accepted (RFC 6026): INVITE retransmissions are absorbed, TU 2xx retransmissions sent, Timer L ends it', () => {
  const { clock, transport, tx, invite, receive, events } = setup();
  const ok = createResponse(invite, 200, undefined, [], { toTag: 'x' });
  tx.respond(ok);
  assert.equal(tx.state, 'accepted');
  receive(invite);
  assert.equal(transport.sent.length, 1);
  assert.ok(tx.respond(ok));
  assert.equal(transport.sent.length, 2);
  assert.equal(tx.respond(createResponse(invite, 486)), false);
  clock.advance(32_000);
  assert.deepEqual(events, ['terminated@32000']);
});

test("an ACK for the 2xx goes to the TU, whether it has a new branch (§17.1.1.3) or the INVITE's (RFC 6026 §8.7)", () => {
  const { tx, invite, receive, acks } = setup();
  const ok = createResponse(invite, 200, undefined, [], { toTag: 'x' });
  tx.respond(ok);
  const ack = createAck(invite, ok);
  receive(ack);
  ack.headers.set('Via', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnewack');
  receive(ack);
  assert.equal(acks.length, 2);
  assert.equal(tx.state, 'accepted');
});

test('over TCP there is no Timer G and Timer I is zero', () => {
  const { clock, transport, tx, invite, receive } = setup('tcp');
  const res = createResponse(invite, 500, undefined, [], { toTag: 'x' });
  tx.respond(res);
  clock.advance(10_000);
  assert.deepEqual(transport.startLines(), ['SIP/2.0 500 Server Internal Error']);
  receive(createAck(invite, res));
  assert.equal(tx.state, 'terminated');
});
