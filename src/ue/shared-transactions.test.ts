// UEs on one shared transaction layer (sip-io.ts SharedTransactions, what `imsec load` gives its
// UEs): each registers and de-registers as with a layer of its own, a request the network sends over
// a UE's SAs reaches that UE and no other, and the UEs' transactions are the shared layer's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../sip/index.ts';
import { SharedTransactions } from './sip-io.ts';
import { registerPair, startPair, type Pair } from './_fake-pcscf.ts';

test('two UEs on one shared transaction layer: registration, MO and MT requests each reach the right UE, de-registration', async () => {
  const shared = new SharedTransactions({ clock: systemClock, timers: { t1: 50, t2: 200, t4: 100 } });
  // Untraced (a traced UE keeps a layer of its own, see SipIoOptions.transactions).
  const pairs: Pair[] = [];
  try {
    for (let i = 0; i < 2; i++) pairs.push(await startPair({ trace: undefined, transactions: shared }));
    const [a, b] = pairs as [Pair, Pair];
    const before = shared.layer.clientTransactionCount;
    const ra = await registerPair(a);
    const rb = await registerPair(b);
    assert.equal(a.ue.state, 'registered');
    assert.equal(b.ue.state, 'registered');
    assert.ok(shared.layer.clientTransactionCount > before, "the UEs' REGISTER transactions are the shared layer's");

    const got: string[] = [];
    a.ue.on('request', (r) => got.push(`a:${new TextDecoder().decode(r.request.body)}`));
    b.ue.on('request', (r) => got.push(`b:${new TextDecoder().decode(r.request.body)}`));
    assert.equal((await b.fake.request(rb.ch.set!, 'MESSAGE', 'to b')).res.status, 200);
    assert.equal((await a.fake.request(ra.ch.set!, 'MESSAGE', 'to a')).res.status, 200);
    assert.deepEqual(got, ['b:to b', 'a:to a'], 'each MT request reached the UE owning the SA it came over');

    const mo = a.ue.sendMessage('sip:echo@ims.example', 'mo');
    const rx = await a.fake.next();
    await a.fake.reply(rx, 200, [], ra.ch.set);
    assert.equal((await mo).status, 200);

    for (const [p, set] of [
      [a, ra.ch.set!],
      [b, rb.ch.set!],
    ] as const) {
      const done = p.ue.deregister();
      const rx2 = await p.fake.next();
      await p.fake.reply(rx2, 200, [], set);
      assert.ok((await done).ok);
      assert.equal(p.ue.state, 'deregistered');
      assert.deepEqual(p.ueBackend.sets, [], 'no SA set left');
    }
  } finally {
    for (const p of pairs) await p.close();
    shared.close();
    assert.equal(shared.layer.clientTransactionCount + shared.layer.serverTransactionCount, 0, 'close() ended every transaction');
  }
});
