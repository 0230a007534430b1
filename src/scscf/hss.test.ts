// Hss: vectors the USIM accepts, SQN order, AUTS resynchronisation (test-vectors.md §2 A1/A2, and
// a full lost-SQN round trip), wrong MAC-S, unknown users, IMPI ↔ IMPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqnFloor, Usim, buildAuts, f1Star, f5Star, sqnFromBytes, splitSqn } from '../aka/index.ts';
import { concatBytes, fromHex, toHex, xorBytes } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { HssStore, HssStoreError } from './hss-store.ts';
import { Hss } from './hss.ts';

const SET1 = { k: '465b5ce8b199b49faa5f0a2ee238a6bc', op: 'cdc202d5123e20f62b6d676ac72cb318' };
const SET20 = { k: '90dca4eda45b53cf0f12d7c9c3bc6a89', opc: 'cb9cccc4b9258e6dca4760379fb82581' };
const IMPI = 'alice@ims.example';

function setup(opts: { sqn?: number; indLen?: number; set20?: boolean } = {}) {
  const store = new HssStore(':memory:');
  const keys = opts.set20 ? { k: fromHex(SET20.k), opc: fromHex(SET20.opc) } : { k: fromHex(SET1.k), op: fromHex(SET1.op) };
  store.add({
    impi: IMPI,
    impus: ['sip:alice@ims.example', 'tel:+15550100'],
    amf: fromHex('8000'),
    sqn: opts.sqn,
    indLen: opts.indLen,
    ...keys,
  });
  const usim = new Usim(keys);
  return { store, hss: new Hss(store), usim };
}

test('vectors verify at the USIM: RES = XRES, same CK/IK, AMF from the store', () => {
  const { hss, usim, store } = setup();
  const avs = hss.authenticate(IMPI, 3);
  assert.equal(avs.length, 3);
  for (const av of avs) {
    assert.equal(av.autn.length, 16);
    const r = usim.respond(av.rand, av.autn);
    assert.equal(r.result, 'ok');
    if (r.result !== 'ok') return;
    assert.equal(toHex(r.res), toHex(av.xres));
    assert.equal(toHex(r.ck), toHex(av.ck));
    assert.equal(toHex(r.ik), toHex(av.ik));
    assert.equal(toHex(r.amf), '8000');
  }
  const sqns = avs.map((av) => sqnFromBytes(av.sqn));
  assert.ok(sqns[0]! < sqns[1]! && sqns[1]! < sqns[2]!);
  assert.equal(store.get(IMPI)!.sqn, sqns[2], 'the store holds the last SQN handed out');
  // A replayed vector is refused by the USIM (its SQN is no longer fresh).
  assert.equal(usim.respond(avs[0]!.rand, avs[0]!.autn).result, 'sync_failure');
});

test('SQN strictly increases across authenticate calls; RAND comes from the injected rng', () => {
  const store = new HssStore(':memory:');
  store.add({ impi: IMPI, impus: ['sip:alice@ims.example'], k: fromHex(SET1.k), op: fromHex(SET1.op), amf: fromHex('8000') });
  let calls = 0;
  const hss = new Hss(store, { rng: (n) => new Uint8Array(n).fill(++calls) });
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [av] = hss.authenticate(IMPI);
    assert.equal(toHex(av!.rand), toHex(new Uint8Array(16).fill(i + 1)));
    seen.push(sqnFromBytes(av!.sqn));
  }
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!);
  assert.throws(() => hss.authenticate(IMPI, 0), InputError);
  assert.throws(() => hss.authenticate(IMPI, 33), InputError);
});

test('unknown users: typed error or result, never a crash', () => {
  const { hss } = setup();
  assert.throws(
    () => hss.authenticate('nobody@ims.example'),
    (e) => e instanceof HssStoreError && e.code === 'HSS_UNKNOWN_IMPI',
  );
  assert.deepEqual(hss.resynchronise('nobody@ims.example', new Uint8Array(16), new Uint8Array(14)), { ok: false, reason: 'unknown_user' });
  assert.equal(hss.impusOf('nobody@ims.example'), undefined);
  assert.equal(hss.impiOf('sip:nobody@ims.example'), undefined);
});

test('IMPI ↔ IMPU', () => {
  const { hss } = setup();
  assert.deepEqual(hss.impusOf(IMPI), ['sip:alice@ims.example', 'tel:+15550100']);
  assert.equal(hss.impiOf('tel:+15550100'), IMPI);
  // Lookups hand out copies and wipe their own: a later vector still verifies.
  const { hss: h2, usim } = setup();
  h2.impusOf(IMPI);
  const [av] = h2.authenticate(IMPI);
  assert.equal(usim.respond(av!.rand, av!.autn).result, 'ok');
});

// test-vectors.md §2: K/OPc of TS 35.208 Set 20, MAC-S with AMF* = 0000.
const A1 = { rand: '9fddc72092c6ad036b6e464789315b78', auts: '4f2039392ddd4bb4316ed4a14688', sqnMs: '000000000001' };
const A2 = { rand: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', auts: '43681ad3daf006bcde405a207267', sqnMs: '00000000002a' };

for (const [name, v] of [
  ['A1', A1],
  ['A2', A2],
] as const) {
  test(`resynchronise with AUTS ${name}: SQN_MS ${v.sqnMs}, next SQN above it in SEQ`, () => {
    for (const indLen of [5, 0]) {
      const { hss, store } = setup({ set20: true, indLen });
      const r = hss.resynchronise(IMPI, fromHex(v.rand), fromHex(v.auts));
      assert.ok(r.ok);
      assert.equal(toHex(r.sqnMs), v.sqnMs);
      const ms = splitSqn(Number.parseInt(v.sqnMs, 16), indLen);
      // The store now holds SEQ_HE ≥ SEQ_MS; the next SQN handed out is above SQN_MS in SEQ.
      assert.ok(splitSqn(store.get(IMPI)!.sqn, indLen).seq >= ms.seq);
      const next = sqnFromBytes(hss.authenticate(IMPI)[0]!.sqn);
      assert.ok(next > Number.parseInt(v.sqnMs, 16), `next SQN ${next}`);
      assert.ok(splitSqn(next, indLen).seq > ms.seq);
    }
  });
}

test('resynchronise moves a stored SQN that is behind the USIM (indLen 0: SQN 0 → SQN_MS)', () => {
  const { hss, store } = setup({ set20: true, indLen: 0 });
  assert.equal(store.get(IMPI)!.sqn, 0);
  assert.ok(hss.resynchronise(IMPI, fromHex(A2.rand), fromHex(A2.auts)).ok);
  assert.equal(store.get(IMPI)!.sqn, 0x2a);
  assert.equal(sqnFromBytes(hss.authenticate(IMPI)[0]!.sqn), 0x2b);
});

test('wrong MAC-S ⇒ mac_s_failure and the SQN unchanged (also the AUTN AMF instead of 0000)', () => {
  const { hss, store } = setup({ set20: true, sqn: 0x20 * 4 + 3 });
  const before = store.get(IMPI)!.sqn;
  const flipped = fromHex(A2.auts);
  flipped[13]! ^= 0x01;
  assert.deepEqual(hss.resynchronise(IMPI, fromHex(A2.rand), flipped), { ok: false, reason: 'mac_s_failure' });
  // A1's AUTS under another RAND: SQN_MS decodes to garbage and MAC-S does not verify.
  assert.deepEqual(hss.resynchronise(IMPI, fromHex(A2.rand), fromHex(A1.auts)), { ok: false, reason: 'mac_s_failure' });
  // MAC-S over the subscriber's AMF (8000) instead of AMF* = 0000: Kamailio's local-resync bug.
  const rand = fromHex(A1.rand);
  const [k, opc] = [fromHex(SET20.k), fromHex(SET20.opc)];
  const sqnMs = fromHex('000000001000');
  const wrongAmf = concatBytes(xorBytes(sqnMs, f5Star(k, opc, rand)), f1Star(k, opc, rand, sqnMs, fromHex('8000')));
  assert.deepEqual(hss.resynchronise(IMPI, rand, wrongAmf), { ok: false, reason: 'mac_s_failure' });
  assert.equal(store.get(IMPI)!.sqn, before, 'no failed AUTS moved the SQN');
  assert.ok(hss.resynchronise(IMPI, rand, buildAuts(k, opc, rand, sqnMs)).ok, 'the same SQN_MS with AMF* = 0000 passes');
  assert.notEqual(store.get(IMPI)!.sqn, before);
  assert.throws(() => hss.resynchronise(IMPI, fromHex(A1.rand), new Uint8Array(13)), InputError);
});

test('lost SQN round trip: the USIM is ahead, sends AUTS, the HSS resyncs and the next vector passes', () => {
  const { hss, store } = setup({ sqn: 0x20 * 1000 });
  const usim = new Usim({ k: fromHex(SET1.k), op: fromHex(SET1.op) });
  for (const av of hss.authenticate(IMPI, 3)) assert.equal(usim.respond(av.rand, av.autn).result, 'ok');
  // The HSS is restored from an old backup: its SQN falls back to where it started.
  store.remove(IMPI);
  store.add({ impi: IMPI, impus: ['sip:alice@ims.example'], k: fromHex(SET1.k), op: fromHex(SET1.op), amf: fromHex('8000') });
  const [stale] = hss.authenticate(IMPI);
  const r = usim.respond(stale!.rand, stale!.autn);
  assert.equal(r.result, 'sync_failure');
  if (r.result !== 'sync_failure') return;
  const rs = hss.resynchronise(IMPI, stale!.rand, r.auts);
  assert.ok(rs.ok);
  assert.equal(toHex(rs.sqnMs), toHex(r.sqnMs));
  const [fresh] = hss.authenticate(IMPI);
  assert.equal(usim.respond(fresh!.rand, fresh!.autn).result, 'ok');
});

test('an AUTS built by the aka layer for a simple-rule USIM round-trips', () => {
  const { hss, store } = setup({ set20: true, indLen: 0 });
  const rand = new Uint8Array(16).fill(7);
  const auts = buildAuts(fromHex(SET20.k), fromHex(SET20.opc), rand, 5000);
  assert.ok(hss.resynchronise(IMPI, rand, auts).ok);
  const usim = new Usim({ k: fromHex(SET20.k), opc: fromHex(SET20.opc), freshness: new SqnFloor(5000) });
  const [av] = hss.authenticate(IMPI);
  assert.equal(usim.respond(av!.rand, av!.autn).result, 'ok');
  assert.equal(store.get(IMPI)!.sqn, 5001);
});

test("grouped commits: a profile the cache lacks is read inside the SQN batch; a cached one opens none; another connection's add is seen", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-hss-group-'));
  try {
    const file = join(dir, 'hss.sqlite');
    const store = new HssStore(file);
    store.add({
      impi: IMPI,
      impus: ['sip:alice@ims.example', 'tel:+15550100'],
      amf: fromHex('8000'),
      k: fromHex(SET1.k),
      op: fromHex(SET1.op),
    });
    let begins = 0;
    let commits = 0;
    let inBatch = false;
    const seen: boolean[] = [];
    const counted = Object.assign(Object.create(store) as HssStore, {
      beginSqnBatch: () => (begins++, (inBatch = true), store.beginSqnBatch()),
      commitSqnBatch: () => (commits++, (inBatch = false), store.commitSqnBatch()),
      profile: (impi: string) => (seen.push(inBatch), store.profile(impi)),
      cachedProfile: (impi: string) => store.cachedProfile(impi),
      nextSqns: (impi: string, n: number) => store.nextSqns(impi, n),
    });
    const hss = new Hss(counted, { groupCommits: true });
    assert.deepEqual(hss.impusOf(IMPI), ['sip:alice@ims.example', 'tel:+15550100']);
    assert.deepEqual(seen, [true], 'the miss was read inside the batch');
    assert.equal(begins, 1);
    const av = hss.authenticate(IMPI)[0]!;
    assert.equal(begins, 1, 'the vector joins the same batch');
    await new Promise((r) => setImmediate(r));
    assert.equal(commits, 1);
    const other = new HssStore(file);
    assert.equal(other.get(IMPI)!.sqn, sqnFromBytes(av.sqn), 'the SQN was committed');
    // Cached now: a lookup opens no transaction.
    assert.deepEqual(hss.impusOf(IMPI), ['sip:alice@ims.example', 'tel:+15550100']);
    assert.equal(begins, 1);
    // Unknown IMPI: read in a batch too, answered undefined / HSS_UNKNOWN_IMPI; the empty batch commits.
    assert.equal(hss.impusOf('nobody@ims.example'), undefined);
    assert.throws(
      () => hss.authenticate('nobody@ims.example'),
      (e: unknown) => e instanceof HssStoreError && e.code === 'HSS_UNKNOWN_IMPI',
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(begins, commits);
    // Another connection's add (after the cache's recheck interval) is seen.
    other.add({ impi: 'bob@ims.example', impus: ['sip:bob@ims.example'], amf: fromHex('8000'), k: fromHex(SET1.k), op: fromHex(SET1.op) });
    await new Promise((r) => setTimeout(r, 15));
    assert.deepEqual(hss.impusOf('bob@ims.example'), ['sip:bob@ims.example']);
    await new Promise((r) => setImmediate(r));
    store.close();
    other.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('grouped commits: the vectors of one turn share one commit; another connection sees their SQNs only after it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-hss-group-'));
  try {
    const file = join(dir, 'hss.sqlite');
    const store = new HssStore(file);
    store.add({ impi: IMPI, impus: ['sip:alice@ims.example'], amf: fromHex('8000'), k: fromHex(SET1.k), op: fromHex(SET1.op) });
    const other = new HssStore(file);
    const hss = new Hss(store, { groupCommits: true });
    let now = false;
    hss.afterCommit(() => (now = true));
    assert.ok(now, 'nothing waits: called back at once');
    const sqns = [hss.authenticate(IMPI)[0]!, hss.authenticate(IMPI)[0]!].map((v) => sqnFromBytes(v.sqn));
    assert.ok(sqns[1]! > sqns[0]!);
    const results: (Error | undefined | 'pending')[] = ['pending'];
    hss.afterCommit((err) => (results[0] = err));
    assert.equal(results[0], 'pending', 'waits for the commit');
    assert.equal(other.get(IMPI)!.sqn, 0, 'not committed yet');
    await new Promise((r) => setImmediate(r));
    assert.equal(results[0], undefined);
    assert.equal(other.get(IMPI)!.sqn, sqns[1], 'committed at the end of the turn');
    // Without groupCommits every SQN is committed before authenticate returns.
    const plain = new Hss(store);
    const s3 = sqnFromBytes(plain.authenticate(IMPI)[0]!.sqn);
    assert.equal(other.get(IMPI)!.sqn, s3);
    store.close();
    other.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
