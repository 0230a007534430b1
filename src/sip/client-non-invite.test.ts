// The non-INVITE client transaction (RFC 3261 §17.1.2) in virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';
import { TransactionLayer, type ClientTransaction } from './transaction-manager.ts';
import { createResponse } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import type { SipResponse } from './message.ts';
import { context, flush, request, spyTransport } from './_test-helpers.ts';

function setup(protocol: 'udp' | 'tcp' = 'udp') {
  const clock = new ManualClock();
  const transport = spyTransport(clock, protocol);
  const layer = new TransactionLayer({ clock, user: { onRequest: () => assert.fail('no requests expected') } });
  const events: string[] = [];
  const responses: SipResponse[] = [];
  const req = request('REGISTER', { transport: protocol.toUpperCase() });
  const tx = layer.sendRequest(
    req,
    { transport, to: { address: '198.51.100.1', port: 5060 } },
    {
      onResponse: (r) => responses.push(r),
      onTimeout: () => events.push(`timeout@${clock.now()}`),
      onTransportError: (_t, e) => events.push(`transport-error:${e.message}`),
      onTerminated: () => events.push(`terminated@${clock.now()}`),
    },
  );
  const deliver = (status: number) =>
    layer.receive(
      serializeMessage(createResponse(req, status, undefined, [], { toTag: 't' })),
      context(transport, { address: '198.51.100.1', port: 5060 }),
    );
  return { clock, transport, layer, events, responses, tx: tx as ClientTransaction, deliver };
}

test('a UDP non-INVITE client retransmits with Timer E at 500 ms, 1 s, 2 s, 4 s, 4 s… (capped at T2) and times out on Timer F at 64·T1', () => {
  const { clock, transport, events, layer, tx } = setup();
  assert.equal(tx.state, 'trying');
  clock.advance(64 * 500);
  assert.deepEqual(
    transport.sent.map((s) => s.at),
    [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500],
  );
  assert.deepEqual(events, ['timeout@32000', 'terminated@32000']);
  assert.equal(tx.state, 'terminated');
  assert.equal(layer.clientTransactionCount, 0);
  assert.equal(clock.pending, 0);
});

test('a provisional response moves Trying to Proceeding, after which Timer E fires every T2', () => {
  const { clock, transport, responses, deliver, tx } = setup();
  clock.advance(600);
  deliver(100);
  assert.equal(tx.state, 'proceeding');
  assert.equal(responses.length, 1);
  clock.advance(10_000 - 600);
  assert.deepEqual(
    transport.sent.map((s) => s.at),
    [0, 500, 1500, 5500, 9500],
  );
});

test('Timer F also ends a transaction stuck in Proceeding', () => {
  const { clock, deliver, events } = setup();
  deliver(183);
  clock.advance(32_000);
  assert.deepEqual(events, ['timeout@32000', 'terminated@32000']);
});

test('a final response completes the transaction; retransmitted finals are absorbed until Timer K (T4)', () => {
  const { clock, transport, responses, deliver, tx, events } = setup();
  clock.advance(100);
  deliver(200);
  assert.equal(tx.state, 'completed');
  deliver(200);
  deliver(200);
  assert.deepEqual(
    responses.map((r) => r.status),
    [200],
  );
  assert.deepEqual(tx.activeTimers, ['K']);
  assert.throws(() => tx.request, /released/, 'Completed keeps nothing but the key');
  assert.throws(() => (tx as { route: unknown }).route, /released/);
  clock.advance(4999);
  assert.equal(tx.state, 'completed');
  clock.advance(1);
  assert.equal(tx.state, 'terminated');
  assert.deepEqual(events, ['terminated@5100']);
  assert.equal(transport.sent.length, 1, 'no retransmission after the final response');
});

test('over TCP a non-INVITE client never retransmits and Timer K is zero', () => {
  const { clock, transport, deliver, tx } = setup('tcp');
  clock.advance(20_000);
  assert.equal(transport.sent.length, 1);
  deliver(200);
  assert.equal(tx.state, 'terminated');
});

test('a transport failure is reported to the TU and terminates the transaction (§17.1.4)', async () => {
  const clock = new ManualClock();
  const transport = spyTransport(clock);
  transport.failing = true;
  const layer = new TransactionLayer({ clock, user: { onRequest: () => {} } });
  const seen: string[] = [];
  const tx = layer.sendRequest(
    request('OPTIONS'),
    { transport, to: { address: '198.51.100.1', port: 5060 } },
    {
      onResponse: () => {},
      onTransportError: (_t, e) => seen.push(e.message),
    },
  );
  await flush();
  assert.deepEqual(seen, ['network down']);
  assert.equal(tx.state, 'terminated');
  assert.equal(clock.pending, 0);
});
