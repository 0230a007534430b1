// SIP over real TCP sockets on loopback (port 0): connection reuse, responses on the request's
// connection, framing of split writes, and a malformed stream reported then closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { openTcpTransport } from './tcp-transport.ts';
import { TransactionLayer } from './transaction-manager.ts';
import { createResponse, createRequest, newBranch } from './builders.ts';
import { formatHostPort } from './uri.ts';
import type { SipResponse } from './message.ts';
import type { MalformedInput } from './transport.ts';

async function exchange(address: string): Promise<void> {
  const server = new TransactionLayer({ user: { onRequest: (tx, r) => tx.respond(createResponse(r, 200)) } });
  const client = new TransactionLayer({ user: { onRequest: () => {} } });
  const st = await openTcpTransport({ address, onReceive: (b, c) => server.receive(b, c) });
  const ct = await openTcpTransport({ address, onReceive: (b, c) => client.receive(b, c) });
  try {
    const got: SipResponse[] = [];
    for (let i = 1; i <= 2; i++) {
      const req = createRequest({
        method: 'OPTIONS',
        uri: `sip:${formatHostPort(address)}`,
        via: `SIP/2.0/TCP ${formatHostPort(address, ct.local.port)};branch=${newBranch()}`,
        from: '<sip:ue@ims.example>;tag=1',
        to: '<sip:ue@ims.example>',
        callId: 'tcp-test',
        cseq: i,
      });
      await new Promise<void>((resolve) =>
        client.sendRequest(
          req,
          { transport: ct, to: st.local },
          {
            onResponse: (r) => {
              got.push(r);
              resolve();
            },
          },
        ),
      );
    }
    assert.deepEqual(
      got.map((r) => r.status),
      [200, 200],
    );
    assert.equal(ct.connections().length, 1, 'the outgoing connection is reused');
    assert.equal(st.connections().length, 1, 'responses went back on the incoming connection');
    assert.equal(ct.connections()[0]!.outgoing, true);
  } finally {
    client.close();
    server.close();
    await ct.close();
    await st.close();
  }
}

test('TCP on 127.0.0.1 with port 0: two transactions over one reused connection', () => exchange('127.0.0.1'));

test('TCP on ::1 with port 0', async (t) => {
  try {
    const probe = await openTcpTransport({ address: '::1', onReceive: () => {} });
    await probe.close();
  } catch {
    t.skip('IPv6 loopback not available');
    return;
  }
  await exchange('::1');
});

test('a ping is answered, a message split across writes is framed, and a stream without Content-Length is reported and closed', async () => {
  const received: string[] = [];
  const bad: MalformedInput[] = [];
  let closed!: () => void;
  const closedP = new Promise<void>((r) => (closed = r));
  const st = await openTcpTransport({
    address: '127.0.0.1',
    onReceive: (b) => received.push(Buffer.from(b).toString()),
    onMalformed: (m) => bad.push(m),
  });
  try {
    const sock = connect({ host: '127.0.0.1', port: st.local.port });
    let fromServer = '';
    sock.on('data', (d) => (fromServer += d.toString()));
    sock.on('close', () => closed());
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nContent-Len');
    await new Promise((r) => setTimeout(r, 5));
    sock.write('gth: 2\r\n\r\nok');
    sock.write('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n');
    await closedP;
    assert.deepEqual(received, ['OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nok']);
    assert.equal(bad[0]!.code, 'SIP_MISSING_HEADER');
    assert.ok(bad[0]!.length > 0);
    assert.equal(fromServer, '\r\n', 'the CRLFCRLF ping got a CRLF pong (RFC 5626 §3.5.1)');
  } finally {
    await st.close();
  }
});
