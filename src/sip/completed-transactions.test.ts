// Non-INVITE transactions in Completed as records of the layer's completed table (RFC 3261 §17.2.2
// Timer J, §17.1.2.2 Timer K), seen from the wire and from the TU, in virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';
import { TransactionLayer, type ServerTransaction } from './transaction-manager.ts';
import { createResponse } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { context, flush, request, spyTransport } from './_test-helpers.ts';

function server(opts: { maxCompleted?: number } = {}) {
  const clock = new ManualClock();
  const transport = spyTransport(clock);
  const txs: ServerTransaction[] = [];
  const layer = new TransactionLayer({ clock, ...opts, user: { onRequest: (tx) => txs.push(tx) } });
  const ctx = context(transport);
  const receive = (r: SipRequest) => layer.receive(serializeMessage(r), ctx);
  return { clock, transport, layer, txs, receive };
}

test('each retransmission of a request after its final response gets the same bytes once, the TU never hears of it', () => {
  const { clock, transport, layer, txs, receive } = server();
  const req = request('REGISTER');
  receive(req);
  txs[0]!.respond(createResponse(req, 401, undefined, [['WWW-Authenticate', 'Digest realm="r", nonce="bm9uY2U="']], { toTag: 'x' }));
  assert.equal(transport.sent.length, 1);
  for (let i = 1; i <= 3; i++) {
    clock.advance(500 * i);
    receive(req);
    assert.equal(transport.sent.length, 1 + i, 'one resend per retransmission');
  }
  assert.equal(txs.length, 1, 'no new transaction for a retransmission');
  const first = transport.sent[0]!;
  for (const s of transport.sent.slice(1)) {
    assert.equal(s.text, first.text, 'byte-identical');
    assert.deepEqual(s.to, first.to, 'to the same destination');
  }
  assert.equal(layer.serverTransactionCount, 1, 'counted while in Completed');
  assert.equal(txs[0]!.state, 'completed');
  assert.deepEqual(txs[0]!.activeTimers, ['J']);
});

test('a resent final response keeps its bytes when later responses of other transactions are written after it', () => {
  const { transport, txs, receive } = server();
  const a = request('REGISTER');
  receive(a);
  txs[0]!.respond(createResponse(a, 200, undefined, [['Contact', '<sip:a@192.0.2.1>;expires=600']]));
  for (let i = 0; i < 300; i++) {
    const r = request('OPTIONS');
    receive(r);
    txs.at(-1)!.respond(createResponse(r, 200, undefined, [['X-Filler', 'f'.repeat(i * 7)]]));
  }
  receive(a);
  assert.equal(transport.sent.at(-1)!.text, transport.sent[0]!.text);
});

test('Timer J: one millisecond before 64·T1 the request is still absorbed; at 64·T1 it is a new transaction', () => {
  const { clock, transport, txs, receive, layer } = server();
  const req = request('MESSAGE');
  receive(req);
  clock.advance(30);
  txs[0]!.respond(createResponse(req, 200));
  clock.advance(32_000 - 1);
  receive(req);
  assert.equal(txs.length, 1);
  assert.equal(transport.sent.length, 2);
  assert.equal(txs[0]!.state, 'completed');
  clock.advance(1);
  assert.equal(txs[0]!.state, 'terminated', 'reads Terminated from Timer J on, though nothing refers to it');
  assert.deepEqual(txs[0]!.activeTimers, []);
  assert.equal(layer.serverTransactionCount, 0);
  receive(req);
  assert.equal(txs.length, 2, 'a new transaction for the TU');
  assert.equal(transport.sent.length, 2, 'and no resend of the old response');
  assert.equal(txs[1]!.state, 'trying');
});

test('a TU that listens for the end is told at Timer J, as before the completed table', () => {
  const { clock, txs, receive } = server();
  const req = request('REGISTER');
  receive(req);
  const events: string[] = [];
  txs[0]!.user = {
    onStateChange: (_t, from, to) => events.push(`${from}->${to}@${clock.now()}`),
    onTerminated: () => events.push(`terminated@${clock.now()}`),
  };
  txs[0]!.respond(createResponse(req, 200));
  clock.advance(40_000);
  assert.deepEqual(events, ['trying->completed@0', 'completed->terminated@32000', 'terminated@32000']);
  assert.equal(clock.pending, 0, 'no clock timer left');
});

test('a failed resend of the final response ends the record and is reported to a listening TU (§17.2.4)', async () => {
  const { transport, txs, receive, layer } = server();
  const req = request('REGISTER');
  receive(req);
  const events: string[] = [];
  txs[0]!.user = { onTransportError: (_t, e) => events.push(e.message), onTerminated: () => events.push('terminated') };
  txs[0]!.respond(createResponse(req, 200));
  transport.failing = true;
  receive(req);
  await flush();
  assert.deepEqual(events, ['network down', 'terminated']);
  assert.equal(txs[0]!.state, 'terminated');
  assert.equal(layer.serverTransactionCount, 0);
  transport.failing = false;
  receive(req);
  assert.equal(txs.length, 2, 'the record is gone: a new transaction');
});

test('at maxCompleted the oldest completed transaction ends early (counted): its retransmission is a new request', () => {
  const { transport, txs, receive, layer } = server({ maxCompleted: 2 });
  const reqs = [request('REGISTER'), request('REGISTER'), request('REGISTER')];
  for (const r of reqs) {
    receive(r);
    txs.at(-1)!.respond(createResponse(r, 200));
  }
  assert.equal(layer.completedEvictions, 1);
  assert.equal(layer.serverTransactionCount, 2);
  assert.equal(txs[0]!.state, 'terminated');
  receive(reqs[2]!);
  receive(reqs[1]!);
  assert.equal(transport.sent.length, 5, 'the two kept ones still resend');
  receive(reqs[0]!);
  assert.equal(txs.length, 4, 'the evicted one comes back as new');
});

test('over TCP a completed server transaction is not kept (Timer J is zero)', () => {
  const clock = new ManualClock();
  const transport = spyTransport(clock, 'tcp');
  const txs: ServerTransaction[] = [];
  const layer = new TransactionLayer({ clock, user: { onRequest: (tx) => txs.push(tx) } });
  const req = request('REGISTER', { transport: 'TCP' });
  layer.receive(serializeMessage(req), context(transport));
  txs[0]!.respond(createResponse(req, 200));
  assert.equal(layer.serverTransactionCount, 0);
  layer.receive(serializeMessage(req), context(transport));
  assert.equal(txs.length, 2);
});

function client(user: { onTerminated?: () => void } = {}) {
  const clock = new ManualClock();
  const transport = spyTransport(clock);
  const stray: SipResponse[] = [];
  const layer = new TransactionLayer({
    clock,
    user: { onRequest: () => assert.fail('no requests'), onStrayResponse: (r) => stray.push(r) },
  });
  const responses: number[] = [];
  const req = request('REGISTER');
  const tx = layer.sendRequest(
    req,
    { transport, to: { address: '198.51.100.1', port: 5060 } },
    { onResponse: (r) => responses.push(r.status), ...user },
  );
  const final = serializeMessage(createResponse(req, 200, undefined, [], { toTag: 't' }));
  const deliver = () => layer.receive(final, context(transport, { address: '198.51.100.1', port: 5060 }));
  return { clock, transport, layer, tx, responses, stray, deliver };
}

test('client: a retransmitted final response is absorbed until Timer K (T4), then it is a stray response', () => {
  const { clock, transport, layer, tx, responses, stray, deliver } = client();
  deliver();
  assert.deepEqual(responses, [200]);
  assert.equal(tx.state, 'completed');
  assert.equal(layer.clientTransactionCount, 1);
  clock.advance(4999);
  deliver();
  deliver();
  assert.deepEqual(responses, [200], 'the TU saw the final once');
  assert.deepEqual(stray, [], 'absorbed, not passed up as stray');
  assert.equal(transport.sent.length, 1, 'no request retransmission after the final');
  clock.advance(1);
  assert.equal(tx.state, 'terminated');
  assert.equal(layer.clientTransactionCount, 0);
  deliver();
  assert.equal(stray.length, 1, '§18.1.2: after Timer K a response matching nothing goes to the core');
  assert.deepEqual(responses, [200]);
});

test('client: a listening TU is told of the end at Timer K; close() ends completed transactions too', () => {
  const ended: number[] = [];
  const a = client({ onTerminated: () => ended.push(a.clock.now()) });
  a.clock.advance(10);
  a.deliver();
  a.clock.advance(5000);
  assert.deepEqual(ended, [5010]);
  const closed: string[] = [];
  const b = client({ onTerminated: () => closed.push('closed') });
  b.deliver();
  b.layer.close();
  assert.deepEqual(closed, ['closed']);
  assert.equal(b.tx.state, 'terminated');
  assert.equal(b.layer.clientTransactionCount, 0);
  assert.equal(b.clock.pending, 0);
});

test('client: a branch still in Completed cannot start a second transaction', () => {
  const { layer, tx, deliver, transport } = client();
  deliver();
  const again = request('REGISTER', { branch: tx.id.split('\n')[0]! });
  assert.throws(
    () => layer.sendRequest(again, { transport, to: { address: '198.51.100.1', port: 5060 } }, { onResponse: () => {} }),
    /SIP_DUPLICATE_TRANSACTION|exists/,
  );
});

test('tellCompletedEnd false: a listening TU hears of ends before completion only; a completed one still reads Terminated at Timer J', () => {
  const clock = new ManualClock();
  const transport = spyTransport(clock);
  const txs: ServerTransaction[] = [];
  const layer = new TransactionLayer({ clock, tellCompletedEnd: false, user: { onRequest: (tx) => txs.push(tx) } });
  const ends: string[] = [];
  const ctx = context(transport);
  const done = request('REGISTER');
  layer.receive(serializeMessage(done), ctx);
  txs[0]!.user = { onTerminated: () => ends.push('completed one') };
  txs[0]!.respond(createResponse(done, 200));
  layer.receive(serializeMessage(done), ctx);
  assert.equal(transport.sent.length, 2, 'retransmissions still absorbed');
  clock.advance(32_000);
  assert.equal(txs[0]!.state, 'terminated');
  assert.equal(ends.length, 0, 'not told of Timer J');
  const timedOut = layer.sendRequest(
    request('OPTIONS'),
    { transport, to: { address: '198.51.100.1', port: 5060 } },
    { onResponse: () => {}, onTerminated: () => ends.push('timed out') },
  );
  clock.advance(32_000);
  assert.equal(timedOut.state, 'terminated');
  assert.deepEqual(ends, ['timed out'], 'an end before completion is told');
  assert.equal(clock.pending, 0);
});
