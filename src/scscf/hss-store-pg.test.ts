// The PostgreSQL HSS store against a real server (test/support/postgres.ts): the SQLite store's
// rules, the migration at start, and SQN allocation shared by several processes — 10 000 vectors
// drawn by 4 processes at once are all distinct and are exactly the Annex C sequence, and a
// resynchronisation by one process is what the others continue from.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nextSqnAfter, splitSqn, sqnFromBytes } from '../aka/index.ts';
import { fromHex } from '../util/bytes.ts';
import { startPostgres } from '../../test/support/postgres.ts';
import { HssStoreError } from './hss-store.ts';
import { PgHssStore } from './hss-store-pg.ts';
import { SyncPg } from '../util/pg-sync.ts';
import { Hss } from './hss.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const server = await startPostgres();
const skip = typeof server === 'string' ? server : false;
after(async () => {
  if (typeof server !== 'string') await server.stop();
});
const srv = () => (typeof server === 'string' ? assert.fail(server) : server);

const K = fromHex('465b5ce8b199b49faa5f0a2ee238a6bc');
const OPC = fromHex('cd63cb71954a9f4e48a5994e37a02baf');
const AMF = fromHex('8000');
const sub = (impi: string, impus = [`sip:${impi}`]) => ({ impi, impus, k: K, opc: OPC, amf: AMF });

test("the SQLite store's rules: add, look up, list, duplicates, remove; the migration runs once", { skip }, () => {
  const url = srv().database('rules');
  const a = new PgHssStore(url);
  const b = new PgHssStore(url); // a second start: the schema is there, nothing is redone
  try {
    const s = a.add({ ...sub('alice@ims.example', ['sip:alice@ims.example', 'tel:+15551234']), sqn: 0x20 });
    assert.deepEqual(s.impus, ['sip:alice@ims.example', 'tel:+15551234']);
    assert.deepEqual(b.get('alice@ims.example')!.k, K, 'K round-trips through BYTEA');
    assert.deepEqual(b.get('alice@ims.example')!.opc, OPC);
    assert.equal(b.findByImpu('tel:+15551234')!.impi, 'alice@ims.example');
    assert.equal(b.findByImpu('tel:+1')?.impi, undefined);
    assert.equal(b.get('alice@ims.example')!.sqn, 0x20);
    assert.throws(
      () => b.add(sub('alice@ims.example')),
      (e) => e instanceof HssStoreError && e.code === 'HSS_DUPLICATE_IMPI',
    );
    assert.throws(
      () => b.add(sub('bob@ims.example', ['tel:+15551234'])),
      (e) => e instanceof HssStoreError && e.code === 'HSS_DUPLICATE_IMPU',
    );
    assert.equal(b.get('bob@ims.example'), undefined, 'the failed add left nothing behind');
    assert.throws(
      () => b.add({ ...sub('x@y'), k: new Uint8Array(3) }),
      (e) => e instanceof HssStoreError && e.code === 'HSS_BAD_SUBSCRIBER',
    );
    assert.equal(a.addMany([sub('c@x'), sub('b@x')]), 2);
    assert.throws(() => a.addMany([sub('d@x'), sub('c@x')]), HssStoreError);
    assert.equal(a.get('d@x'), undefined, 'addMany is all or none');
    assert.deepEqual(
      a.list().map((x) => x.impi),
      ['alice@ims.example', 'b@x', 'c@x'],
    );
    assert.equal(a.count(), 3);
    assert.throws(
      () => a.nextSqn('nobody@x'),
      (e) => e instanceof HssStoreError && e.code === 'HSS_UNKNOWN_IMPI',
    );
    assert.equal(a.remove('c@x'), true);
    assert.equal(a.remove('c@x'), false);
    assert.equal(a.findByImpu('sip:c@x'), undefined, 'IMPUs go with their subscriber');
    assert.ok(!JSON.stringify(a.list()).includes('465b5ce8'), 'no K in JSON');
  } finally {
    a.close();
    b.close();
  }
});

test('a store newer than this imsec is refused, not altered', { skip }, () => {
  const url = srv().database('newer');
  new PgHssStore(url).close();
  const s = new PgHssStore(url);
  // Pretend a later imsec migrated it (through the store's own connection is not possible: use SQL).
  s.close();
  const bump = spawnSql(url, `UPDATE imsec_schema SET version = 99 WHERE name = 'hss'`);
  assert.equal(bump, 0);
  assert.throws(
    () => new PgHssStore(url),
    (e) => e instanceof HssStoreError && e.code === 'HSS_SCHEMA',
  );
});

const nextTurn = () => new Promise((r) => setImmediate(r));

test(
  "profile cache: served again until a subscriber changes anywhere (another core's change from the next turn); SQNs do not drop it",
  { skip },
  async () => {
    const url = srv().database('profiles');
    const a = new PgHssStore(url);
    const b = new PgHssStore(url);
    try {
      a.add(sub('alice@ims.example', ['sip:alice@ims.example', 'tel:+15550100']));
      const p1 = a.profile('alice@ims.example')!;
      assert.deepEqual(p1.impus, ['sip:alice@ims.example', 'tel:+15550100']);
      assert.deepEqual(p1.k, K);
      assert.equal(a.profile('alice@ims.example'), p1, 'served from the cache');
      b.nextSqns('alice@ims.example', 3);
      await nextTurn();
      assert.equal(a.profile('alice@ims.example'), p1, "another core's SQN commit keeps it (SQNs are not in the profile)");
      // Another core removes alice and adds her again with another K and IMPU set.
      b.remove('alice@ims.example');
      b.add({ ...sub('alice@ims.example', ['sip:alice2@ims.example']), k: new Uint8Array(16) });
      await nextTurn();
      const p2 = a.profile('alice@ims.example')!;
      assert.notEqual(p2, p1);
      assert.deepEqual(p2.k, new Uint8Array(16));
      assert.deepEqual(p2.impus, ['sip:alice2@ims.example']);
      b.add(sub('bob@ims.example'));
      await nextTurn();
      assert.notEqual(a.profile('alice@ims.example'), p2, 'any add elsewhere drops the cache');
      a.remove('alice@ims.example');
      assert.equal(a.profile('alice@ims.example'), undefined, 'own remove: at once');
      const c = new PgHssStore(url, { profileCache: 0 });
      assert.notEqual(c.profile('bob@ims.example'), c.profile('bob@ims.example'), 'profileCache 0: none kept');
      c.close();
    } finally {
      a.close();
      b.close();
    }
  },
);

test(
  'grouped SQN commits: one transaction per batch, invisible to others until its commit; a failed statement fails the commit',
  { skip, timeout: 60_000 },
  async () => {
    const url = srv().database('batch');
    const setup = new PgHssStore(url);
    setup.add(sub('alice@ims.example'));
    setup.add(sub('bob@ims.example'));
    setup.close();
    // Lock waits end in an error after 300 ms (set for the database: every new connection gets it).
    assert.equal(spawnSql(url, `ALTER DATABASE batch SET lock_timeout = '300ms'`), 0);
    const s = new PgHssStore(url);
    const other = new PgHssStore(url);
    const locker = new SyncPg(url);
    try {
      // Through the Hss as `imsec core` runs it: the vectors of one turn, one commit, then the callbacks.
      const hss = new Hss(s, { groupCommits: true });
      const v = [
        hss.authenticate('alice@ims.example')[0]!,
        hss.authenticate('bob@ims.example')[0]!,
        hss.authenticate('alice@ims.example')[0]!,
      ];
      let committed: Error | undefined | 'pending' = 'pending';
      hss.afterCommit((err) => (committed = err));
      assert.equal(committed, 'pending');
      assert.equal(other.get('alice@ims.example')!.sqn, 0, 'not visible before the commit');
      await nextTurn();
      assert.equal(committed, undefined);
      assert.equal(other.get('alice@ims.example')!.sqn, sqnFromBytes(v[2]!.sqn));
      assert.equal(other.get('bob@ims.example')!.sqn, sqnFromBytes(v[1]!.sqn));
      assert.equal(sqnFromBytes(v[2]!.sqn), nextSqnAfter(sqnFromBytes(v[0]!.sqn), 5));

      // A statement of the batch fails (bob's row is locked elsewhere: lock timeout). PostgreSQL would
      // answer a COMMIT with a silent rollback; the store refuses it, so no vector of the batch is used.
      const before = other.get('alice@ims.example')!.sqn;
      locker.query('BEGIN');
      locker.query(`SELECT 1 FROM subscribers WHERE impi = 'bob@ims.example' FOR UPDATE`);
      s.beginSqnBatch();
      s.nextSqn('alice@ims.example');
      assert.throws(() => s.nextSqn('bob@ims.example'), /lock timeout/);
      assert.throws(() => s.commitSqnBatch(), /lock timeout/);
      locker.query('ROLLBACK');
      assert.equal(other.get('alice@ims.example')!.sqn, before, "the failed batch's SQNs were rolled back");
      // The store goes on: the next batch commits.
      s.beginSqnBatch();
      const next = s.nextSqn('alice@ims.example');
      s.commitSqnBatch();
      assert.equal(next, nextSqnAfter(before, 5));
      assert.equal(other.get('alice@ims.example')!.sqn, next);
    } finally {
      locker.close();
      s.close();
      other.close();
    }
  },
);

function spawnSql(url: string, sql: string): number {
  const code = `const { SyncPg } = await import(${JSON.stringify(`${REPO}src/util/pg-sync.ts`)}); const c = new SyncPg(${JSON.stringify(url)}); c.query(${JSON.stringify(sql)}); c.close();`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, encoding: 'utf8' });
  return r.status ?? -1;
}

/** A child process with its own connection: prints "ready", waits for "go", then runs `body` (may await). */
function child(url: string, body: string, hssOptions = '{}'): { ready: Promise<void>; go: () => void; done: Promise<string> } {
  const code = `
const { PgHssStore } = await import(${JSON.stringify(`${REPO}src/scscf/hss-store-pg.ts`)});
const { Hss } = await import(${JSON.stringify(`${REPO}src/scscf/hss.ts`)});
const { sqnFromBytes } = await import(${JSON.stringify(`${REPO}src/aka/index.ts`)});
const store = new PgHssStore(${JSON.stringify(url)});
const hss = new Hss(store, ${hssOptions});
process.stdout.write('ready\\n');
process.stdin.once('data', async () => {
  const out = await (async () => { ${body} })();
  store.close();
  process.stdout.write(JSON.stringify(out) + '\\n');
  process.exit(0);
});`;
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout.on('data', (d) => {
    out += d;
    if (out.startsWith('ready\n')) onReady();
  });
  const done = new Promise<string>((resolve, reject) =>
    p.on('exit', (c) => (c === 0 ? resolve(out.slice(6).trim()) : reject(new Error(`child exited ${c}: ${err}`)))),
  );
  return { ready, go: () => p.stdin.write('go\n'), done };
}

test(
  '4 processes draw 10 000 vectors at once: every SQN distinct, together exactly the Annex C sequence, each process in order',
  { skip, timeout: 300_000 },
  async () => {
    const url = srv().database('race');
    const s = new PgHssStore(url);
    const start = 0x1234 << 5;
    s.add({ ...sub('race@ims.example'), sqn: start });
    s.close();
    const PER = 2500;
    const kids = Array.from({ length: 4 }, () =>
      child(
        url,
        `const a = []; for (let i = 0; i < ${PER}; i++) a.push(sqnFromBytes(hss.authenticate('race@ims.example', 1)[0].sqn)); return a;`,
      ),
    );
    await Promise.all(kids.map((k) => k.ready));
    for (const k of kids) k.go();
    const drawn = (await Promise.all(kids.map((k) => k.done))).map((o) => JSON.parse(o) as number[]);
    const all = drawn.flat();
    assert.equal(all.length, 4 * PER);
    assert.equal(new Set(all).size, all.length, 'no SQN issued twice');
    // The Annex C generator from the provisioned value, 10 000 steps: SEQ + 1 each time, IND cycling.
    const expected: number[] = [];
    for (let q = start, i = 0; i < all.length; i++) expected.push((q = nextSqnAfter(q, 5)));
    const index = new Map(expected.map((q, i) => [q, i]));
    assert.ok(
      all.every((q) => index.has(q)),
      'only values of the sequence',
    );
    for (const mine of drawn) {
      for (let i = 1; i < mine.length; i++)
        assert.ok(index.get(mine[i]!)! > index.get(mine[i - 1]!)!, 'each process sees the sequence move forward');
    }
    // They really ran interleaved (otherwise this test would prove nothing about the lock).
    const firsts = drawn.map((m) => index.get(m[0]!)!).sort((a, b) => a - b);
    assert.ok(firsts[3]! < all.length - PER, `the processes overlapped (first draws at ${firsts.join(', ')})`);
    const after = new PgHssStore(url);
    assert.equal(after.get('race@ims.example')!.sqn, expected.at(-1), 'the stored SQN is the last one issued');
    after.close();
  },
);

test(
  'grouped commits across processes: 2 cores batching 20 vectors per turn and 2 drawing one at a time never share an SQN',
  { skip, timeout: 300_000 },
  async () => {
    const url = srv().database('race_grouped');
    const s = new PgHssStore(url);
    s.add({ ...sub('race@ims.example'), sqn: 0 });
    s.close();
    // A batching core only uses its vectors once afterCommit said they are durable.
    const batched = `const a = [];
      for (let turn = 0; turn < 40; turn++) {
        const v = [];
        for (let i = 0; i < 20; i++) v.push(sqnFromBytes(hss.authenticate('race@ims.example', 1)[0].sqn));
        const err = await new Promise((r) => hss.afterCommit(r));
        if (err) throw err;
        a.push(...v);
      }
      return a;`;
    const single = `const a = []; for (let i = 0; i < 800; i++) a.push(sqnFromBytes(hss.authenticate('race@ims.example', 1)[0].sqn)); return a;`;
    const kids = [
      child(url, batched, '{ groupCommits: true }'),
      child(url, batched, '{ groupCommits: true }'),
      child(url, single),
      child(url, single),
    ];
    await Promise.all(kids.map((k) => k.ready));
    for (const k of kids) k.go();
    const drawn = (await Promise.all(kids.map((k) => k.done))).map((o) => JSON.parse(o) as number[]);
    const all = drawn.flat();
    assert.equal(all.length, 4 * 800);
    assert.equal(new Set(all).size, all.length, 'no SQN issued twice');
    const expected: number[] = [];
    for (let q = 0, i = 0; i < all.length; i++) expected.push((q = nextSqnAfter(q, 5)));
    assert.deepEqual(
      [...all].sort((a, b) => a - b),
      expected,
      'together exactly the Annex C sequence: nothing committed was lost, nothing skipped',
    );
    const after = new PgHssStore(url);
    assert.equal(after.get('race@ims.example')!.sqn, expected.at(-1));
    after.close();
  },
);

test('a resynchronisation in one process is what the next vector in another starts from', { skip, timeout: 120_000 }, async () => {
  const url = srv().database('resync');
  const here = new PgHssStore(url);
  try {
    here.add({ ...sub('bob@ims.example'), sqn: 0 });
    assert.equal(splitSqn(here.nextSqn('bob@ims.example'), 5).seq, 1);
    const sqnMs = (5000 << 5) | 7; // the USIM is far ahead: SEQ_MS = 5000
    const k = child(url, `return store.resync('bob@ims.example', ${sqnMs});`);
    await k.ready;
    k.go();
    await k.done;
    const hss = new Hss(here);
    const [v] = hss.authenticate('bob@ims.example', 1);
    assert.equal(splitSqn(sqnFromBytes(v!.sqn), 5).seq, 5001, 'SEQ_MS + 1 (Annex C.3.4), although another process resynchronised');
  } finally {
    here.close();
  }
});

test(
  'imsec core --db postgres://…: the core serves from PostgreSQL; a database that will not open is exit 2 without the password',
  { skip, timeout: 60_000 },
  async () => {
    const { runCore } = await import('../cli/core.ts');
    const { openHssDb } = await import('../cli/hss-db.ts');
    const { InputError } = await import('../util/errors.ts');
    const url = srv().database('core');
    const s = openHssDb(url, true);
    s.add(sub('carol@ims.example'));
    s.close();
    const lines: string[] = [];
    const ac = new AbortController();
    await runCore(
      { listen: '127.0.0.1:0', domain: 'ims.example', db: url, jsonEvents: true },
      { signal: ac.signal, out: (l) => lines.push(l), onReady: () => ac.abort() },
    );
    assert.equal(JSON.parse(lines[0]!).subscribers, 1);
    assert.throws(
      () => openHssDb('postgres://imsec:s3cret@/nope?host=/nonexistent-imsec-dir&port=1', true),
      (e) =>
        e instanceof InputError && /--db: cannot open postgres:\/\/imsec:\[redacted\]@/.test(e.message) && !e.message.includes('s3cret'),
    );
  },
);
