// The non-INVITE server transaction (RFC 3261 §17.2.2) in virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';
import { TransactionLayer, type ServerTransaction } from './transaction-manager.ts';
import { createResponse } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import type { SipRequest } from './message.ts';
import { context, flush, request, spyTransport } from './_test-helpers.ts';

function setup(protocol: 'udp' | 'tcp' = 'udp') {
  const clock = new ManualClock();
  const transport = spyTransport(clock, protocol);
  const txs: ServerTransaction[] = [];
  const layer = new TransactionLayer({ clock, user: { onRequest: (tx) => txs.push(tx) } });
  const req = request('REGISTER', { transport: protocol.toUpperCase() });
  const ctx = context(transport);
  const receive = (r: SipRequest = req) => layer.receive(serializeMessage(r), ctx);
  receive();
  const tx = txs[0]!;
  return { clock, transport, layer, txs, req, receive, tx };
}

test('a retransmitted request creates no second transaction and is discarded while Trying', () => {
  const { receive, txs, transport, tx } = setup();
  receive();
  receive();
  assert.equal(txs.length, 1);
  assert.equal(tx.state, 'trying');
  assert.equal(transport.sent.length, 0);
});

test('in Proceeding a retransmitted request resends the last provisional response', () => {
  const { receive, transport, tx, req } = setup();
  tx.respond(createResponse(req, 100));
  assert.equal(tx.state, 'proceeding');
  receive();
  assert.deepEqual(transport.startLines(), ['SIP/2.0 100 Trying', 'SIP/2.0 100 Trying']);
});

test('the server transaction absorbs a retransmitted request and resends its final response until Timer J (64·T1)', () => {
  const { clock, receive, transport, tx, req, layer, txs } = setup();
  assert.ok(tx.respond(createResponse(req, 401, undefined, [['WWW-Authenticate', 'Digest realm="r", nonce="n"']])));
  assert.equal(tx.state, 'completed');
  clock.advance(1000);
  receive();
  assert.deepEqual(transport.startLines(), ['SIP/2.0 401 Unauthorized', 'SIP/2.0 401 Unauthorized']);
  assert.equal(transport.sent[0]!.text, transport.sent[1]!.text, 'the same bytes');
  assert.equal(tx.respond(createResponse(req, 200)), false, '"Any other final responses … MUST be discarded while in the Completed state"');
  clock.advance(31_000);
  assert.equal(tx.state, 'terminated');
  assert.equal(layer.serverTransactionCount, 0);
  receive();
  assert.equal(txs.length, 2, 'after Timer J the request is new again');
});

test('Completed keeps only the final response bytes and their route: request, context and parsed response are released', () => {
  const { receive, transport, tx, req } = setup();
  assert.equal(tx.request, tx.request, 'readable while Trying');
  assert.equal(tx.context.remote.address, '192.0.2.1');
  tx.respond(createResponse(req, 100));
  assert.equal(tx.lastResponse?.status, 100);
  tx.respond(createResponse(req, 401));
  assert.equal(tx.state, 'completed');
  assert.throws(() => tx.request, /released/);
  assert.throws(() => tx.context, /released/);
  assert.equal(tx.lastResponse, undefined);
  tx.setResponseRoute({ transport, to: { address: '203.0.113.9', port: 1 } }); // no effect: the final's route is fixed
  receive();
  assert.deepEqual(transport.startLines(), ['SIP/2.0 100 Trying', 'SIP/2.0 401 Unauthorized', 'SIP/2.0 401 Unauthorized']);
  assert.deepEqual(transport.sent[2]!.to, transport.sent[1]!.to);
  assert.equal(transport.sent[2]!.text, transport.sent[1]!.text);
});

test('over TCP Timer J is zero: the transaction ends with its final response', () => {
  const { tx, req, transport } = setup('tcp');
  tx.respond(createResponse(req, 200));
  assert.equal(tx.state, 'terminated');
  assert.equal(transport.sent.length, 1);
});

test('a transport failure while sending a response is reported and terminates the transaction (§17.2.4)', async () => {
  const { tx, req, transport } = setup();
  const errors: string[] = [];
  tx.user = { onTransportError: (_t, e) => errors.push(e.message) };
  transport.failing = true;
  tx.respond(createResponse(req, 100));
  await flush();
  assert.deepEqual(errors, ['network down']);
  assert.equal(tx.state, 'terminated');
});

test('an illegal state transition throws (the guard of the machine)', () => {
  const { tx } = setup();
  tx.dispose();
  assert.throws(
    // @ts-expect-error reaching into the guarded move on purpose
    () => tx.move({ trying: [], proceeding: [], completed: [], terminated: [] }, 'trying'),
    /invalid state transition from terminated to trying/,
  );
});
