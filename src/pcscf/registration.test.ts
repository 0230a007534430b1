// The P-CSCF's registration flows end to end on loopback: a scripted UE and the P-CSCF each with a
// userspace backend (real ESP-in-UDP), a fake S-CSCF on UDP, P-CSCF time on a ManualClock
// (33.203 §7.2-§7.4, Annex H, Annex M).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { protectedContextOf } from '../ipsec/backends/sip-endpoint.ts';
import { parseSecurityHeaderOrThrow } from '../secagree/index.ts';
import { LOOP } from './_test-kit.ts';
import { T1, eventually, world } from './_world.ts';

test('full registration: 401 without ik/ck but with Security-Server; the S-CSCF sees stripped REGISTERs with Path; the 200 OK comes over the new set', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    const a = await ue.unprotectedRegister();
    assert.equal(a.res.status, 401);
    assert.equal(protectedContextOf(a.ctx), undefined, 'the 401 to an initial REGISTER goes unprotected');
    const www = a.res.headers.get('WWW-Authenticate')!;
    assert.doesNotMatch(www, /\b(ik|ck)=/i);
    assert.match(www, /nonce="/);
    const ss = parseSecurityHeaderOrThrow(a.res.headers.raw('Security-Server'), 'Security-Server');
    assert.equal(ss.length, 1);
    assert.deepEqual(
      [ss[0]!.mod, ss[0]!.alg, ss[0]!.ealg, ss[0]!.portC, ss[0]!.portS],
      ['UDP-enc-tun', 'hmac-sha-1-96', 'null', w.pcscf.portC, w.pcscf.portS],
    );
    assert.ok(ss[0]!.spiC! >= 256 && ss[0]!.spiS! >= 256 && ss[0]!.spiC !== ss[0]!.spiS);
    assert.deepEqual(
      w.pcscf.registrations()[0]!.sets.map((s) => s.role),
      ['temporary'],
    );

    const first = w.scscf.registers()[0]!;
    assert.equal(first.headers.has('Security-Client'), false);
    assert.match(first.headers.get('Authorization')!, /integrity-protected="no"/);
    assert.equal(first.headers.get('Path'), `<sip:term@${LOOP}:${w.pcscf.port};lr>`);
    assert.equal(first.headers.has('Proxy-Require'), false, 'Proxy-Require dropped once sec-agree is gone');
    assert.equal(first.headers.has('Require'), false);
    assert.match(first.headers.get('Via')!, new RegExp(`^SIP/2.0/UDP ${LOOP}:${w.pcscf.port};branch=z9hG4bK`));
    assert.equal(first.headers.get('Max-Forwards'), '69');

    const ueSet = await ue.acceptChallenge(a.res);
    const b = await ue.finish();
    assert.equal(b.res.status, 200);
    const pc = protectedContextOf(b.ctx);
    assert.ok(pc, 'the 200 OK arrived protected');
    assert.equal(pc.set, ueSet, 'over the new set');
    assert.equal(pc.sa.name, 'SA2');
    assert.equal(pc.sa.spi, ue.spis[1], 'with spi_us');
    assert.deepEqual(pc.remote, { address: LOOP, port: w.pcscf.portC }, 'from port_pc');

    const second = w.scscf.registers()[1]!;
    assert.match(second.headers.get('Authorization')!, /integrity-protected="yes"/);
    for (const h of ['Security-Client', 'Security-Verify', 'Security-Server', 'Require', 'Proxy-Require'])
      assert.equal(second.headers.has(h), false, h);
    assert.equal(second.headers.get('Path'), `<sip:term@${LOOP}:${w.pcscf.port};lr>`);

    const [r] = w.pcscf.registrations();
    assert.equal(r!.state, 'registered');
    assert.deepEqual(r!.impus, ['sip:alice@ims.example.org']);
    assert.equal(r!.sets.length, 1);
    assert.equal(r!.sets[0]!.role, 'current');
    assert.equal(r!.sets[0]!.sas.length, 4);
    assert.equal(r!.ue.encap?.port, ue.backend.encapPort, 'port_Uenc learnt from the protected REGISTER');
    assert.doesNotMatch(JSON.stringify(w.pcscf.registrations()), /ikEsp|ckEsp|keys/);
    assert.deepEqual(
      w.events.map((e) => e.name),
      ['sa-created', 'sa-promoted', 'registered'],
    );
  } finally {
    await w.close();
  }
});

test('a tampered Security-Verify is refused with 403 over the temporary set, which is then deleted; nothing reaches the S-CSCF', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    const a = await ue.unprotectedRegister();
    await ue.acceptChallenge(a.res);
    const tampered = ue.serverHeader!.replace('alg=hmac-sha-1-96', 'alg=hmac-md5-96');
    const b = await ue.protectedRegister({ verify: tampered });
    assert.equal(b.res.status, 403);
    assert.match(b.res.headers.get('Warning')!, /Security-Verify.*alg differs/);
    assert.ok(protectedContextOf(b.ctx), 'refusal sent over the temporary set');
    await eventually(() => w.pcBackend.sets.length === 0, 'temporary set removed');
    assert.deepEqual(w.pcscf.registrations(), []);
    assert.equal(w.scscf.registers().length, 1);
    assert.equal(w.pcscf.counters.rejected['security-verify-mismatch'], 1);
    assert.match(String(w.named('sa-deleted')[0]!.reason), /Security-Verify/);
  } finally {
    await w.close();
  }
});

test('a changed Security-Client (or none) in the protected REGISTER is refused and the temporary set deleted', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    await ue.acceptChallenge((await ue.unprotectedRegister()).res);
    const changed = ue.clientHeader.replace(`port-s=${ue.portUs}`, `port-s=${ue.portUs + 7}`);
    const b = await ue.protectedRegister({ client: changed });
    assert.equal(b.res.status, 403);
    assert.match(b.res.headers.get('Warning')!, /Security-Client.*port-s differs/);
    await eventually(() => w.pcBackend.sets.length === 0, 'temporary set removed');
    assert.equal(w.pcscf.counters.rejected['security-client-changed'], 1);

    await ue.newRound();
    await ue.acceptChallenge((await ue.unprotectedRegister()).res);
    assert.equal((await ue.protectedRegister({ client: null })).res.status, 403);
    assert.equal(w.pcscf.counters.rejected['security-client-changed'], 2);
  } finally {
    await w.close();
  }
});

test('a protected REGISTER under an SPI the P-CSCF never allocated is dropped by ESP (no SIP answer)', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    const a = await ue.unprotectedRegister();
    const spiPs = parseSecurityHeaderOrThrow(a.res.headers.raw('Security-Server'), 'Security-Server')[0]!.spiS!;
    await ue.acceptChallenge(a.res, { spiPs: spiPs + 1 });
    const answer = ue.protectedRegister();
    answer.catch(() => {});
    await eventually(() => w.pcBackend.counters.unknownSpi === 1, 'unknown-SPI drop counted');
    assert.equal(w.scscf.registers().length, 1, 'nothing forwarded');
    assert.deepEqual(
      w.pcscf.registrations()[0]!.sets.map((s) => s.role),
      ['temporary'],
    );
  } finally {
    await w.close();
  }
});

test('a 403 from the S-CSCF to the protected REGISTER goes back over the temporary set, which is then deleted', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    w.scscf.answerProtected = 403;
    await ue.acceptChallenge((await ue.unprotectedRegister()).res);
    const b = await ue.protectedRegister();
    assert.equal(b.res.status, 403);
    assert.ok(protectedContextOf(b.ctx));
    await eventually(() => w.pcBackend.sets.length === 0, 'temporary set removed');
    assert.deepEqual(w.pcscf.registrations(), []);
    assert.match(String(w.named('sa-deleted')[0]!.reason), /403/);
  } finally {
    await w.close();
  }
});

test('re-registration: the new set becomes current; the old one goes only when its in-flight transactions end', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    assert.equal((await ue.register()).res.status, 200);
    const oldSet = ue.current!;
    const oldId = w.pcscf.registrations()[0]!.sets[0]!.id;

    w.scscf.hold = true;
    const inFlight = ue.send('MESSAGE');
    await eventually(() => w.scscf.held.length === 1, 'MESSAGE held at the S-CSCF');

    await ue.newRound();
    const a = await ue.reRegisterRequest();
    assert.equal(a.res.status, 401);
    assert.equal(protectedContextOf(a.ctx)?.set, oldSet, 'the 401 to a re-REGISTER comes over the current set');
    const reReg = w.scscf.registers()[2]!;
    assert.match(reReg.headers.get('Authorization')!, /integrity-protected="yes"/);
    await ue.acceptChallenge(a.res);
    const b = await ue.finish();
    assert.equal(b.res.status, 200);
    assert.equal(protectedContextOf(b.ctx)?.set, ue.current);

    let sets = w.pcscf.registrations()[0]!.sets;
    assert.deepEqual(
      sets.map((s) => [s.id === oldId, s.role, s.inFlight]),
      [
        [false, 'current', 0],
        [true, 'old', 1],
      ],
      'old set kept: the MESSAGE is unanswered',
    );
    w.clock.advance(16 * T1); // below Timer F: the MESSAGE is still waiting for the S-CSCF
    assert.ok(
      w.pcBackend.sets.some((s) => s.id === oldId),
      'time alone does not remove it',
    );
    w.scscf.hold = false;
    w.scscf.release(200);
    const done = await inFlight;
    assert.equal(done.res.status, 200);
    assert.equal(protectedContextOf(done.ctx)?.set, oldSet, 'the in-flight answer still comes over the old set');
    await eventually(() => !w.pcBackend.sets.some((s) => s.id === oldId), 'old set removed');
    sets = w.pcscf.registrations()[0]!.sets;
    assert.deepEqual(
      sets.map((s) => s.role),
      ['current'],
    );
    assert.ok(w.named('sa-deleted').some((e) => e.set === oldId && /last transaction/.test(String(e.reason))));
    assert.equal((await ue.send('MESSAGE')).res.status, 200, 'the new set carries new requests');
  } finally {
    await w.close();
  }
});

test('de-registration: the 200 OK goes out protected over the current set, then every set is deleted', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    assert.equal((await ue.register()).res.status, 200);
    const d = await ue.reRegisterRequest({ expires: 0, client: null });
    assert.equal(d.res.status, 200);
    assert.equal(protectedContextOf(d.ctx)?.set, ue.current);
    await eventually(() => w.pcBackend.sets.length === 0, 'all sets removed');
    assert.deepEqual(w.pcscf.registrations(), []);
    assert.equal(w.named('deregistered')[0]!.reason, 'de-registered');
  } finally {
    await w.close();
  }
});

test('expiry: without a refresh every set goes at expires + 30 s; an unanswered challenge dies after reg-await-auth', async () => {
  const w = await world();
  try {
    w.scscf.expires = 60;
    const ue = await w.ue();
    assert.equal((await ue.register()).res.status, 200);
    w.clock.advance(89_000);
    assert.equal(w.pcBackend.sets.length, 1, 'still alive before expires + 30 s');
    w.clock.advance(1_001);
    await eventually(() => w.pcBackend.sets.length === 0, 'sets removed on expiry');
    assert.deepEqual(w.pcscf.registrations(), []);
    assert.match(String(w.named('deregistered')[0]!.reason), /expired/);

    const ue2 = await w.ue({ impi: 'bob@ims.example.org', impu: 'sip:bob@ims.example.org' });
    assert.equal((await ue2.unprotectedRegister()).res.status, 401);
    assert.equal(w.pcBackend.sets.length, 1);
    w.clock.advance(240_000);
    await eventually(() => w.pcBackend.sets.length === 0, 'temporary set removed');
    assert.match(String(w.named('sa-deleted').at(-1)!.reason), /reg-await-auth/);
    // The metrics count auth timeouts by this code, decided by the expiry timer (not by the text).
    assert.equal(w.named('sa-deleted').at(-1)!.code, 'auth-timeout');
    assert.equal(w.named('sa-deleted').filter((e) => e.code === 'auth-timeout').length, 1, 'the registration expiry is not one');
  } finally {
    await w.close();
  }
});

test('issue 10 §2 leak: a temporary set the SAD sees expire first still leaves the table, with exactly one sa-deleted', async () => {
  // The SAD's clock runs 1 s ahead: before the fix its sweep (on bob's SPI allocation) marked
  // alice's set deleted, and the table's reg-await-auth timer, acting only on 'temporary' sets,
  // then left alice pending forever, without an sa-deleted event.
  const w = await world({ backendSkewMs: 1_000 });
  try {
    const alice = await w.ue();
    assert.equal((await alice.unprotectedRegister()).res.status, 401);
    const aliceSet = String(w.named('sa-created')[0]!.set);
    w.clock.advance(239_500);
    const bob = await w.ue({ impi: 'bob@ims.example.org', impu: 'sip:bob@ims.example.org' });
    assert.equal((await bob.unprotectedRegister()).res.status, 401);
    w.clock.advance(1_000);
    await eventually(() => w.pcscf.registrations().every((r) => r.impi !== 'alice@ims.example.org'), 'alice forgotten');
    await eventually(() => w.named('sa-deleted').some((e) => e.set === aliceSet), 'sa-deleted for alice');
    assert.equal(w.named('sa-deleted').filter((e) => e.set === aliceSet).length, 1);
    assert.deepEqual(
      w.pcBackend.sets.map((s) => s.config.ue.portC),
      [bob.portUc],
    );
  } finally {
    await w.close();
  }
});

test('NAT detected (Via ≠ source) in auto mode: UDP-enc-tun with the private address inside the tunnel, and the registration works', async () => {
  const w = await world({ mode: 'auto' });
  try {
    const ue = await w.ue({ via: { host: '10.1.2.3', port: 5060 }, modes: ['trans', 'UDP-enc-tun'] });
    const a = await ue.unprotectedRegister();
    assert.equal(a.res.status, 401);
    assert.equal(parseSecurityHeaderOrThrow(a.res.headers.raw('Security-Server'), 'Security-Server')[0]!.mod, 'UDP-enc-tun');
    assert.match(a.res.headers.get('Via')!, /;received=127\.0\.0\.1\b/);
    assert.match(a.res.headers.get('Via')!, /;rport=\d+/);
    assert.deepEqual(w.named('nat-detected')[0]!.via, '10.1.2.3:5060');
    await ue.acceptChallenge(a.res);
    const b = await ue.finish();
    assert.equal(b.res.status, 200);
    const r = w.pcscf.registrations()[0]!;
    assert.equal(r.nat, true);
    assert.equal(r.ue.innerIp, '10.1.2.3');
    assert.equal((await ue.send('MESSAGE')).res.status, 200);
  } finally {
    await w.close();
  }
});

test('NAT detected but no UDP-enc-tun offered ⇒ 494; no NAT in auto mode ⇒ mod=trans', async () => {
  const w = await world({ mode: 'auto' });
  try {
    const natted = await w.ue({ via: { host: '10.1.2.3', port: 5060 }, modes: ['trans'] });
    const a = await natted.unprotectedRegister();
    assert.equal(a.res.status, 494);
    assert.match(a.res.headers.get('Warning')!, /UDP-enc-tun/);
    assert.equal(w.pcscf.counters.rejected['nat-without-udp-enc-tun'], 1);
    assert.equal(w.scscf.registers().length, 0);

    const direct = await w.ue({ impi: 'bob@ims.example.org', impu: 'sip:bob@ims.example.org', modes: ['trans', 'UDP-enc-tun'] });
    const b = await direct.unprotectedRegister();
    if (b.res.status === 401) {
      assert.equal(parseSecurityHeaderOrThrow(b.res.headers.raw('Security-Server'), 'Security-Server')[0]!.mod, 'trans');
    } else {
      // Without CAP_NET_RAW the userspace backend cannot install a transport-mode set.
      assert.equal(b.res.status, 500);
      assert.match(b.res.headers.get('Warning')!, /CAP_NET_RAW/);
    }
  } finally {
    await w.close();
  }
});

test('admission: (UE IP, port_uc) already tied to a set ⇒ 403; no Security-Client ⇒ 494; stop() removes every set', async () => {
  const w = await world();
  try {
    const alice = await w.ue();
    assert.equal((await alice.register()).res.status, 200);
    const bob = await w.ue({ impi: 'bob@ims.example.org', impu: 'sip:bob@ims.example.org', portUc: alice.portUc });
    const a = await bob.unprotectedRegister();
    assert.equal(a.res.status, 403);
    assert.match(a.res.headers.get('Warning')!, /already tied to SA set/);
    assert.equal(w.pcscf.counters.rejected['admission-port-in-use'], 1);
    const n = await bob.unprotectedRegister({ client: null });
    assert.equal(n.res.status, 494);
    assert.equal(w.pcscf.counters.rejected['no-security-client'], 1);
    await w.pcscf.stop();
    assert.equal(w.pcBackend.sets.length, 0);
  } finally {
    await w.close();
  }
});

const BOB = { impi: 'bob@ims.example.org', impu: 'sip:bob@ims.example.org' };

test("issue 10 §1: a REGISTER over A's current set with B's Authorization username and To (Expires 0) is refused 403; nothing forwarded; B and A untouched", async () => {
  const w = await world();
  try {
    const alice = await w.ue();
    const bob = await w.ue(BOB);
    assert.equal((await alice.register()).res.status, 200);
    assert.equal((await bob.register()).res.status, 200);
    const before = w.scscf.registers().length;
    const aliceSets = w.pcBackend.sets.length;
    for (const expires of [0, 600]) {
      const r = await alice.registerAs({ ...BOB, expires });
      assert.equal(r.res.status, 403, `Expires ${expires}`);
      assert.match(r.res.headers.get('Warning') ?? '', /identit/);
    }
    // B's IMPU with A's IMPI, and A's IMPU with B's IMPI: both refused too.
    assert.equal((await alice.registerAs({ impi: 'alice@ims.example.org', impu: BOB.impu, expires: 0 })).res.status, 403);
    assert.equal((await alice.registerAs({ impi: BOB.impi, impu: 'sip:alice@ims.example.org', expires: 0 })).res.status, 403);
    assert.equal(w.scscf.registers().length, before, 'nothing reached the S-CSCF');
    assert.equal(w.pcBackend.sets.length, aliceSets, 'no SA set was deleted');
    assert.deepEqual(
      w.pcscf
        .registrations()
        .map((r) => [r.impi, r.state])
        .sort(),
      [
        ['alice@ims.example.org', 'registered'],
        ['bob@ims.example.org', 'registered'],
      ],
    );
    assert.equal((await alice.send('MESSAGE')).res.status, 200, 'A keeps working');
    assert.equal((await bob.send('MESSAGE')).res.status, 200, 'B keeps working');
    assert.equal(w.pcscf.counters.rejected['register-identity-mismatch'], 4);
  } finally {
    await w.close();
  }
});

test("issue 10 §1: the protected REGISTER over A's temporary set naming B is refused 403; nothing forwarded; B's registration untouched", async () => {
  const w = await world();
  try {
    const bob = await w.ue(BOB);
    assert.equal((await bob.register()).res.status, 200);
    const alice = await w.ue();
    const a = await alice.unprotectedRegister();
    assert.equal(a.res.status, 401);
    await alice.acceptChallenge(a.res);
    const before = w.scscf.registers().length;
    const r = await alice.registerAs({ ...BOB, expires: 0, over: alice.temporary! });
    assert.equal(r.res.status, 403);
    assert.equal(w.scscf.registers().length, before, 'nothing reached the S-CSCF');
    assert.equal(w.pcscf.registrations().find((x) => x.impi === BOB.impi)?.state, 'registered');
    assert.equal((await bob.send('MESSAGE')).res.status, 200);
  } finally {
    await w.close();
  }
});

test('issue 10 §3: a Security-Client with SPI 1..255, spi-c = spi-s or a bad port is answered 494 before anything is forwarded', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    const good = ue.clientHeader;
    const bad = [
      good.replace(/spi-c=\d+/, 'spi-c=200'),
      good.replace(/spi-s=\d+/, 'spi-s=1'),
      good.replace(/spi-s=\d+/, `spi-s=${ue.spis[0]}`),
      good.replace(/port-c=\d+/, 'port-c=0'),
    ];
    for (const client of bad) {
      const r = await ue.unprotectedRegister({ client });
      assert.equal(r.res.status, 494, client);
      assert.match(r.res.headers.get('Warning') ?? '', /spi|port/i);
    }
    assert.equal(w.scscf.registers().length, 0, 'no vector spent');
    assert.deepEqual(w.pcscf.registrations(), []);
    assert.equal((await ue.register()).res.status, 200, 'a good Security-Client still works');
  } finally {
    await w.close();
  }
});

test('issue 10 §2: over the pending limit from one source ⇒ 503 with Retry-After, nothing forwarded; the slots come back when the challenges expire', async () => {
  const w = await world({ limits: { maxPendingPerSource: 3 } });
  try {
    const ues = [];
    for (let i = 0; i < 4; i++) ues.push(await w.ue({ impi: `u${i}@ims.example.org`, impu: `sip:u${i}@ims.example.org` }));
    for (const ue of ues.slice(0, 3)) assert.equal((await ue.unprotectedRegister()).res.status, 401);
    const over = await ues[3]!.unprotectedRegister();
    assert.equal(over.res.status, 503);
    assert.match(over.res.headers.get('Retry-After') ?? '', /^\d+$/);
    assert.equal(w.scscf.registers().length, 3, 'no vector spent on the refused one');
    assert.equal(w.pcscf.counters.rejected['overload-pending-source'], 1);
    assert.equal((await ues[0]!.unprotectedRegister()).res.status, 401, 'a pending UE may start its own set-up again');
    w.clock.advance(240_000);
    await eventually(() => w.pcscf.registrations().length === 0, 'every pending registration expired');
    assert.equal((await ues[3]!.unprotectedRegister()).res.status, 401, 'the slots were given back');
  } finally {
    await w.close();
  }
});

test('issue 10 §2: a pending registration the S-CSCF never answers still ends (no state left behind)', async () => {
  const w = await world({ limits: { maxPendingPerSource: 1 } });
  try {
    w.scscf.silent = true;
    const ue = await w.ue();
    const pending = ue.unprotectedRegister();
    await eventually(() => w.pcscf.registrations().length === 1, 'pending');
    for (let i = 0; i < 80 && w.pcscf.registrations().length > 0; i++) {
      w.clock.advance(T1);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal((await pending).res.status, 408);
    await eventually(() => w.pcscf.registrations().length === 0, 'pending registration forgotten');
  } finally {
    await w.close();
  }
});

test('issue 10 §2: past maxInFlightPerSource REGISTERs waiting at the S-CSCF, more from that source are dropped unparsed; an answer or a timeout frees the slot', async () => {
  const w = await world({ limits: { maxInFlightPerSource: 1 } });
  try {
    const ues = [];
    for (let i = 0; i < 3; i++) ues.push(await w.ue({ impi: `u${i}@ims.example.org`, impu: `sip:u${i}@ims.example.org` }));
    // Answered REGISTERs give their slot back: one after the other, all are challenged.
    for (const ue of ues.slice(0, 2)) assert.equal((await ue.unprotectedRegister()).res.status, 401);
    w.scscf.silent = true;
    let answered = false;
    const waiting = ues[0]!.unprotectedRegister().finally(() => (answered = true));
    await eventually(() => w.scscf.registers().length === 3, 'the third REGISTER reached the S-CSCF');
    void ues[2]!.unprotectedRegister().catch(() => {});
    await eventually(() => w.pcscf.counters.droppedOverSourceLimit === 1, 'the second in flight from that source dropped');
    assert.equal(w.scscf.registers().length, 3, 'nothing more forwarded');
    for (let i = 0; i < 80 && !answered; i++) {
      w.clock.advance(T1);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal((await waiting).res.status, 408);
    w.scscf.silent = false;
    assert.equal((await ues[1]!.unprotectedRegister()).res.status, 401, 'the slot came back after the timeout');
  } finally {
    await w.close();
  }
});

test("a slow install for a replaced round cannot push out its successor's temporary set (installs run one at a time)", async () => {
  const w = await world();
  try {
    // The backend's install waits for the test to let it through (as a netlink round trip may).
    const gates: (() => void)[] = [];
    const install = w.pcBackend.install.bind(w.pcBackend);
    w.pcBackend.install = async (set) => {
      await new Promise<void>((r) => gates.push(r));
      return install(set);
    };
    const first = await w.ue();
    const second = await w.ue(); // the same IMPI from another port: the UE restarted
    const a1 = first.unprotectedRegister();
    await eventually(() => gates.length === 1, 'first install waiting');
    const a2 = second.unprotectedRegister();
    // Round 2 replaced round 1; its 401 asks for a second install, which waits for the first.
    await eventually(() => w.scscf.registers().length === 2, 'second REGISTER forwarded');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(gates.length, 1, 'the second install does not start before the first ends');
    gates.shift()!();
    await eventually(() => gates.length === 1, 'second install waiting');
    gates.shift()!();
    const [r1, r2] = await Promise.all([a1, a2]);
    assert.equal(r1.res.status, 401);
    assert.equal(r1.res.headers.has('Security-Server'), false, 'the replaced round gets its 401 without Security-Server');
    assert.equal(r2.res.status, 401);
    w.pcBackend.install = install;
    await second.acceptChallenge(r2.res);
    assert.equal((await second.finish()).res.status, 200, "the live round's temporary set survived");
    await eventually(() => w.pcBackend.sets.length === 1, 'the stale set is gone');
  } finally {
    await w.close();
  }
});
