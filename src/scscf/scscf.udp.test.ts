// The S-CSCF on a real UDP socket (127.0.0.1, port 0) with the system clock: a full IMS AKA
// registration from a fake P-CSCF on its own socket, a network-initiated MESSAGE back along the
// Path, the tracer seeing every message, and a clean stop (no timer keeps the process alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newCallId, systemClock } from '../sip/index.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import { fromHex } from '../util/bytes.ts';
import type { SipTraceEvent } from '../util/trace.ts';
import { HssStore } from './hss-store.ts';
import { Hss } from './hss.ts';
import { Scscf } from './scscf.ts';
import { ALICE, DOMAIN, FakePcscf, UeSide, usimOf } from './_test-helpers.ts';

test('over UDP on 127.0.0.1: 401, 200 with the bound port in Service-Route, then sendMessage along the Path', async () => {
  const store = new HssStore(':memory:');
  store.add({ impi: ALICE.impi, impus: ALICE.impus, k: fromHex(ALICE.k), op: fromHex(ALICE.op), amf: fromHex('8000') });
  const trace: SipTraceEvent[] = [];
  const scscf = await Scscf.start({ address: '127.0.0.1', port: 0, domain: DOMAIN, hss: new Hss(store), trace: (e) => trace.push(e) });
  assert.ok(scscf.local.port > 0);
  let pcscf: FakePcscf | undefined;
  const udp = await openUdpTransport({ address: '127.0.0.1', port: 0, onReceive: (b, c) => pcscf!.layer.receive(b, c) });
  pcscf = new FakePcscf(systemClock, udp.local);
  pcscf.transport = udp;
  pcscf.scscf = scscf.local;
  const ue = new UeSide(pcscf);
  try {
    const { challenge, final } = await ue.registerFully(usimOf(ALICE), { callId: newCallId(), expires: 300 });
    assert.equal(challenge.status, 401);
    assert.equal(final.status, 200);
    assert.equal(final.headers.get('Service-Route'), `<sip:orig@127.0.0.1:${scscf.local.port};lr>`);
    assert.deepEqual(final.headers.getAll('Path'), [`<sip:term@127.0.0.1:${udp.local.port};lr>`]);

    const res = await scscf.sendMessage(ALICE.impus[0]!, 'hello over UDP');
    assert.equal(res.status, 200);
    const got = pcscf.received.at(-1)!.req;
    assert.equal(got.uri, `sip:alice@${ALICE.ue.address}:${ALICE.ue.port}`);
    assert.deepEqual(got.headers.getAll('Route'), [pcscf.path]);

    const lines = trace.map((e) => `${e.node} ${e.dir} ${e.firstLine}`);
    assert.deepEqual(lines, [
      `scscf recv REGISTER sip:${DOMAIN} SIP/2.0`,
      'scscf send SIP/2.0 401 Unauthorized',
      `scscf recv REGISTER sip:${DOMAIN} SIP/2.0`,
      'scscf send SIP/2.0 200 OK',
      `scscf send MESSAGE sip:alice@${ALICE.ue.address}:${ALICE.ue.port} SIP/2.0`,
      'scscf recv SIP/2.0 200 OK',
    ]);
  } finally {
    await scscf.stop();
    pcscf.layer.close();
    await udp.close();
    store.close();
  }
});
