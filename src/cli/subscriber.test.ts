// `imsec subscriber add|list|remove` end to end through bin/imsec.mjs (each run costs ~0.5 s, so
// few runs); the store is inspected directly between them.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HssStore } from '../scscf/hss-store.ts';
import { toHex } from '../util/bytes.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'imsec-cli-sub-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DB = join(dir, 'hss.sqlite');

// TS 35.208 Test Set 1.
const K = '465b5ce8b199b49faa5f0a2ee238a6bc';
const OP = 'cdc202d5123e20f62b6d676ac72cb318';
const OPC = 'cd63cb71954a9f4e48a5994e37a02baf';

function imsec(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/imsec.mjs', 'subscriber', ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, IMSEC_HSS_DB: '', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertNoKeys(text: string): void {
  for (const secret of [K, OP, OPC]) assert.ok(!text.toLowerCase().includes(secret.slice(0, 12)), `key material in output: ${text}`);
}

test('add (OP → OPc, $IMSEC_HSS_DB), list, remove', () => {
  const add = imsec(
    [
      'add',
      '--impi',
      'alice@ims.example',
      '--impu',
      'sip:alice@ims.example',
      '--impu',
      'tel:+15550100',
      '--k',
      K,
      '--op',
      OP,
      '--sqn',
      '3f',
      '--json',
    ],
    { IMSEC_HSS_DB: DB },
  );
  assert.equal(add.status, 0, add.stderr);
  const out = JSON.parse(add.stdout);
  assert.equal(out.impi, 'alice@ims.example');
  assert.deepEqual(out.impus, ['sip:alice@ims.example', 'tel:+15550100']);
  assert.equal(out.amf, '8000');
  assert.equal(out.sqn, '00000000003f');
  assertNoKeys(add.stdout + add.stderr);

  const s = new HssStore(DB);
  assert.equal(toHex(s.get('alice@ims.example')!.opc), OPC, 'only OPc is stored, computed from OP');
  s.add({
    impi: 'bob@ims.example',
    impus: ['sip:bob@ims.example'],
    k: new Uint8Array(16),
    opc: new Uint8Array(16),
    amf: new Uint8Array([0x80, 0]),
  });
  s.close();

  const list = imsec(['list', '--db', DB]);
  assert.equal(list.status, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0]!, /^impi\s+impus\s+amf\s+sqn$/);
  assert.match(lines[1]!, /^alice@ims\.example\s+sip:alice@ims\.example tel:\+15550100\s+8000\s+00000000003f$/);
  assert.match(lines[2]!, /^bob@ims\.example\s/);
  assertNoKeys(list.stdout);

  const rm = imsec(['remove', '--db', DB, '--impi', 'bob@ims.example']);
  assert.equal(rm.status, 0, rm.stderr);
  const json = imsec(['list', '--db', DB, '--json']);
  assert.equal(json.status, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as { impi: string; k?: unknown; opc?: unknown }[];
  assert.deepEqual(
    rows.map((r) => r.impi),
    ['alice@ims.example'],
  );
  assert.ok(rows.every((r) => r.k === undefined && r.opc === undefined));
});

test('bad input exits 2 without echoing keys; removing an unknown IMPI exits 1', () => {
  const base = ['add', '--db', DB, '--impu', 'sip:carol@ims.example', '--k', K];
  const s0 = new HssStore(DB);
  s0.add({
    impi: 'dup@ims.example',
    impus: ['sip:dup@ims.example'],
    k: new Uint8Array(16),
    opc: new Uint8Array(16),
    amf: new Uint8Array(2),
  });
  s0.close();
  const dup = imsec(['add', '--db', DB, '--impi', 'dup@ims.example', '--impu', 'sip:dup2@ims.example', '--k', K, '--opc', OPC]);
  assert.equal(dup.status, 2);
  assert.match(dup.stderr, /already exists/);

  const badHex = imsec([
    'add',
    '--db',
    DB,
    '--impi',
    'carol@ims.example',
    '--impu',
    'sip:carol@ims.example',
    '--k',
    K.slice(0, 31) + 'z',
    '--opc',
    OPC,
  ]);
  assert.equal(badHex.status, 2);
  assert.match(badHex.stderr, /--k: not an even-length hex string/);
  assertNoKeys(badHex.stderr);

  const both = imsec([...base, '--impi', 'carol@ims.example', '--op', OP, '--opc', OPC]);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /exactly one of --op and --opc/);

  const unknown = imsec(['remove', '--db', DB, '--impi', 'nobody@ims.example']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /no subscriber nobody@ims\.example/);

  const s = new HssStore(DB);
  assert.equal(s.get('carol@ims.example'), undefined, 'nothing added by the failed runs');
  s.close();
});

test('add --count: a range in one transaction, all or none', () => {
  const db = join(dir, 'range.sqlite');
  const r = imsec([
    'add',
    '--db',
    db,
    '--impi',
    '00101{n:10}@ims.example',
    '--impu',
    'sip:00101{n:10}@ims.example',
    '--impu',
    'tel:+1555{n:7}',
    '--first',
    '5',
    '--count',
    '1000',
    '--k',
    K,
    '--op',
    OP,
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.added, 1000);
  assert.equal(out.first, '001010000000005@ims.example');
  assert.equal(out.last, '001010000001004@ims.example');
  assertNoKeys(r.stdout + r.stderr);
  // Overlapping the range by one: the whole second batch is refused, nothing of it stays.
  const again = imsec([
    'add',
    '--db',
    db,
    '--impi',
    '00101{n:10}@ims.example',
    '--impu',
    'sip:00101{n:10}@ims.example',
    '--first',
    '1',
    '--count',
    '5',
    '--k',
    K,
    '--opc',
    OPC,
  ]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /001010000000005@ims\.example already exists/);
  const s = new HssStore(db);
  try {
    assert.equal(s.count(), 1000);
    const x = s.get('001010000000500@ims.example')!;
    assert.deepEqual(x.impus, ['sip:001010000000500@ims.example', 'tel:+15550000500']);
    assert.equal(toHex(x.opc), OPC);
  } finally {
    s.close();
  }
});
