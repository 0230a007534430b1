// The registration table's indexes (contact, IMPU) across refreshes: a refresh that repeats its
// binding keeps its keys (issue 9 §2: no map churn per refresh), the latest 200 OK still wins a
// contested key, and a changed contact moves the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend, MemoryWire } from '../ipsec/backends/memory.ts';
import { ManualClock } from '../sip/clock.ts';
import { expandKeys } from '../ipsec/keys.ts';
import { createSaSet, type SaSet } from '../ipsec/sa-set.ts';
import { impuKey } from './decisions.ts';
import { IDLE, type Bound, type RegState } from './registration-state.ts';
import { contactKey, RegistrationTable } from './registrations.ts';

function table(): RegistrationTable {
  const clock = new ManualClock();
  const backend = new MemoryBackend({ wire: new MemoryWire(), localIp: '127.0.0.1', encapPort: 0, clock });
  return new RegistrationTable(backend, clock, () => {}, { setGone: () => {} } as never);
}

function bound(contact: string, impus: readonly string[]): Bound {
  return {
    current: 'none',
    old: [],
    lifetime: 1,
    impus,
    contact,
    serviceRoute: [],
    expiresAt: 1,
    serverSpiC: 0,
    serverSpiS: 0,
    alg: 'hmac-sha-1-96',
    ealg: 'null',
    ueIp: '192.0.2.1',
    innerIp: undefined,
    natDetected: false,
    mode: 'transport',
  };
}

/** One transition as register.ts files it: the state moves, then settle and settled. */
function move(t: RegistrationTable, impi: string, b: Bound): void {
  const reg = t.getOrNew(impi);
  const before: RegState = reg.state;
  reg.state = { kind: 'registered', bound: b };
  t.settle(reg, before);
  t.settled(reg, before);
}

test('a refresh that repeats the binding keeps its index keys; the latest 200 OK wins a shared contact; a new contact moves the key', () => {
  const t = table();
  const impus = ['sip:alice@ims.example'];
  const c1 = 'sip:alice@192.0.2.1:5060';
  move(t, 'alice', bound(c1, impus));
  const alice = t.get('alice')!;
  const keys = alice.indexed;
  assert.ok(keys && keys.length === 2, 'contact and IMPU');
  assert.equal(t.byTarget(contactKey(c1), undefined), alice);
  assert.equal(t.byImpu(impuKey(impus[0]!)!), alice);

  move(t, 'alice', bound(c1, impus));
  assert.equal(alice.indexed, keys, 'the same keys array: nothing re-indexed');

  // Bob's 200 OK names the same contact: it is his now; Alice's next refresh takes it back.
  move(t, 'bob', bound(c1, ['sip:bob@ims.example']));
  assert.equal(t.byTarget(contactKey(c1), undefined), t.get('bob'));
  move(t, 'alice', bound(c1, impus));
  assert.equal(t.byTarget(contactKey(c1), undefined), alice);
  assert.notEqual(alice.indexed, keys, 're-indexed');

  const c2 = 'sip:alice@192.0.2.1:5070';
  move(t, 'alice', bound(c2, impus));
  assert.equal(t.byTarget(contactKey(c2), undefined), alice);
  assert.equal(t.byTarget(contactKey(c1), undefined), undefined, 'the old contact is gone (Bob lost it to Alice)');
  assert.equal(t.byImpu(impuKey('sip:bob@ims.example')!), t.get('bob'));
});

let spi = 0x3000;
function saSet(): SaSet {
  return createSaSet({
    role: 'pcscf',
    ue: { ip: '192.0.2.1', portC: 40000 + spi, portS: 40001 + spi, spiC: ++spi, spiS: ++spi },
    pcscf: { ip: '127.0.0.1', portC: 5062, portS: 5064, spiC: ++spi, spiS: ++spi },
    alg: 'hmac-sha-1-96',
    ealg: 'null',
    keys: expandKeys(new Uint8Array(16).fill(1), new Uint8Array(16).fill(2), 'hmac-sha-1-96', 'null'),
    mode: 'transport',
  });
}

test('SA set → registration without a map (issue 9 §2): filed on install, gone when the set leaves; clear() still finds a forgotten registration whose sets are being deleted', async () => {
  const t = table();
  move(t, 'alice', bound('sip:alice@192.0.2.1:5060', ['sip:alice@ims.example']));
  const reg = t.get('alice')!;
  assert.equal(reg.slots, reg, 'the registration is its own slots');
  const a = saSet();
  await t.installTemporary(reg, a);
  assert.equal(t.ownerOf(a), reg);
  assert.equal(t.ownerOf(saSet()), undefined, 'a set nobody filed');
  t.hold(a);
  assert.equal(t.inFlight(a), 1);
  t.release(a);
  await t.deleteSet(a, 'deleted', 'test');
  assert.equal(t.ownerOf(a), undefined, 'the set left its slot');

  // A de-registration: back to idle (out of every index), its sets deleted by a later action.
  const b = saSet();
  await t.installTemporary(reg, b);
  const before = reg.state;
  reg.state = IDLE;
  t.settle(reg, before);
  assert.equal(t.get('alice'), undefined);
  assert.equal(t.ownerOf(b), reg, 'still owned while its deletion is pending');
  await t.clear('stop');
  assert.equal(t.ownerOf(b), undefined);
  assert.equal(b.live, false, 'clear() deleted the set of the forgotten registration');
  assert.ok(reg.slots.empty);
});
