// SIP over real UDP sockets on loopback (port 0): a REGISTER/200 exchange through two transaction layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { literalFirstLookup, openUdpTransport } from './udp-transport.ts';
import { TransactionLayer } from './transaction-manager.ts';
import { createResponse, createRequest, newBranch } from './builders.ts';
import { formatHostPort } from './uri.ts';
import type { SipResponse } from './message.ts';
import type { ReceiveContext } from './transport.ts';

async function exchange(address: string): Promise<void> {
  const server = new TransactionLayer({ user: { onRequest: (tx, r) => tx.respond(createResponse(r, 200)) } });
  const got: { res: SipResponse; ctx: ReceiveContext }[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const client = new TransactionLayer({ user: { onRequest: () => {} } });
  const st = await openUdpTransport({ address, port: 0, onReceive: (b, c) => server.receive(b, c) });
  const ct = await openUdpTransport({ address, onReceive: (b, c) => client.receive(b, c) });
  try {
    assert.ok(st.local.port > 0 && ct.local.port > 0, 'the bound ports are reported');
    const req = createRequest({
      method: 'REGISTER',
      uri: `sip:${formatHostPort(address)}`,
      via: `SIP/2.0/UDP ${formatHostPort(address, ct.local.port)};branch=${newBranch()};rport`,
      from: '<sip:ue@ims.example>;tag=1',
      to: '<sip:ue@ims.example>',
      callId: 'udp-test',
      cseq: 1,
    });
    client.sendRequest(
      req,
      { transport: ct, to: st.local },
      {
        onResponse: (res, ctx) => {
          got.push({ res, ctx });
          done();
        },
      },
    );
    await finished;
    assert.equal(got[0]!.res.status, 200);
    assert.deepEqual(got[0]!.ctx.remote, st.local);
    assert.match(got[0]!.res.headers.get('Via')!, new RegExp(`;received=[^;]+;rport=${ct.local.port}$`));
  } finally {
    client.close();
    server.close();
    await st.close();
    await ct.close();
  }
}

test('UDP on 127.0.0.1 with port 0: request and response over real sockets', () => exchange('127.0.0.1'));

test('UDP on ::1 with port 0', async (t) => {
  try {
    const probe = await openUdpTransport({ address: '::1', onReceive: () => {} });
    await probe.close();
  } catch {
    t.skip('IPv6 loopback not available');
    return;
  }
  await exchange('::1');
});

test('send() resolves an IP literal at once and a name through the resolver', async () => {
  const seen: string[] = [];
  await new Promise<void>((resolve) =>
    literalFirstLookup('192.0.2.7', 4, (err, address, family) => {
      seen.push(`${err}:${address}:${family}`);
      resolve();
    }),
  );
  assert.deepEqual(seen, ['null:192.0.2.7:4']);
  const sync: string[] = [];
  literalFirstLookup('2001:db8::1', 6, (_e, a, f) => sync.push(`${a}:${f}`));
  assert.deepEqual(sync, ['2001:db8::1:6'], 'a literal is answered synchronously (no resolver, no next tick)');
  const named = await new Promise<string>((resolve) => literalFirstLookup('localhost', 4, (e, a) => resolve(e ? 'error' : a)));
  assert.equal(named, '127.0.0.1');
  const got: string[] = [];
  const client = await openUdpTransport({ address: '127.0.0.1', onReceive: () => {} });
  const receiver = await openUdpTransport({ address: '127.0.0.1', onReceive: (b) => got.push(Buffer.from(b).toString()) });
  try {
    await client.send(Buffer.from('OPTIONS by name'), { address: 'localhost', port: receiver.local.port });
    await client.send(Buffer.from('OPTIONS by literal'), { address: '127.0.0.1', port: receiver.local.port });
    for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got.sort(), ['OPTIONS by literal', 'OPTIONS by name']);
  } finally {
    await client.close();
    await receiver.close();
  }
});

test('post: no Promise per datagram; each failure reaches the sink of its own send, in any order of good and bad sends', async () => {
  const got: string[] = [];
  const rx = await openUdpTransport({ address: '127.0.0.1', onReceive: (b) => got.push(Buffer.from(b).toString()) });
  const tx = await openUdpTransport({ address: '127.0.0.1', onReceive: () => {} });
  try {
    const failed: [number, Error][] = [];
    const sink = (n: number) => ({ sendFailed: (e: Error) => failed.push([n, e]) });
    assert.equal(tx.post!(Buffer.from('a'), rx.local, sink(0)), undefined);
    tx.post!(Buffer.from('x'), { address: '::1', port: rx.local.port }, sink(1)); // IPv6 on an IPv4 socket: fails in the kernel
    tx.post!(Buffer.from('b'), rx.local, sink(2));
    tx.post!(Buffer.from('y'), { address: '127.0.0.1', port: 0 }, sink(3)); // refused by node:dgram before it is queued
    tx.post!(Buffer.from('c'), rx.local, sink(4));
    for (let i = 0; i < 100 && (got.length < 3 || failed.length < 2); i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got.sort(), ['a', 'b', 'c']);
    assert.deepEqual(failed.map(([n]) => n).sort(), [1, 3]);
    for (const [, e] of failed) assert.equal((e as { code?: string }).code, 'SIP_TRANSPORT_FAILED');
    await tx.close();
    const closed: Error[] = [];
    tx.post!(Buffer.from('z'), rx.local, { sendFailed: (e) => closed.push(e) });
    assert.equal((closed[0] as { code?: string } | undefined)?.code, 'SIP_TRANSPORT_CLOSED');
  } finally {
    await tx.close();
    await rx.close();
  }
});
