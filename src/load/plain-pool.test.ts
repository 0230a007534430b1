// The load run's pool of unprotected sockets (plain-pool.ts): a loan is exclusive, a socket given
// back is lent again (no new bind), a datagram reaches only the current borrower, a fixed port gets
// a socket of its own, and close() closes every socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { PlainSocketPool } from './plain-pool.ts';

const LOOP = '127.0.0.1';

/** Sends one datagram to port and waits a moment for it to arrive. */
async function poke(port: number, text: string): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.send(Buffer.from(text), port, LOOP, () => r()));
  s.close();
  await new Promise((r) => setTimeout(r, 50));
}

test('pooled unprotected sockets: exclusive loans, reuse after give-back, datagrams only to the borrower, closed at the end', async () => {
  const pool = new PlainSocketPool();
  const got: string[] = [];
  let pooledPort = 0;
  try {
    const a = await pool.open(LOOP, 0, (b) => got.push(`a:${Buffer.from(b).toString()}`));
    const b = await pool.open(LOOP, 0, (x) => got.push(`b:${Buffer.from(x).toString()}`));
    assert.notEqual(a.local.port, b.local.port, 'two loans at once: two sockets');
    assert.equal(pool.size, 2);
    await poke(a.local.port, '1');
    const port = a.local.port;
    pooledPort = port;
    await a.close();
    await poke(port, '2'); // between loans: dropped
    await assert.rejects(a.send(Buffer.from('x'), { address: LOOP, port: 9 }), /given back/);
    const c = await pool.open(LOOP, 0, (x) => got.push(`c:${Buffer.from(x).toString()}`));
    assert.equal(c.local.port, port, 'the given-back socket is lent again: no new bind');
    assert.equal(pool.size, 2);
    await poke(port, '3');
    assert.deepEqual(got, ['a:1', 'c:3']);
    // A datagram the borrower sends leaves from the pooled socket.
    const seen = createSocket('udp4');
    await new Promise<void>((r) => seen.bind(0, LOOP, () => r()));
    const from = new Promise<number>((r) => seen.once('message', (_m, rinfo) => r(rinfo.port)));
    await c.send(Buffer.from('hello'), { address: LOOP, port: seen.address().port });
    assert.equal(await from, port);
    seen.close();
    const fixed = await pool.open(LOOP, port + 1 === 65536 ? port - 1 : port + 1, () => {});
    assert.equal(pool.size, 2, 'a fixed port is not pooled');
    await fixed.close();
    await c.close();
    await b.close();
  } finally {
    await pool.close();
  }
  assert.equal(pool.size, 0);
  // Every pooled socket is closed: its port can be bound again.
  const again = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.bind({ port: pooledPort, address: LOOP, exclusive: true }, () => resolve());
  });
  again.close();
});
