// PcscfState between the P-CSCF and its store: a saved registration comes back with its set (keys
// unsealed, times moved from one process's monotonic clock to the next one's through wall time),
// marks are batched behind the traffic, and what a SIGKILL leaves in the store is enough: the
// restored set sends past every number used and refuses every packet accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePair } from '../../test/support/ims-fixture.ts';
import { Sad } from '../ipsec/sad.ts';
import { ManualClock } from '../util/clock.ts';
import { aesGcmSealer } from './state-keys.ts';
import type { RegistrationRecord } from './state-store.ts';
import { SqliteStateStore } from './state-store-sqlite.ts';
import { PcscfState } from './state.ts';

const NODE = '192.0.2.20:5060';
const record = (expiresAt: number): RegistrationRecord => ({
  v: 1,
  impi: 'alice@example.org',
  expiresAt,
  lifetime: expiresAt + 30_000,
  encap: { address: '192.0.2.10', port: 4501 },
  bound: { impus: ['sip:alice@example.org'], serviceRoute: ['<sip:orig@192.0.2.30;lr>'] },
});

test('save, SIGKILL, load: times carried over in wall time, keys unsealed, sequence numbers past everything used', async () => {
  const store = new SqliteStateStore(':memory:');
  const sealer = aesGcmSealer(new Uint8Array(32).fill(3));
  let wall = 1_700_000_000_000;
  const c1 = new ManualClock(5_000);
  const s1 = new PcscfState({ store, sealer, node: NODE, clock: c1, wallNow: () => wall, policy: { outBlock: 64, maxInBlock: 8 } });
  const { ue, pcscf } = makePair({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel' });
  pcscf.apply('authenticated');
  ue.apply('authenticated');
  pcscf.setLifetime({ expiresAt: 5_000 + 3_630_000 });
  const ueSad = new Sad({ now: () => 0 });
  const pSad = new Sad({ now: () => 0 });
  ueSad.install(ue);
  pSad.install(pcscf);
  s1.save(record(5_000 + 3_600_000), pcscf);
  const captured: Uint8Array[] = [];
  for (let i = 0; i < 500; i++) {
    pSad.send(pcscf, pcscf.config.pcscf.portC, pcscf.config.ue.portS, new Uint8Array(20));
    const up = ueSad.send(ue, ue.config.ue.portC, ue.config.pcscf.portS, new Uint8Array(20)).udpPayload;
    captured.push(up);
    assert.ok(pSad.receiveEsp({ src: ue.config.ue.ip, dst: ue.config.pcscf.ip, encap: { srcPort: 4500, dstPort: 4500 }, esp: up }).ok);
    if (i % 50 === 0) await new Promise((r) => setImmediate(r)); // the write-behind gets its turns
  }
  const w = s1.marks.writes;
  assert.ok(w.now + w.batches < 100, `${w.now} synchronous writes + ${w.batches} batches for 1000 packets`);
  // SIGKILL: no close, no flush. A new process, a new monotonic clock, 10 s later.
  wall += 10_000;
  const c2 = new ManualClock(42);
  const s2 = new PcscfState({ store, sealer, node: NODE, clock: c2, wallNow: () => wall });
  const [back] = s2.load();
  assert.ok(back);
  assert.equal(back.record.expiresAt, 42 + 3_600_000 - 10_000);
  assert.equal(back.record.lifetime, 42 + 3_630_000 - 10_000);
  assert.deepEqual(back.record.bound, record(0).bound);
  assert.notEqual(back.set.id, pcscf.id, 'a restored set gets an id of its own');
  assert.equal(back.set.expiresAt, 42 + 3_630_000 - 10_000);
  assert.equal(back.set.state, 'current');
  const sad = new Sad({ now: () => 0 });
  sad.install(back.set);
  for (const esp of captured.slice(-70)) {
    assert.equal(
      sad.receiveEsp({ src: ue.config.ue.ip, dst: ue.config.pcscf.ip, encap: { srcPort: 4500, dstPort: 4500 }, esp }).ok,
      false,
      'a replay was accepted',
    );
  }
  sad.send(back.set, back.set.config.pcscf.portC, back.set.config.ue.portS, new Uint8Array(1));
  assert.ok(back.set.sas.SA2.seq > 500, `outbound resumed at ${back.set.sas.SA2.seq}, past 500`);
  // The UE goes on: its next packet is fresh and accepted (it sent 500; the mark is within one block).
  let ok = false;
  for (let i = 0; i < 8 && !ok; i++)
    ok = sad.receiveEsp({
      src: ue.config.ue.ip,
      dst: ue.config.pcscf.ip,
      encap: { srcPort: 4500, dstPort: 4500 },
      esp: ueSad.send(ue, ue.config.ue.portC, ue.config.pcscf.portS, new Uint8Array(5)).udpPayload,
    }).ok;
  assert.ok(ok, "the UE's fresh packets get through within one inbound block");
  s1.marks.close();
  s2.close();
});

test('an expired registration is not restored and is forgotten', () => {
  const store = new SqliteStateStore(':memory:');
  let wall = 1_000_000;
  const clock = new ManualClock(0);
  const s = new PcscfState({ store, sealer: aesGcmSealer(new Uint8Array(32)), node: NODE, clock, wallNow: () => wall });
  const { pcscf } = makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport' });
  pcscf.apply('authenticated');
  s.save(record(1000), pcscf);
  wall += 2000;
  assert.deepEqual(s.load(), []);
  assert.deepEqual(store.load(NODE), []);
  s.close();
});

test('the old set (a re-challenged refresh, 33.203 §7.4) is stored beside the current one and comes back as old, past its numbers', async () => {
  const store = new SqliteStateStore(':memory:');
  const clock = new ManualClock(0);
  const wall = 1_700_000_000_000;
  const s1 = new PcscfState({ store, sealer: aesGcmSealer(new Uint8Array(32).fill(7)), node: NODE, clock, wallNow: () => wall });
  const a = makePair({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport' });
  const b = makePair({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'transport', index: 1 });
  // `a` was current; the refresh made `b` current and `a` old.
  a.pcscf.apply('authenticated');
  a.pcscf.setLifetime({ expiresAt: 600_000 });
  s1.save(record(3_600_000), a.pcscf);
  const sad = new Sad({ now: () => 0 });
  sad.install(a.pcscf);
  for (let i = 0; i < 10; i++) sad.send(a.pcscf, a.pcscf.config.pcscf.portC, a.pcscf.config.ue.portS, new Uint8Array(4));
  a.pcscf.apply('superseded');
  b.pcscf.apply('authenticated');
  s1.save(record(3_600_000), b.pcscf, [a.pcscf]);
  s1.flush();
  assert.deepEqual(
    store
      .load(NODE)[0]!
      .sets.map((x) => x.record.state)
      .sort(),
    ['current', 'old'],
  );
  // SIGKILL; the next process reads both back.
  const s2 = new PcscfState({ store, sealer: aesGcmSealer(new Uint8Array(32).fill(7)), node: NODE, clock, wallNow: () => wall });
  const [back] = s2.load();
  assert.ok(back);
  assert.equal(back.set.state, 'current');
  assert.equal(back.set.config.pcscf.spiS, b.pcscf.config.pcscf.spiS);
  assert.equal(back.old.length, 1);
  const old = back.old[0]!;
  assert.equal(old.state, 'old');
  assert.equal(old.config.pcscf.spiS, a.pcscf.config.pcscf.spiS);
  assert.equal(old.expiresAt, 600_000);
  const again = new Sad({ now: () => 0 });
  again.install(old);
  again.send(old, old.config.pcscf.portC, old.config.ue.portS, new Uint8Array(4));
  assert.ok(old.sas.SA2.seq > 10, `the old set's outbound resumed at ${old.sas.SA2.seq}, past the 10 numbers used`);
  // The old set gone (its transactions ended): the next write leaves it out.
  s2.save(record(3_600_000), back.set);
  s2.flush();
  assert.deepEqual(
    store.load(NODE)[0]!.sets.map((x) => x.record.state),
    ['current'],
  );
  s1.marks.close();
  s2.close();
});
