// Issue 10 §4: no datagram can stop a process. A handler above the sockets that throws (here a
// P-CSCF event listener, a protected endpoint's handler, the backend's drop hook) costs the one
// datagram that triggered it; the fault is counted at its boundary and the next REGISTER succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { boundaryCounts, setBoundaryReporter, type BoundaryFault } from '../../src/util/guard.ts';
import { startWorld, until } from '../support/ims-world.ts';

function sendUdp(address: string, port: number, text: string): Promise<void> {
  const s = createSocket('udp4');
  return new Promise((resolve, reject) =>
    s.send(Buffer.from(text.replace(/\n/g, '\r\n')), port, address, (err) => {
      s.close();
      if (err) reject(err);
      else resolve();
    }),
  );
}

const options = (n: number, to: string) =>
  `OPTIONS sip:${to} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKboundary${n}\nMax-Forwards: 70\n` +
  `From: <sip:x@example.net>;tag=${n}\nTo: <sip:${to}>\nCall-ID: boundary-${n}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n`;

test('a P-CSCF handler that throws on a datagram is contained, and the next REGISTER still succeeds', async () => {
  const faults: BoundaryFault[] = [];
  const prev = setBoundaryReporter((f) => faults.push(f));
  const w = await startWorld();
  try {
    let thrown = 0;
    // A bug in the TU: the 'rejected' listener throws (an unprotected OPTIONS is rejected with 403).
    w.pcscf.on('rejected', () => {
      thrown++;
      throw new TypeError('listener bug');
    });
    // And one on the protected port's plain guard socket ('dropped').
    w.pcscf.on('dropped', () => {
      thrown++;
      throw new RangeError('another listener bug');
    });
    const before = boundaryCounts();
    await sendUdp(w.ip, w.pcscf.port, options(1, `${w.ip}`));
    await sendUdp(w.ip, w.pcscf.portS, options(2, `${w.ip}`));
    await until(() => thrown === 2, 'both listeners ran');
    const after = boundaryCounts();
    assert.equal((after['sip.receive'] ?? 0) - (before['sip.receive'] ?? 0), 1, 'the SIP fault counted at the transaction layer');
    assert.equal((after['pcscf.protected-port'] ?? 0) - (before['pcscf.protected-port'] ?? 0), 1, 'the guard-port fault counted');
    assert.ok(
      faults.some((f) => f.error instanceof TypeError && f.inputSize !== undefined && f.inputSize > 100),
      'reported with the input size',
    );

    const ue = await w.ue(1);
    const r = await ue.register();
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal((await ue.sendMessage('sip:echo@ims.mnc001.mcc001.3gppnetwork.org', 'still here')).status, 200);
  } finally {
    setBoundaryReporter(prev);
    await w.close();
  }
});
