// The in-memory network: delivery with context, loss injection, closed and unreachable endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryNetwork } from './memory-transport.ts';
import { SipError } from './errors.ts';
import type { ReceiveContext } from './transport.ts';
import { bytes } from './_test-helpers.ts';

test('delivers bytes with the sender as remote, the receiver as local and the receiver’s via tag', async () => {
  const net = new MemoryNetwork();
  const got: [string, ReceiveContext][] = [];
  const a = net.bind({ address: '10.0.0.1', onReceive: () => {} });
  const b = net.bind({ address: '10.0.0.2', port: 5060, via: 'sa', onReceive: (x, c) => got.push([Buffer.from(x).toString(), c]) });
  assert.equal(a.local.port, 40000, 'port 0 picks an ephemeral port');
  const sent = a.send(bytes('hi'), { address: '10.0.0.2', port: 5060 });
  assert.equal(got.length, 0, 'delivery is asynchronous');
  await sent;
  await net.settle();
  assert.equal(got[0]![0], 'hi');
  assert.deepEqual([got[0]![1].remote, got[0]![1].local, got[0]![1].via, got[0]![1].transport], [a.local, b.local, 'sa', b]);
});

test('the filter drops packets; udp to nobody is lost silently, tcp to nobody is refused', async () => {
  const net = new MemoryNetwork();
  let n = 0;
  const a = net.bind({ address: '10.0.0.1', onReceive: () => {} });
  net.bind({ address: '10.0.0.2', port: 5060, onReceive: () => n++ });
  net.filter = () => false;
  await a.send(bytes('x'), { address: '10.0.0.2', port: 5060 });
  await a.send(bytes('x'), { address: '10.0.0.9', port: 5060 });
  await net.settle();
  assert.equal(n, 0);
  assert.deepEqual(
    net.log.map((p) => p.delivered),
    [false, false],
  );
  const t = net.bind({ address: '10.0.0.1', protocol: 'tcp', onReceive: () => {} });
  await assert.rejects(
    t.send(bytes('x'), { address: '10.0.0.9', port: 5060 }),
    (e: unknown) => e instanceof SipError && e.code === 'SIP_UNREACHABLE',
  );
});

test('a closed transport refuses to send and frees its port', async () => {
  const net = new MemoryNetwork();
  const a = net.bind({ address: '10.0.0.1', port: 5060, onReceive: () => {} });
  assert.throws(() => net.bind({ address: '10.0.0.1', port: 5060, onReceive: () => {} }), SipError);
  await a.close();
  await assert.rejects(
    a.send(bytes('x'), { address: '10.0.0.2', port: 1 }),
    (e: unknown) => e instanceof SipError && e.code === 'SIP_TRANSPORT_CLOSED',
  );
  assert.doesNotThrow(() => net.bind({ address: '10.0.0.1', port: 5060, onReceive: () => {} }));
});
