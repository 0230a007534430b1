// The S-CSCF registrar over a MemoryNetwork in virtual time (24.229 §5.4.1.2, RFC 3310): REGISTERs
// built as the P-CSCF forwards them, the UE's answers computed with the aka layer's Usim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getParam, parseDigestHeaderOrThrow, parseNonceOrThrow } from '../aka/index.ts';
import { newCallId, parseViaOrThrow } from '../sip/index.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { HssStore, type SubscriberStore } from './hss-store.ts';
import { Hss } from './hss.ts';
import { ALICE, BOB, DOMAIN, PATH, SCSCF, setup, usimOf } from './_test-helpers.ts';

test('initial registration: 401 with realm/nonce/algorithm/qop/ik/ck, then 200 with Contact, Expires, Path, Service-Route, P-Associated-URI', async () => {
  const { scscf, pcscf, ue, events, clock } = await setup();
  const usim = usimOf(ALICE);
  const callId = newCallId();
  const first = ue.register({ callId, expires: 3600 });
  const c = await pcscf.send(first);
  assert.equal(c.status, 401);
  assert.equal(c.reason, 'Unauthorized');
  const www = c.headers.get('WWW-Authenticate')!;
  assert.match(
    www,
    /^Digest realm="ims\.example", nonce="[A-Za-z0-9+/]{43}=", algorithm=AKAv1-MD5, qop="auth", ik="[0-9a-f]{32}", ck="[0-9a-f]{32}"$/,
  );
  const h = parseDigestHeaderOrThrow(www);
  const { rand, autn } = parseNonceOrThrow(getParam(h, 'nonce')!);
  const r = usimOf(ALICE).respond(rand, autn);
  assert.equal(r.result, 'ok', 'a fresh USIM accepts the AUTN');
  if (r.result !== 'ok') return;
  assert.equal(getParam(h, 'ik'), toHex(r.ik));
  assert.equal(getParam(h, 'ck'), toHex(r.ck));
  // RFC 3261 §8.2.6.2: both Vias, From, Call-ID and CSeq copied; To gains a tag.
  assert.deepEqual(
    c.headers.getAll('Via').map((v) => parseViaOrThrow(v).host),
    ['10.0.0.4', '10.0.0.2'],
  );
  assert.equal(c.headers.get('Call-ID'), callId);
  assert.equal(c.headers.get('CSeq'), '1 REGISTER');
  assert.match(c.headers.get('To')!, /^<sip:alice@ims\.example>;tag=\w+$/);
  assert.equal(scscf.pendingChallenges, 1);

  const ok = await pcscf.send(ue.register({ callId, cseq: 2, expires: 3600, auth: ue.answer(c, usim), integrityProtected: 'yes' }));
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('Contact'), '<sip:alice@10.0.0.2:5062>;expires=3600');
  assert.equal(ok.headers.get('Expires'), '3600');
  assert.deepEqual(ok.headers.getAll('Path'), [PATH]);
  assert.equal(ok.headers.get('Service-Route'), `<sip:orig@${SCSCF.address}:${SCSCF.port};lr>`);
  assert.equal(ok.headers.raw('P-Associated-URI')[0], '<sip:alice@ims.example>, <tel:+15550100>');
  assert.equal(ok.headers.get('CSeq'), '2 REGISTER');
  assert.equal(scscf.pendingChallenges, 0, 'the challenge is used up');

  // The implicit registration set: every IMPU of the IMPI is bound to the Contact along the Path.
  assert.deepEqual([...scscf.bindings.keys()], ALICE.impus);
  assert.deepEqual(scscf.bindings.get('tel:+15550100'), {
    impu: 'tel:+15550100',
    impi: ALICE.impi,
    contact: 'sip:alice@10.0.0.2:5062',
    path: [PATH],
    expiresAt: clock.now() + 3600_000,
    callId,
  });
  assert.deepEqual(
    events.map((e) => e.type),
    ['challenge', 'registered'],
  );
  assert.deepEqual(events[1], {
    type: 'registered',
    impi: ALICE.impi,
    impus: ALICE.impus,
    contact: 'sip:alice@10.0.0.2:5062',
    expires: 3600,
    refresh: false,
  });
  assert.equal(scscf.counters.registrations, 1);
  assert.equal(scscf.counters.challenges, 1);
  assert.equal(scscf.counters.registers, 2);
  assert.ok(!JSON.stringify(events).includes(toHex(r.ck)), 'events carry no keys');
  await scscf.stop();
});

test('no Expires at all: the default 600000 s is granted; maxExpires caps it', async () => {
  const a = await setup();
  assert.equal((await a.ue.registerFully(usimOf(ALICE))).final.headers.get('Expires'), '600000');
  await a.scscf.stop();
  const b = await setup({ maxExpires: 1800 });
  const { final } = await b.ue.registerFully(usimOf(ALICE), { expires: 600000 });
  assert.equal(final.headers.get('Contact'), '<sip:alice@10.0.0.2:5062>;expires=1800');
  await b.scscf.stop();
});

test('wrong RES ⇒ 403, the challenge is dropped, and the right answer afterwards only earns a fresh 401', async () => {
  const { scscf, pcscf, ue, events } = await setup();
  const callId = newCallId();
  const c = await pcscf.send(ue.register({ callId }));
  const good = ue.answer(c, usimOf(ALICE));
  const bad = { ...good, response: good.response!.replace(/^./, (x) => (x === '0' ? '1' : '0')) };
  const res = await pcscf.send(ue.register({ callId, cseq: 2, auth: bad, integrityProtected: 'yes' }));
  assert.equal(res.status, 403);
  assert.equal(scscf.pendingChallenges, 0);
  assert.deepEqual(events.at(-1), { type: 'auth-failed', impi: ALICE.impi, impu: ALICE.impus[0], status: 403, reason: 'wrong_response' });
  const again = await pcscf.send(ue.register({ callId, cseq: 3, auth: good, integrityProtected: 'yes' }));
  assert.equal(again.status, 401);
  assert.equal(scscf.bindings.size, 0);
  await scscf.stop();
});

test('empty response with the nonce (network authentication failure at the UE) ⇒ 403', async () => {
  const { scscf, pcscf, ue, events } = await setup();
  const callId = newCallId();
  const c = await pcscf.send(ue.register({ callId }));
  const auth = { ...ue.answer(c, usimOf(ALICE)), response: '' };
  delete (auth as Record<string, string | undefined>)['qop'];
  const res = await pcscf.send(ue.register({ callId, cseq: 2, auth }));
  assert.equal(res.status, 403);
  assert.equal((events.at(-1) as { reason: string }).reason, 'empty_response');
  assert.equal(scscf.pendingChallenges, 0);
  await scscf.stop();
});

test('AUTS: a USIM whose SQN is ahead answers with auts; the HSS resyncs, a new 401 follows and then the 200', async () => {
  const { scscf, pcscf, ue, events } = await setup();
  const usim = usimOf(ALICE, { sqnMs: 0x20 * 5000 });
  const callId = newCallId();
  const c1 = await pcscf.send(ue.register({ callId }));
  const sync = ue.answer(c1, usim);
  assert.ok(sync.auts, 'the USIM refuses the SQN');
  const c2 = await pcscf.send(ue.register({ callId, cseq: 2, auth: sync }));
  assert.equal(c2.status, 401);
  assert.notEqual(
    getParam(parseDigestHeaderOrThrow(c2.headers.get('WWW-Authenticate')!), 'nonce'),
    getParam(parseDigestHeaderOrThrow(c1.headers.get('WWW-Authenticate')!), 'nonce'),
  );
  const ok = await pcscf.send(ue.register({ callId, cseq: 3, auth: ue.answer(c2, usim), integrityProtected: 'yes' }));
  assert.equal(ok.status, 200);
  assert.deepEqual(
    events.map((e) => e.type),
    ['challenge', 'resync', 'challenge', 'registered'],
  );
  assert.equal(scscf.counters.resyncs, 1);
  await scscf.stop();
});

test('AUTS whose MAC-S does not verify ⇒ 403 mac_s_failure', async () => {
  const { scscf, pcscf, ue, events } = await setup();
  const callId = newCallId();
  const c1 = await pcscf.send(ue.register({ callId }));
  const sync = ue.answer(c1, usimOf(ALICE, { sqnMs: 0x20 * 5000 }));
  const auts = Buffer.from(sync.auts!, 'base64');
  auts[13]! ^= 1;
  const res = await pcscf.send(ue.register({ callId, cseq: 2, auth: { ...sync, auts: auts.toString('base64') } }));
  assert.equal(res.status, 403);
  assert.equal((events.at(-1) as { reason: string }).reason, 'mac_s_failure');
  await scscf.stop();
});

test('unknown user ⇒ 403: unknown username, unknown To without Authorization, IMPU of another IMPI', async () => {
  const { scscf, pcscf, ue, events } = await setup();
  const unknown = await pcscf.send(
    ue.register({ auth: { username: 'mallory@ims.example', realm: DOMAIN, uri: `sip:${DOMAIN}`, nonce: '', response: '' } }),
  );
  assert.equal(unknown.status, 403);
  assert.equal((await pcscf.send(ue.register({ auth: undefined, impu: 'sip:mallory@ims.example' }))).status, 403);
  assert.equal((await pcscf.send(ue.register({ impu: BOB.impus[0] }))).status, 403);
  assert.deepEqual(
    events.map((e) => (e.type === 'auth-failed' ? e.reason : e.type)),
    ['unknown_user', 'unknown_user', 'impu_mismatch'],
  );
  // Without Authorization the IMPI comes from the To IMPU.
  const c = await pcscf.send(ue.register({ auth: undefined }));
  assert.equal(c.status, 401);
  assert.equal(events.at(-1)!.type, 'challenge');
  await scscf.stop();
});

test('reg-await-auth expiry forgets the challenge; the late answer gets a fresh 401', async () => {
  const { scscf, pcscf, ue, clock, events } = await setup({ regAwaitAuthMs: 240_000 });
  const callId = newCallId();
  const c = await pcscf.send(ue.register({ callId }));
  const answer = ue.answer(c, usimOf(ALICE));
  clock.advance(239_999);
  assert.equal(scscf.pendingChallenges, 1);
  clock.advance(1);
  assert.equal(scscf.pendingChallenges, 0);
  const late = await pcscf.send(ue.register({ callId, cseq: 2, auth: answer, integrityProtected: 'yes' }));
  assert.equal(late.status, 401);
  assert.equal((events.at(-1) as { reason: string }).reason, 'stale_nonce');
  await scscf.stop();
});

test('the answer must come with the challenged Call-ID (24.229 §5.4.1.2.1): another Call-ID is challenged afresh', async () => {
  const { scscf, pcscf, ue } = await setup();
  const c = await pcscf.send(ue.register({ callId: 'one' }));
  const res = await pcscf.send(ue.register({ callId: 'two', cseq: 2, auth: ue.answer(c, usimOf(ALICE)) }));
  assert.equal(res.status, 401);
  assert.equal(scscf.bindings.size, 0);
  await scscf.stop();
});

test('binding expiry: removed at expires, with a deregistered event', async () => {
  const { scscf, ue, clock, events } = await setup();
  await ue.registerFully(usimOf(ALICE), { expires: 60 });
  clock.advance(59_999);
  assert.equal(scscf.bindings.size, 2);
  clock.advance(1);
  assert.equal(scscf.bindings.size, 0);
  assert.deepEqual(events.at(-1), { type: 'deregistered', impi: ALICE.impi, impus: ALICE.impus, reason: 'expired' });
  assert.equal(scscf.counters.expirations, 1);
  await scscf.stop();
});

test('re-registration: protected re-REGISTER is challenged by default; with challengeReRegister off it is accepted directly', async () => {
  const a = await setup();
  const usim = usimOf(ALICE);
  const callId = newCallId();
  const { final } = await a.ue.registerFully(usim, { callId, expires: 600 });
  assert.equal(final.status, 200);
  const re = await a.pcscf.send(a.ue.register({ callId, cseq: 3, expires: 600, integrityProtected: 'yes' }));
  assert.equal(re.status, 401);
  const ok = await a.pcscf.send(a.ue.register({ callId, cseq: 4, expires: 600, auth: a.ue.answer(re, usim), integrityProtected: 'yes' }));
  assert.equal(ok.status, 200);
  assert.deepEqual(
    a.events.map((e) => e.type),
    ['challenge', 'registered', 'challenge', 'registered'],
  );
  assert.equal(a.scscf.counters.reRegistrations, 1);
  await a.scscf.stop();

  const b = await setup({ challengeReRegister: false });
  await b.ue.registerFully(usimOf(ALICE), { callId, expires: 600 });
  b.clock.advance(300_000);
  const direct = await b.pcscf.send(b.ue.register({ callId, cseq: 3, expires: 600, integrityProtected: 'yes' }));
  assert.equal(direct.status, 200);
  assert.equal(direct.headers.get('Service-Route'), b.scscf.serviceRoute);
  assert.equal(b.scscf.bindings.get(ALICE.impus[0]!)!.expiresAt, b.clock.now() + 600_000, 'the binding is refreshed');
  // Not protected: challenged even with challengeReRegister off.
  assert.equal((await b.pcscf.send(b.ue.register({ callId, cseq: 4, expires: 600 }))).status, 401);
  await b.scscf.stop();
});

test('de-registration: protected Expires 0 is accepted directly; unprotected is authenticated first', async () => {
  const { scscf, pcscf, ue, events } = await setup();
  const usim = usimOf(ALICE);
  const callId = newCallId();
  await ue.registerFully(usim, { callId });
  const bye = await pcscf.send(ue.register({ callId, cseq: 3, expires: 0, integrityProtected: 'yes' }));
  assert.equal(bye.status, 200);
  assert.equal(bye.headers.get('Contact'), '<sip:alice@10.0.0.2:5062>;expires=0');
  assert.equal(scscf.bindings.size, 0);
  assert.deepEqual(events.at(-1), { type: 'deregistered', impi: ALICE.impi, impus: ALICE.impus, reason: 'user' });

  await ue.registerFully(usim, { callId });
  const c = await pcscf.send(ue.register({ callId, cseq: 5, expires: 0 }));
  assert.equal(c.status, 401, 'an unprotected de-registration is challenged');
  assert.equal(scscf.bindings.size, 2);
  const ok = await pcscf.send(ue.register({ callId, cseq: 6, expires: 0, auth: ue.answer(c, usim), integrityProtected: 'yes' }));
  assert.equal(ok.status, 200);
  assert.equal(scscf.bindings.size, 0);
  assert.equal(scscf.counters.deregistrations, 2);
  await scscf.stop();
});

test('an HSS store failure is answered 500 and counted; the S-CSCF keeps serving', async () => {
  const { scscf, pcscf, ue, store } = await setup();
  store.close();
  const res = await pcscf.send(ue.register({}));
  assert.equal(res.status, 500);
  assert.equal(scscf.counters.internalErrors, 1);
  assert.equal(scscf.pendingChallenges, 0);
  await scscf.stop();
});

function groupedHss(failCommit = false, onCommit: () => void = () => {}) {
  const store = new HssStore(':memory:');
  store.add({ impi: ALICE.impi, impus: ALICE.impus, k: fromHex(ALICE.k), op: fromHex(ALICE.op), amf: fromHex('8000') });
  let commits = 0;
  // A failing commit stands in for a disk error: the SQNs of the turn were never made durable.
  const wrapped: SubscriberStore = Object.assign(Object.create(store) as SubscriberStore, {
    beginSqnBatch: () => store.beginSqnBatch(),
    commitSqnBatch: () => {
      onCommit();
      commits++;
      store.commitSqnBatch();
      if (failCommit) throw new Error('disk I/O error');
    },
  });
  for (const m of ['profile', 'cachedProfile', 'nextSqns', 'nextSqn', 'resync', 'get', 'findByImpu'] as const)
    (wrapped as unknown as Record<string, unknown>)[m] = (store[m] as (...a: unknown[]) => unknown).bind(store);
  return { hss: new Hss(wrapped, { groupCommits: true }), commits: () => commits };
}

test('grouped SQN commits: the 401s of one turn leave after their one commit; registration completes', async () => {
  const seenAtCommit: number[] = [];
  let net: { log: { bytes: Uint8Array }[] } | undefined;
  const sent401 = () => net!.log.filter((p) => new TextDecoder().decode(p.bytes.subarray(0, 12)) === 'SIP/2.0 401 ').length;
  const g = groupedHss(false, () => seenAtCommit.push(sent401()));
  const s = await setup({ hss: g.hss });
  net = s.net;
  const { scscf, pcscf, ue } = s;
  const callIds = [newCallId(), newCallId(), newCallId()];
  const challenges = await Promise.all(callIds.map((callId) => pcscf.send(ue.register({ callId, expires: 3600 }))));
  assert.deepEqual(
    challenges.map((c) => c.status),
    [401, 401, 401],
  );
  // The three REGISTERs arrive in one turn (microtask delivery): one commit, before any 401 was sent.
  assert.equal(g.commits(), 1);
  assert.deepEqual(seenAtCommit, [0], 'no 401 on the wire before the commit');
  const nonces = new Set(challenges.map((c) => getParam(parseDigestHeaderOrThrow(c.headers.get('WWW-Authenticate')!), 'nonce')));
  assert.equal(nonces.size, 3);
  const usim = usimOf(ALICE);
  const last = challenges[2]!;
  const ok = await pcscf.send(
    ue.register({ callId: callIds[2], cseq: 2, expires: 3600, auth: ue.answer(last, usim), integrityProtected: 'yes' }),
  );
  assert.equal(ok.status, 200);
  assert.equal(scscf.counters.internalErrors, 0);
  await scscf.stop();
});

test('grouped SQN commits: when the commit fails, no vector leaves: 500, no pending challenge', async () => {
  const g = groupedHss(true);
  const { scscf, pcscf, ue } = await setup({ hss: g.hss });
  const res = await pcscf.send(ue.register({ expires: 3600 }));
  assert.equal(res.status, 500);
  assert.equal(res.headers.get('WWW-Authenticate'), undefined);
  assert.equal(scscf.pendingChallenges, 0);
  assert.equal(scscf.counters.internalErrors, 1);
  await scscf.stop();
});
