// HssStore: provisioning, OP → OPc (TS 35.208 Set 1), key redaction, schema versioning, and SQN
// advancing per TS 33.102 Annex C across calls and across reopening the file.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { AkaError, SQN_MAX, splitSqn } from '../aka/index.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { type AddSubscriber, HssStore, HssStoreError, PROFILE_RECHECK_MS } from './hss-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'imsec-hss-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = () => join(dir, `hss-${++fileNo}.sqlite`);

// TS 35.208 Test Set 1.
const K1 = '465b5ce8b199b49faa5f0a2ee238a6bc';
const OP1 = 'cdc202d5123e20f62b6d676ac72cb318';
const OPC1 = 'cd63cb71954a9f4e48a5994e37a02baf';

function alice(over: Partial<AddSubscriber> = {}): AddSubscriber {
  return {
    impi: 'alice@ims.example',
    impus: ['sip:alice@ims.example', 'tel:+15550100'],
    k: fromHex(K1),
    opc: fromHex(OPC1),
    amf: fromHex('8000'),
    ...over,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

test('add, get, findByImpu, list, remove (IMPUs go with the subscriber)', () => {
  const s = new HssStore(':memory:');
  const a = s.add(alice());
  assert.equal(a.impi, 'alice@ims.example');
  assert.deepEqual(a.impus, ['sip:alice@ims.example', 'tel:+15550100']);
  assert.equal(toHex(a.amf), '8000');
  assert.equal(a.sqn, 0);
  assert.equal(a.indLen, 5);
  s.add(alice({ impi: 'bob@ims.example', impus: ['sip:bob@ims.example'], sqn: 0x1234 }));
  assert.equal(s.get('bob@ims.example')?.sqn, 0x1234);
  assert.equal(s.findByImpu('tel:+15550100')?.impi, 'alice@ims.example');
  assert.equal(s.findByImpu('sip:nobody@ims.example'), undefined);
  assert.equal(s.get('nobody@ims.example'), undefined);
  assert.deepEqual(
    s.list().map((x) => x.impi),
    ['alice@ims.example', 'bob@ims.example'],
  );
  assert.equal(s.remove('alice@ims.example'), true);
  assert.equal(s.remove('alice@ims.example'), false);
  assert.equal(s.findByImpu('sip:alice@ims.example'), undefined, 'IMPUs cascade');
  // The freed IMPU can be given to someone else.
  s.add(alice({ impi: 'carol@ims.example', impus: ['sip:alice@ims.example'] }));
  assert.equal(s.findByImpu('sip:alice@ims.example')?.impi, 'carol@ims.example');
  s.close();
});

test('duplicates are typed errors and leave nothing half-written', () => {
  const s = new HssStore(':memory:');
  s.add(alice());
  const dup = (() => {
    try {
      s.add(alice({ impus: ['sip:other@ims.example'] }));
    } catch (err) {
      return err;
    }
  })();
  assert.ok(dup instanceof HssStoreError && dup instanceof InputError);
  assert.equal(dup.code, 'HSS_DUPLICATE_IMPI');
  assert.equal(
    codeOf(() => s.add(alice({ impi: 'eve@ims.example', impus: ['sip:eve@ims.example', 'tel:+15550100'] }))),
    'HSS_DUPLICATE_IMPU',
  );
  assert.equal(s.get('eve@ims.example'), undefined);
  assert.equal(s.findByImpu('sip:eve@ims.example'), undefined);
  assert.equal(s.findByImpu('sip:other@ims.example'), undefined);
  s.close();
});

test('bad subscribers are refused without echoing key material', () => {
  const s = new HssStore(':memory:');
  const cases: Partial<AddSubscriber>[] = [
    { k: fromHex(K1.slice(2)) },
    { op: fromHex(OP1) }, // both op and opc
    { opc: undefined },
    { amf: fromHex('800000') },
    { impus: [] },
    { impus: ['alice@ims.example'] },
    { impus: ['sip:a@x', 'sip:a@x'] },
    { impi: 'has space@x' },
    { sqn: SQN_MAX + 1 },
    { sqn: 1.5 },
  ];
  for (const c of cases) {
    try {
      s.add(alice(c));
      assert.fail(`accepted ${inspect(Object.keys(c))}`);
    } catch (err) {
      assert.ok(err instanceof HssStoreError, String(err));
      assert.equal(err.code, 'HSS_BAD_SUBSCRIBER');
      assert.ok(!err.message.includes(K1.slice(4, 20)) && !err.message.includes(OPC1.slice(0, 16)), err.message);
    }
  }
  assert.deepEqual(s.list(), []);
  s.close();
});

test('OP is stored as OPc only (TS 35.208 Set 1)', () => {
  const s = new HssStore(':memory:');
  const a = s.add(alice({ opc: undefined, op: fromHex(OP1) }));
  assert.equal(toHex(a.opc), OPC1);
  assert.equal(toHex(s.get(a.impi)!.opc), OPC1);
  assert.equal(toHex(s.get(a.impi)!.k), K1);
  s.close();
});

test('JSON and inspect redact K and OPc', () => {
  const s = new HssStore(':memory:');
  const a = s.add(alice());
  for (const text of [JSON.stringify(a), JSON.stringify(s.list()), inspect(a, { depth: 5, showHidden: true }), `${inspect(s.list())}`]) {
    assert.ok(!text.includes(K1) && !text.includes(OPC1), text);
  }
  assert.equal(JSON.parse(JSON.stringify(a)).k, '[redacted]');
  assert.deepEqual(Object.keys(a).includes('k'), false, 'K is not an own enumerable property');
  s.close();
});

const pastRecheck = () => new Promise((r) => setTimeout(r, PROFILE_RECHECK_MS + 5));

test("profile: cached while nothing changed; another connection's commit (within PROFILE_RECHECK_MS), own add/remove and the cap all drop it", async () => {
  const file = tmpFile();
  const a = new HssStore(file);
  const b = new HssStore(file);
  try {
    a.add(alice());
    const p1 = a.profile('alice@ims.example')!;
    assert.deepEqual(p1.impus, ['sip:alice@ims.example', 'tel:+15550100']);
    assert.equal(toHex(p1.k), K1);
    assert.equal(toHex(p1.opc), OPC1);
    assert.equal(p1.indLen, 5);
    assert.equal(a.profile('alice@ims.example'), p1, 'served from the cache');
    a.nextSqn('alice@ims.example');
    assert.equal(a.profile('alice@ims.example'), p1, 'an own SQN commit keeps it');
    assert.equal(a.profile('nobody@ims.example'), undefined);

    // Another connection removes alice and adds her again with another K and IMPU set. The store looks
    // for other connections' commits at most every PROFILE_RECHECK_MS: after that, the cache is gone.
    b.remove('alice@ims.example');
    b.add(alice({ k: fromHex('00'.repeat(16)), impus: ['sip:alice2@ims.example'] }));
    await pastRecheck();
    const p2 = a.profile('alice@ims.example')!;
    assert.notEqual(p2, p1);
    assert.equal(toHex(p2.k), '00'.repeat(16));
    assert.deepEqual(p2.impus, ['sip:alice2@ims.example']);
    b.nextSqn('alice@ims.example');
    await pastRecheck();
    assert.notEqual(a.profile('alice@ims.example'), p2, "another connection's SQN commit drops the cache too");

    a.remove('alice@ims.example');
    assert.equal(a.profile('alice@ims.example'), undefined, 'own remove');
    a.add(alice());
    assert.equal(toHex(a.profile('alice@ims.example')!.k), K1, 'own add');
  } finally {
    a.close();
    b.close();
  }

  const c = new HssStore(':memory:', { profileCache: 1 });
  c.add(alice());
  c.add(alice({ impi: 'bob@ims.example', impus: ['sip:bob@ims.example'] }));
  const pa = c.profile('alice@ims.example');
  assert.equal(c.profile('alice@ims.example'), pa);
  c.profile('bob@ims.example'); // evicts alice
  assert.notEqual(c.profile('alice@ims.example'), pa);
  const off = new HssStore(':memory:', { profileCache: 0 });
  off.add(alice());
  assert.notEqual(off.profile('alice@ims.example'), off.profile('alice@ims.example'));
  for (const p of [pa!, off.profile('alice@ims.example')!]) {
    const shown = JSON.stringify(p) + inspect(p);
    assert.ok(!shown.includes(K1) && !shown.includes(OPC1) && shown.includes('[redacted]'), shown);
  }
  c.close();
  off.close();
});

test('nextSqn: Annex C SEQ+1 with IND cycling, strictly increasing, also across reopening', () => {
  const file = tmpFile();
  let s = new HssStore(file);
  s.add(alice({ sqn: 0x20 * 7 + 31 })); // SEQ 7, IND 31
  const got: number[] = [s.nextSqn('alice@ims.example')];
  assert.deepEqual(splitSqn(got[0]!), { seq: 8, ind: 0 });
  got.push(...s.nextSqns('alice@ims.example', 3));
  assert.equal(s.get('alice@ims.example')!.sqn, got.at(-1));
  s.close();
  for (let round = 0; round < 3; round++) {
    s = new HssStore(file);
    assert.equal(s.get('alice@ims.example')!.sqn, got.at(-1), 'the last SQN handed out survived close/reopen');
    got.push(s.nextSqn('alice@ims.example'), s.nextSqn('alice@ims.example'));
    s.close();
  }
  for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `SQN ${got[i]} after ${got[i - 1]}`);
  assert.equal(statSync(file).mode & 0o077, 0, 'the key file is owner-only');
});

test('nextSqn: unknown IMPI, bad counts, and an exhausted SEQ space (nothing written)', () => {
  const s = new HssStore(':memory:');
  assert.equal(
    codeOf(() => s.nextSqn('nobody@x')),
    'HSS_UNKNOWN_IMPI',
  );
  assert.equal(
    codeOf(() => s.resync('nobody@x', 5)),
    'HSS_UNKNOWN_IMPI',
  );
  s.add(alice({ sqn: SQN_MAX - 31 })); // highest SEQ, IND 0
  assert.equal(
    codeOf(() => s.nextSqns('alice@ims.example', 0)),
    'HSS_BAD_SUBSCRIBER',
  );
  assert.throws(
    () => s.nextSqn('alice@ims.example'),
    (e) => e instanceof AkaError && e.code === 'AKA_SQN_EXHAUSTED',
  );
  assert.equal(s.get('alice@ims.example')!.sqn, SQN_MAX - 31);
  s.close();
});

test('an SQN batch: one transaction that other connections see only at its commit; a failing step inside it writes nothing', () => {
  const file = tmpFile();
  const s = new HssStore(file);
  const other = new HssStore(file);
  try {
    s.add(alice());
    s.add(alice({ impi: 'bob@ims.example', impus: ['sip:bob@ims.example'], sqn: SQN_MAX - 31 })); // highest SEQ
    s.beginSqnBatch();
    const first = s.nextSqns('alice@ims.example', 2);
    assert.throws(
      () => s.nextSqn('bob@ims.example'),
      (e) => e instanceof AkaError && e.code === 'AKA_SQN_EXHAUSTED',
    );
    assert.equal(
      codeOf(() => s.nextSqn('nobody@ims.example')),
      'HSS_UNKNOWN_IMPI',
    );
    const second = s.nextSqn('alice@ims.example');
    const ms = 0x20 * 50 + 3;
    const resynced = s.resync('alice@ims.example', ms);
    assert.deepEqual(splitSqn(resynced).seq, 50);
    assert.equal(other.get('alice@ims.example')!.sqn, 0, 'nothing visible before the commit');
    s.commitSqnBatch();
    assert.deepEqual(first.concat(second), [0x21, 0x42, 0x63], 'Annex C steps joined the batch in order');
    assert.equal(other.get('alice@ims.example')!.sqn, resynced, 'the batch committed as a whole');
    assert.equal(other.get('bob@ims.example')!.sqn, SQN_MAX - 31, 'the exhausted subscriber is untouched');
    // A batch never committed (the process stops) hands out nothing.
    s.beginSqnBatch();
    s.nextSqn('alice@ims.example');
    s.close();
    assert.equal(other.get('alice@ims.example')!.sqn, resynced, 'an uncommitted batch is rolled back');
  } finally {
    other.close();
  }
});

test('in a batch, the SQN read with a profile serves the next SQN step; each batch reads afresh what other connections wrote', async () => {
  const file = tmpFile();
  const s = new HssStore(file);
  const other = new HssStore(file);
  const model = new HssStore(':memory:'); // the same steps without batches or profiles: the expected values
  try {
    s.add(alice());
    s.add(alice({ impi: 'bob@ims.example', impus: ['sip:bob@ims.example'] }));
    model.add(alice());
    model.add(alice({ impi: 'bob@ims.example', impus: ['sip:bob@ims.example'] }));
    const both = (f: (st: HssStore) => number | number[]) => {
      const got = f(s);
      assert.deepEqual(got, f(model));
      return got;
    };
    for (let round = 0; round < 3; round++) {
      await pastRecheck(); // another connection's commits drop the profile cache: the next profile() reads the row
      s.beginSqnBatch();
      both((st) => st.nextSqn('bob@ims.example')); // no profile read in this batch yet: bob's row is read
      assert.ok(s.profile('alice@ims.example'));
      both((st) => st.nextSqns('alice@ims.example', 2));
      assert.ok(s.profile('bob@ims.example'));
      both((st) => st.nextSqn('alice@ims.example')); // bob's row was read last: alice's is read again
      both((st) => st.nextSqn('bob@ims.example'));
      both((st) => st.resync('bob@ims.example', 0x20 * (10 + round) + 1));
      both((st) => st.nextSqn('bob@ims.example'));
      s.commitSqnBatch();
      // Between batches another connection moves both on: the next batch must see it.
      both((st) => (st === s ? other : st).nextSqns('alice@ims.example', 3));
      both((st) => (st === s ? other : st).nextSqns('bob@ims.example', 2));
    }
    assert.equal(other.get('alice@ims.example')!.sqn, model.get('alice@ims.example')!.sqn);
    assert.equal(other.get('bob@ims.example')!.sqn, model.get('bob@ims.example')!.sqn);
    // Removed inside a batch after its profile was read: the SQN step says unknown, nothing written.
    s.beginSqnBatch();
    await pastRecheck();
    assert.ok(s.profile('bob@ims.example') ?? true);
    assert.equal(s.remove('bob@ims.example'), true);
    assert.equal(
      codeOf(() => s.nextSqn('bob@ims.example')),
      'HSS_UNKNOWN_IMPI',
    );
    s.commitSqnBatch();
  } finally {
    s.close();
    other.close();
    model.close();
  }
});

test('resync sets SEQ_HE = SEQ_MS and never moves backwards', () => {
  const s = new HssStore(':memory:');
  s.add(alice({ sqn: 0x20 * 3 + 4 })); // SEQ 3, IND 4
  const sqnMs = 0x20 * 100 + 9; // SEQ 100, IND 9
  assert.deepEqual(splitSqn(s.resync('alice@ims.example', sqnMs)), { seq: 100, ind: 4 });
  const next = s.nextSqn('alice@ims.example');
  assert.ok(next > sqnMs && splitSqn(next).seq === 101);
  const before = s.get('alice@ims.example')!.sqn;
  assert.equal(s.resync('alice@ims.example', 0x20 * 50), before, 'an older SQN_MS changes nothing');
  assert.equal(s.get('alice@ims.example')!.sqn, before);
  s.close();
});

test('schema: WAL file at user_version 1; a newer schema is refused', () => {
  const file = tmpFile();
  new HssStore(file).close();
  const Sqlite = createRequire(import.meta.url)('better-sqlite3');
  const raw = new Sqlite(file);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(raw.pragma('user_version', { simple: true }), 1);
  raw.pragma('user_version = 99');
  raw.close();
  assert.throws(
    () => new HssStore(file),
    (e) => e instanceof HssStoreError && e.code === 'HSS_SCHEMA',
  );
});
