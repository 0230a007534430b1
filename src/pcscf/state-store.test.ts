// The P-CSCF state store, both implementations against the same checks (SQLite here, PostgreSQL
// against a real server from test/support/postgres.ts): rows per node, sets replaced with their
// registration, marks written in batches, the file created 0600, keys sealed with AES-256-GCM and
// bound to their row.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePair } from '../../test/support/ims-fixture.ts';
import { startPostgres } from '../../test/support/postgres.ts';
import { decodeKeys, encodeKeys, restoreSaSet, saSetKeys, saSetRecord } from '../ipsec/sa-set-record.ts';
import { aesGcmSealer, parseStateKey, PLAIN_KEYS, sealerFrom } from './state-keys.ts';
import { setKeyOf, type PcscfStateStore, type StoredRegistration } from './state-store.ts';
import { PgStateStore } from './state-store-pg.ts';
import { SqliteStateStore } from './state-store-sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'imsec-state-'));
const server = await startPostgres();
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (typeof server !== 'string') await server.stop();
});

const NODE = '192.0.2.20:5060';
const KEY = new Uint8Array(32).fill(7);

let spi = 0x20000;
function registration(impi: string, sealer = PLAIN_KEYS): { stored: StoredRegistration; ik: Uint8Array } {
  const { pcscf } = makePair({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel' });
  pcscf.apply('authenticated');
  // The fixture's SPIs are fixed; the store key must be unique, as the P-CSCF's SPIs are.
  const key = setKeyOf(NODE, spi++, spi++);
  return {
    ik: saSetKeys(pcscf).ikEsp,
    stored: {
      record: {
        v: 1,
        impi,
        expiresAt: 123,
        lifetime: 456,
        bound: { impus: [`sip:${impi}`], serviceRoute: ['<sip:orig@192.0.2.30;lr>'] },
        encap: { address: '192.0.2.10', port: 4501 },
      },
      sets: [
        {
          key,
          record: saSetRecord(pcscf),
          keys: sealer.seal(encodeKeys(saSetKeys(pcscf)), key),
          marks: { SA1: 1, SA2: 1025, SA3: 1024, SA4: 0 },
        },
      ],
    },
  };
}

function rules(store: PcscfStateStore): void {
  assert.equal(store.node(NODE), undefined);
  store.setNode(NODE, { portC: 5062, portS: 5064 });
  assert.deepEqual(store.node(NODE), { portC: 5062, portS: 5064 });
  const a = registration('alice@example.org');
  const b = registration('bob@example.org');
  store.put(NODE, a.stored);
  store.put(NODE, b.stored);
  store.put('198.51.100.1:5060', registration('carol@example.org').stored);
  const loaded = store.load(NODE);
  assert.deepEqual(loaded.map((r) => r.record.impi).sort(), ['alice@example.org', 'bob@example.org']);
  const la = loaded.find((r) => r.record.impi === 'alice@example.org')!;
  assert.deepEqual(la.record, a.stored.record);
  assert.equal(la.sets.length, 1);
  assert.deepEqual(la.sets[0]!.marks, { SA1: 1, SA2: 1025, SA3: 1024, SA4: 0 });
  const set = restoreSaSet(la.sets[0]!.record, decodeKeys(PLAIN_KEYS.open(la.sets[0]!.keys, la.sets[0]!.key)), la.sets[0]!.marks);
  assert.deepEqual(saSetKeys(set).ikEsp, a.ik);
  assert.equal(set.state, 'current');
  // Marks in one batch; a mark of a set no longer stored is ignored.
  store.writeMarks([
    { setKey: la.sets[0]!.key, sa: 'SA1', mark: 9 },
    { setKey: la.sets[0]!.key, sa: 'SA2', mark: 2049 },
    { setKey: 'gone|1|2', sa: 'SA1', mark: 5 },
  ]);
  store.writeMarks([{ setKey: la.sets[0]!.key, sa: 'SA4', mark: 3 }]);
  assert.deepEqual(store.load(NODE).find((r) => r.record.impi === 'alice@example.org')!.sets[0]!.marks, {
    SA1: 9,
    SA2: 2049,
    SA3: 1024,
    SA4: 3,
  });
  // put replaces the sets of that registration (an old one gone, a new current one).
  const again = registration('alice@example.org');
  store.put(NODE, again.stored);
  const sets = store.load(NODE).find((r) => r.record.impi === 'alice@example.org')!.sets;
  assert.deepEqual(
    sets.map((s) => s.key),
    again.stored.sets.map((s) => s.key),
  );
  store.remove(NODE, 'alice@example.org');
  assert.deepEqual(
    store.load(NODE).map((r) => r.record.impi),
    ['bob@example.org'],
  );
  assert.equal(store.load('198.51.100.1:5060').length, 1);
}

test('SQLite: rows per node, sets replaced with their registration, marks in batches; the file is 0600', () => {
  const path = join(dir, 'state.db');
  const store = new SqliteStateStore(path);
  try {
    rules(store);
  } finally {
    store.close();
  }
  assert.equal(statSync(path).mode & 0o777, 0o600);
  // Reopening migrates nothing and keeps the rows.
  const again = new SqliteStateStore(path);
  assert.equal(again.load(NODE).length, 1);
  again.close();
});

test('PostgreSQL: the same rules; the migration at start is idempotent', { skip: typeof server === 'string' ? server : false }, () => {
  const url = (server as Exclude<typeof server, string>).database('pcscf_state');
  const store = new PgStateStore(url);
  try {
    rules(store);
  } finally {
    store.close();
  }
  const again = new PgStateStore(url);
  assert.equal(again.load(NODE).length, 1);
  again.close();
});

test('keys sealed with AES-256-GCM: not in the file, bound to their row, wrong key and no key refused', () => {
  const path = join(dir, 'sealed.db');
  const sealer = aesGcmSealer(KEY);
  const store = new SqliteStateStore(path);
  const { stored, ik } = registration('dave@example.org', sealer);
  store.put(NODE, stored);
  store.close();
  const file = readFileSync(path);
  const wal = (() => {
    try {
      return readFileSync(`${path}-wal`);
    } catch {
      return Buffer.alloc(0);
    }
  })();
  assert.equal(Buffer.concat([file, wal]).includes(Buffer.from(ik)), false, 'IK_ESP in clear in the store');
  const s = new SqliteStateStore(path);
  const row = s.load(NODE)[0]!.sets[0]!;
  s.close();
  assert.deepEqual(decodeKeys(sealer.open(row.keys, row.key)).ikEsp, ik);
  assert.throws(() => sealer.open(row.keys, 'another|1|2'), /do not open/);
  assert.throws(() => aesGcmSealer(new Uint8Array(32).fill(8)).open(row.keys, row.key), /do not open/);
  assert.throws(() => PLAIN_KEYS.open(row.keys, row.key), /encrypted; give the key/);
  // A plain store read with a key still opens (encryption turned on later).
  const plain = PLAIN_KEYS.seal(new Uint8Array([1, 2, 3]), 'k');
  assert.deepEqual(sealer.open(plain, 'k'), new Uint8Array([1, 2, 3]));
});

test('the state key: hex or base64 of 32 octets, from a file or IMSEC_STATE_KEY', () => {
  const hex = '11'.repeat(32);
  assert.deepEqual(parseStateKey(hex, 'x'), new Uint8Array(32).fill(0x11));
  assert.deepEqual(parseStateKey(Buffer.alloc(32, 0x22).toString('base64'), 'x'), new Uint8Array(32).fill(0x22));
  assert.throws(() => parseStateKey('abcd', '--state-key-file'), /--state-key-file: the state key must be/);
  assert.equal(sealerFrom({ env: {} }).encrypted, false);
  assert.equal(sealerFrom({ env: { IMSEC_STATE_KEY: hex } }).encrypted, true);
  assert.throws(() => sealerFrom({ file: join(dir, 'missing') }), /cannot read/);
});
