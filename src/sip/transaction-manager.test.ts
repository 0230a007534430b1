// The transaction layer: matching (RFC 3261 §17.1.3, §17.2.3), Via stamping (§18.2.1, RFC 3581),
// response routing overrides (TS 33.203 §7.1 port_pc → port_us), malformed input, and an IMS
// registration over the in-memory network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';
import { TransactionLayer, type MalformedMessage, type ServerTransaction } from './transaction-manager.ts';
import { createCancel, createRequest, createResponse, newBranch } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import { parseViaOrThrow } from './via.ts';
import { SipError } from './errors.ts';
import { MemoryNetwork } from './memory-transport.ts';
import { SipRequest, type SipResponse } from './message.ts';
import type { ReceiveContext } from './transport.ts';
import { bytes, context, crlf, request, sentMessage, spyTransport } from './_test-helpers.ts';

function serverSetup(options: { stampVia?: boolean } = {}) {
  const clock = new ManualClock();
  const transport = spyTransport(clock);
  const txs: ServerTransaction[] = [];
  const malformed: MalformedMessage[] = [];
  const layer = new TransactionLayer({
    clock,
    ...options,
    user: { onRequest: (tx) => txs.push(tx), onMalformed: (m) => malformed.push(m) },
  });
  return { clock, transport, layer, txs, malformed };
}

test('responses match client transactions by top Via branch and CSeq method: a CANCEL shares the INVITE branch but not its transaction', () => {
  const clock = new ManualClock();
  const transport = spyTransport(clock);
  const layer = new TransactionLayer({ clock, user: { onRequest: () => {} } });
  const invite = request('INVITE');
  const got: string[] = [];
  const route = { transport, to: { address: '198.51.100.1', port: 5060 } };
  layer.sendRequest(invite, route, { onResponse: (r) => got.push(`invite:${r.status}`) });
  layer.receive(serializeMessage(createResponse(invite, 180, undefined, [], { toTag: 't' })), context(transport));
  const cancel = createCancel(invite);
  layer.sendRequest(cancel, route, { onResponse: (r) => got.push(`cancel:${r.status}`) });
  layer.receive(serializeMessage(createResponse(cancel, 200, undefined, [], { toTag: 't' })), context(transport));
  layer.receive(serializeMessage(createResponse(invite, 487, undefined, [], { toTag: 't' })), context(transport));
  assert.deepEqual(got, ['invite:180', 'cancel:200', 'invite:487']);
});

test('server transactions match on branch, sent-by and method; CANCEL finds its INVITE (§9.2, §17.2.3)', () => {
  const { transport, layer, txs } = serverSetup();
  const invite = request('INVITE', { branch: 'z9hG4bKsame' });
  layer.receive(serializeMessage(invite), context(transport));
  const other = request('INVITE', { branch: 'z9hG4bKsame', host: '192.0.2.99' });
  layer.receive(serializeMessage(other), context(transport));
  assert.equal(txs.length, 2, 'same branch, different sent-by: a different transaction');
  const cancel = createCancel(invite);
  layer.receive(serializeMessage(cancel), context(transport));
  assert.equal(txs.length, 3);
  assert.equal(layer.findCancelTarget(txs[2]!.request), txs[0]);
  assert.equal(layer.findServerTransaction(txs[0]!.request), txs[0]);
  layer.close();
  assert.equal(layer.serverTransactionCount, 0);
});

test('the top Via of a received request gets received and rport (RFC 3581 §4), and the response goes there', () => {
  const { transport, layer, txs } = serverSetup();
  const req = request('OPTIONS');
  req.headers.set('Via', `SIP/2.0/UDP 10.1.1.1:5060;rport;branch=${newBranch()}`);
  layer.receive(serializeMessage(req), context(transport, { address: '203.0.113.5', port: 40123 }));
  const via = parseViaOrThrow(txs[0]!.request.headers.get('Via')!);
  assert.equal(via.params.get('received'), '203.0.113.5');
  assert.equal(via.params.get('rport'), '40123');
  txs[0]!.respond(createResponse(txs[0]!.request, 200));
  assert.deepEqual(transport.sent[0]!.to, { address: '203.0.113.5', port: 40123 });
  assert.equal(parseViaOrThrow(sentMessage(transport, 0).headers.get('Via')!).params.get('rport'), '40123');
});

test('stampVia: false leaves the Via as it came', () => {
  const { transport, layer, txs } = serverSetup({ stampVia: false });
  const req = request('OPTIONS');
  layer.receive(serializeMessage(req), context(transport, { address: '203.0.113.5', port: 40123 }));
  assert.equal(txs[0]!.request.headers.get('Via'), req.headers.get('Via'));
});

test('a transaction can send its UDP responses elsewhere and through another transport (P-CSCF: port_pc → port_us)', () => {
  const clock = new ManualClock();
  const portPs = spyTransport(clock, 'udp', { address: '10.0.0.1', port: 5064 });
  const portPc = spyTransport(clock, 'udp', { address: '10.0.0.1', port: 5063 });
  let tx: ServerTransaction | undefined;
  const layer = new TransactionLayer({ clock, user: { onRequest: (t) => (tx = t) } });
  const req = request('REGISTER', { host: '10.0.0.2', port: 6102 });
  layer.receive(serializeMessage(req), context(portPs, { address: '10.0.0.2', port: 6101 }, { via: 'sa-set-1' }));
  assert.equal(tx!.context.via, 'sa-set-1');
  tx!.setResponseRoute({ transport: portPc, to: { address: '10.0.0.2', port: 6102 } });
  tx!.respond(createResponse(req, 200));
  layer.receive(serializeMessage(req), context(portPs, { address: '10.0.0.2', port: 6101 }));
  assert.equal(portPs.sent.length, 0);
  assert.deepEqual(
    portPc.sent.map((s) => [s.to.port, s.text.slice(0, 14)]),
    [
      [6102, 'SIP/2.0 200 OK'],
      [6102, 'SIP/2.0 200 OK'],
    ],
  );
});

test('a layer-wide response policy applies to every server transaction unless one overrides it', () => {
  const clock = new ManualClock();
  const a = spyTransport(clock);
  const b = spyTransport(clock);
  const txs: ServerTransaction[] = [];
  const layer = new TransactionLayer({
    clock,
    responseRoute: () => ({ transport: b, to: { address: '192.0.2.77', port: 7777 } }),
    user: { onRequest: (t) => txs.push(t) },
  });
  layer.receive(serializeMessage(request('OPTIONS')), context(a));
  txs[0]!.respond(createResponse(txs[0]!.request, 200));
  assert.equal(a.sent.length, 0);
  assert.deepEqual(b.sent[0]!.to, { address: '192.0.2.77', port: 7777 });
});

test('a request missing CSeq is answered 400 with the reason, and reported', () => {
  const { transport, layer, malformed, txs } = serverSetup();
  const req = request('OPTIONS');
  req.headers.remove('CSeq');
  layer.receive(serializeMessage(req), context(transport));
  assert.equal(txs.length, 0);
  assert.equal(malformed[0]!.error.code, 'SIP_MISSING_HEADER');
  assert.equal(malformed[0]!.answered, true);
  assert.match(transport.startLines()[0]!, /^SIP\/2\.0 400 Bad Request \(missing CSeq\)$/);
});

test('a SIP/7.0 request is answered 505; garbage and an unroutable request are only reported', () => {
  const { transport, layer, malformed } = serverSetup();
  layer.receive(
    crlf(
      'OPTIONS sip:a@b SIP/7.0\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 OPTIONS\n\n',
    ),
    context(transport),
  );
  layer.receive(bytes('\x00\x01garbage'), context(transport));
  layer.receive(crlf('OPTIONS sip:a@b SIP/2.0\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 OPTIONS\n\n'), context(transport));
  assert.deepEqual(
    malformed.map((m) => [m.error.code, m.answered, m.length > 0]),
    [
      ['SIP_BAD_VERSION', true, true],
      ['SIP_BAD_START_LINE', false, true],
      ['SIP_MISSING_HEADER', false, true],
    ],
  );
  assert.deepEqual(transport.startLines(), ['SIP/2.0 505 Version Not Supported']);
});

test('CRLF keep-alives are ignored', () => {
  const { transport, layer, malformed, txs } = serverSetup();
  layer.receive(bytes('\r\n\r\n'), context(transport));
  assert.equal(malformed.length + txs.length, 0);
});

test('sendRequest refuses ACK, a branch without the magic cookie and a duplicate transaction', () => {
  const clock = new ManualClock();
  const route = { transport: spyTransport(clock), to: { address: '192.0.2.1', port: 5060 } };
  const layer = new TransactionLayer({ clock, user: { onRequest: () => {} } });
  const code = (c: string) => (e: unknown) => e instanceof SipError && e.code === c;
  assert.throws(() => layer.sendRequest(request('ACK'), route, { onResponse: () => {} }), code('SIP_INVALID_ARGUMENT'));
  assert.throws(
    () => layer.sendRequest(request('OPTIONS', { branch: 'old2543' }), route, { onResponse: () => {} }),
    code('SIP_INVALID_ARGUMENT'),
  );
  const r = request('OPTIONS');
  layer.sendRequest(r, route, { onResponse: () => {} });
  assert.throws(() => layer.sendRequest(r, route, { onResponse: () => {} }), code('SIP_DUPLICATE_TRANSACTION'));
});

test('an IMS registration over the memory network: 401 unprotected, then the protected REGISTER over the SA ports with the 200 from port_pc to port_us', async () => {
  const net = new MemoryNetwork();
  const pcscfRequests: { tx: ServerTransaction; r: SipRequest; ctx: ReceiveContext }[] = [];
  const pcscf = new TransactionLayer({ user: { onRequest: (tx, r, ctx) => pcscfRequests.push({ tx, r, ctx }) } });
  const ue = new TransactionLayer({ user: { onRequest: () => {} } });
  net.bind({ address: '10.0.0.1', port: 5060, onReceive: (b, c) => pcscf.receive(b, c) });
  const portPs = net.bind({ address: '10.0.0.1', port: 5064, via: 'sa-set-A', onReceive: (b, c) => pcscf.receive(b, c) });
  const portPc = net.bind({ address: '10.0.0.1', port: 5063, via: 'sa-set-A', onReceive: (b, c) => pcscf.receive(b, c) });
  const ue5060 = net.bind({ address: '10.0.0.2', port: 5060, onReceive: (b, c) => ue.receive(b, c) });
  const portUc = net.bind({ address: '10.0.0.2', port: 6101, via: 'sa-set-A', onReceive: (b, c) => ue.receive(b, c) });
  net.bind({ address: '10.0.0.2', port: 6102, via: 'sa-set-A', onReceive: (b, c) => ue.receive(b, c) });

  const register = (cseq: number, port: number) =>
    createRequest({
      method: 'REGISTER',
      uri: 'sip:ims.example',
      via: `SIP/2.0/UDP 10.0.0.2:${port};branch=${newBranch()};rport`,
      from: '<sip:ue@ims.example>;tag=ue1',
      to: '<sip:ue@ims.example>',
      callId: 'reg-1',
      cseq,
      headers: [
        ['Contact', `<sip:ue@10.0.0.2:${port}>;expires=600000`],
        ['Require', 'sec-agree'],
        ['Proxy-Require', 'sec-agree'],
      ],
    });
  const got: { res: SipResponse; ctx: ReceiveContext }[] = [];
  const ueUser = { onResponse: (res: SipResponse, ctx: ReceiveContext) => got.push({ res, ctx }) };

  ue.sendRequest(register(1, 5060), { transport: ue5060, to: { address: '10.0.0.1', port: 5060 } }, ueUser);
  await net.settle();
  const first = pcscfRequests[0]!;
  assert.equal(first.ctx.via, undefined, 'unprotected');
  first.tx.respond(
    createResponse(first.r, 401, undefined, [['Security-Server', 'ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=5063;port-s=5064']]),
  );
  await net.settle();
  assert.deepEqual([got[0]!.res.status, got[0]!.ctx.local.port], [401, 5060]);

  ue.sendRequest(register(2, 6102), { transport: portUc, to: { address: '10.0.0.1', port: 5064 } }, ueUser);
  await net.settle();
  const second = pcscfRequests[1]!;
  assert.deepEqual([second.ctx.via, second.ctx.remote.port, second.ctx.local.port], ['sa-set-A', 6101, 5064]);
  second.tx.setResponseRoute({ transport: portPc, to: { address: '10.0.0.2', port: 6102 } });
  second.tx.respond(createResponse(second.r, 200));
  await net.settle();
  assert.deepEqual([got[1]!.res.status, got[1]!.ctx.via, got[1]!.ctx.remote.port, got[1]!.ctx.local.port], [200, 'sa-set-A', 5063, 6102]);
  pcscf.close();
  ue.close();
});
