// The P-CSCF core without a single socket (issue 12 §1 and §3): plain SIP on a MemoryNetwork
// through server.ts memoryEdge, ESP on the in-memory backend, the scripted UE and fake S-CSCF on the
// same network. A whole registration, a re-registration and a de-registration, and no UDP handle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { protectedContextOf } from '../ipsec/backends/sip-endpoint.ts';
import { eventually, world } from './_world.ts';

const udpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'UDPWRAP').length;

test('no sockets: register, re-register with a new set, de-register — all on MemoryNetwork + the memory backend', async () => {
  const before = udpHandles();
  const w = await world({ sockets: false });
  try {
    assert.ok(w.net, 'the world runs on a MemoryNetwork');
    const ue = await w.ue();
    assert.equal(udpHandles(), before, 'the P-CSCF, the S-CSCF and the UE opened no UDP socket');
    assert.equal((await ue.register()).res.status, 200);
    const first = ue.current!;
    await ue.newRound();
    const a = await ue.reRegisterRequest();
    assert.equal(a.res.status, 401);
    assert.equal(protectedContextOf(a.ctx)?.set, first, 'the 401 to the re-REGISTER comes over the current set');
    await ue.acceptChallenge(a.res);
    assert.equal((await ue.finish()).res.status, 200);
    assert.notEqual(ue.current, first);
    await eventually(() => w.pcscf.registrations()[0]!.sets.length === 1, 'the old set goes (no transaction in flight)');
    const d = await ue.reRegisterRequest({ expires: 0, client: null });
    assert.equal(d.res.status, 200);
    await eventually(() => w.pcBackend.sets.length === 0, 'all sets removed');
    assert.deepEqual(w.pcscf.registrations(), []);
    assert.ok(
      w.net.log.some((p) => p.delivered),
      'plain SIP went over the MemoryNetwork',
    );
    assert.deepEqual(
      w.events.map((e) => e.name).filter((n) => n !== 'sa-deleted' && n !== 'nat-mapping'),
      ['sa-created', 'sa-promoted', 'registered', 'sa-created', 'sa-promoted', 'registered', 'deregistered'],
    );
  } finally {
    await w.close();
  }
});
