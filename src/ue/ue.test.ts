// The UE's initial registration against a scripted P-CSCF on loopback (UDP-enc-tun, userspace
// ESP): what it sends at each step (24.229 §5.1.1.2/§5.1.1.5, 33.203 §7.2) and its error cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestResponse, verifyAuts } from '../aka/index.ts';
import { parseSecurityHeaderOrThrow } from '../secagree/index.ts';
import { parseViaOrThrow } from '../sip/index.ts';
import { fromBase64 } from '../util/bytes.ts';
import { authParams, K, OPC, registerPair, startPair } from './_fake-pcscf.ts';

const WRONG_K = new Uint8Array(16).fill(7);

test('full registration: unprotected REGISTER, 401, protected REGISTER over SA1 with every sec-agree rule, 200 over SA2', async () => {
  const p = await startPair();
  try {
    const { ue, fake } = p;
    const done = ue.register();
    const r1 = await fake.next();
    // 24.229 §5.1.1.2.1: the first REGISTER.
    assert.equal(r1.pctx, undefined, 'the first REGISTER is unprotected');
    assert.equal(r1.req.method, 'REGISTER');
    assert.equal(r1.req.uri, 'sip:ims.example');
    assert.deepEqual(authParams(r1.req), {
      username: 'alice@ims.example',
      realm: 'ims.example',
      uri: 'sip:ims.example',
      nonce: '',
      response: '',
    });
    assert.equal(r1.req.headers.get('Require'), 'sec-agree');
    assert.equal(r1.req.headers.get('Proxy-Require'), 'sec-agree');
    assert.deepEqual(r1.req.headers.getAll('Supported'), ['path', 'sec-agree']);
    assert.match(r1.req.headers.get('Contact')!, new RegExp(`^<sip:alice@127\\.0\\.0\\.1:${ue.plainPort}>;expires=600000$`));
    const via1 = parseViaOrThrow(r1.req.headers.get('Via')!);
    assert.equal(via1.port, ue.plainPort);
    assert.ok(via1.params.has('rport'));
    const sc = parseSecurityHeaderOrThrow(r1.req.headers.getAll('Security-Client'));
    assert.equal(sc.length, 5, 'one entry per default pair (mode UDP-enc-tun)');
    assert.ok(
      sc.every(
        (m) =>
          m.spiC === sc[0]!.spiC &&
          m.spiS === sc[0]!.spiS &&
          m.portC === sc[0]!.portC &&
          m.portS === sc[0]!.portS &&
          m.mod === 'UDP-enc-tun',
      ),
    );
    assert.notEqual(sc[0]!.spiC, sc[0]!.spiS);

    const ch = await fake.challenge(r1);
    const r2 = await fake.next();
    // 33.203 §7.2: over SA1 (port_uc → port_ps) with spi_ps.
    assert.ok(r2.pctx, 'the second REGISTER is protected');
    assert.equal(r2.pctx.sa.name, 'SA1');
    assert.equal(r2.pctx.set, ch.set);
    assert.equal(r2.pctx.sa.spi, parseSecurityHeaderOrThrow(ch.securityServer!)[0]!.spiS);
    assert.equal(r2.remote.port, sc[0]!.portC);
    assert.equal(r2.pctx.local.port, fake.portPs);
    assert.equal(r2.req.headers.get('Call-ID'), r1.req.headers.get('Call-ID'));
    assert.equal(r2.req.headers.get('CSeq'), '2 REGISTER');
    assert.deepEqual(r2.req.headers.raw('Security-Client'), r1.req.headers.raw('Security-Client'), 'Security-Client identical');
    assert.deepEqual(r2.req.headers.raw('Security-Verify'), [ch.securityServer], 'Security-Verify = Security-Server verbatim');
    assert.equal(r2.req.headers.get('Require'), 'sec-agree');
    assert.equal(r2.req.headers.get('Proxy-Require'), 'sec-agree');
    assert.equal(parseViaOrThrow(r2.req.headers.get('Via')!).port, sc[0]!.portS, 'Via names port_us');
    assert.match(r2.req.headers.get('Contact')!, new RegExp(`@127\\.0\\.0\\.1:${sc[0]!.portS}>`));
    const a = authParams(r2.req);
    assert.equal(a['nonce'], ch.nonce);
    assert.equal(a['algorithm'], 'AKAv1-MD5');
    assert.equal(a['qop'], 'auth');
    const expected = digestResponse({
      username: 'alice@ims.example',
      realm: 'ims.example',
      uri: 'sip:ims.example',
      nonce: ch.nonce,
      method: 'REGISTER',
      algorithm: 'AKAv1-MD5',
      res: ch.vector.xres,
      qop: 'auth',
      nc: a['nc']!,
      cnonce: a['cnonce']!,
    });
    assert.equal(a['response'], expected, 'the AKA response verifies against XRES');

    await fake.ok(r2, ch.set!);
    const res = await done;
    assert.ok(res.ok);
    assert.equal(res.expires, 600);
    assert.deepEqual(res.impus, ['sip:alice@ims.example', 'tel:+15550100']);
    assert.deepEqual(res.serviceRoute, ['<sip:orig@127.0.0.1:6060;lr>']);
    assert.equal(ue.state, 'registered');
    assert.ok(
      p.steps.some((s) => /^200 OK over SA2 of set /.test(s)),
      '200 arrived over SA2',
    );
    const st = ue.status();
    assert.equal(st.sets.length, 1);
    assert.equal(st.sets[0]!.state, 'current');
    assert.equal(st.sets[0]!.sas.length, 4);
    assert.ok((st.sets[0]!.expiresInS ?? 0) >= 630 - 1, 'lifetime = expires + 30 s');
    const cur = ue.sas.current!;
    assert.deepEqual(
      [cur.config.ue.spiC, cur.config.ue.spiS, cur.config.ue.portC, cur.config.ue.portS],
      [sc[0]!.spiC, sc[0]!.spiS, sc[0]!.portC, sc[0]!.portS],
    );
    const json = JSON.stringify(st);
    for (const secret of [ch.vector.ik, ch.vector.ck])
      assert.ok(!json.includes(Buffer.from(secret).toString('hex').slice(0, 12)), 'no keys in status');
  } finally {
    await p.close();
  }
});

test('401 without Security-Server, then with an incomplete one: abandon, new Call-ID each time; the third attempt registers', async () => {
  const p = await startPair();
  try {
    const done = p.ue.register();
    const r1 = await p.fake.next();
    await p.fake.challenge(r1, { securityServer: null });
    const r2 = await p.fake.next();
    assert.equal(r2.pctx, undefined);
    assert.notEqual(r2.req.headers.get('Call-ID'), r1.req.headers.get('Call-ID'), 'a new Call-ID');
    assert.equal(authParams(r2.req)['nonce'], '', 'a fresh initial REGISTER');
    await p.fake.challenge(r2, {
      securityServer: `ipsec-3gpp;q=0.1;prot=esp;mod=UDP-enc-tun;spi-c=5000;spi-s=5001;port-c=${p.fake.portPc};alg=hmac-sha-1-96`,
    });
    const r3 = await p.fake.next();
    assert.equal(r3.pctx, undefined);
    assert.notEqual(r3.req.headers.get('Call-ID'), r2.req.headers.get('Call-ID'));
    assert.equal(p.ueBackend.sets.length, 0, 'no SAs built for an abandoned attempt');
    const ch = await p.fake.challenge(r3);
    const r4 = await p.fake.next();
    assert.equal(r4.pctx?.sa.name, 'SA1');
    await p.fake.ok(r4, ch.set!);
    assert.ok((await done).ok);
  } finally {
    await p.close();
  }
});

test('401 without Security-Server every time: gives up after maxAttempts with reason no_security_server', async () => {
  const p = await startPair({ maxAttempts: 2 });
  try {
    const failed: string[] = [];
    p.ue.on('failed', (r) => failed.push(r));
    const done = p.ue.register();
    await p.fake.challenge(await p.fake.next(), { securityServer: null });
    await p.fake.challenge(await p.fake.next(), { securityServer: null });
    const res = await done;
    assert.ok(!res.ok);
    assert.equal(res.reason, 'no_security_server');
    assert.equal(p.ue.state, 'failed');
    assert.deepEqual(failed, ['no_security_server']);
    assert.ok(await p.fake.silent(150));
  } finally {
    await p.close();
  }
});

test('MAC failure (wrong K in the network): empty response, no auts, unprotected, no SAs; 403 ⇒ failed with mac_failure', async () => {
  const p = await startPair();
  try {
    const done = p.ue.register();
    const r1 = await p.fake.next();
    const ch = await p.fake.challenge(r1, { k: WRONG_K });
    const r2 = await p.fake.next();
    assert.equal(r2.pctx, undefined, 'no SA exists, so unprotected');
    const a = authParams(r2.req);
    assert.equal(a['response'], '');
    assert.equal(a['auts'], undefined);
    assert.equal(a['nonce'], ch.nonce);
    assert.equal(r2.req.headers.get('Call-ID'), r1.req.headers.get('Call-ID'));
    assert.equal(p.ueBackend.sets.length, 0, 'no SAs built');
    await p.fake.reply(r2, 403);
    const res = await done;
    assert.ok(!res.ok);
    assert.equal(res.reason, 'mac_failure');
    assert.equal(res.status, 403);
    assert.equal(p.ue.state, 'failed');
  } finally {
    await p.close();
  }
});

test('sync failure (USIM SQN_MS above the network SQN): auts with a response over the empty password, then success', async () => {
  const p = await startPair({ usim: { sqnMs: 0x1000 } });
  try {
    const done = p.ue.register();
    const r1 = await p.fake.next();
    const ch = await p.fake.challenge(r1, { sqn: 0x21 });
    const r2 = await p.fake.next();
    assert.equal(r2.pctx, undefined);
    const a = authParams(r2.req);
    assert.ok(a['auts'], 'auts present');
    const check = verifyAuts({ k: K, opc: OPC, rand: ch.vector.rand, auts: fromBase64(a['auts']!) });
    assert.ok(check.ok, 'MAC-S verifies (AMF* = 0000)');
    assert.equal(Buffer.from(check.sqnMs).toString('hex'), '000000001000');
    assert.equal(
      a['response'],
      digestResponse({
        username: 'alice@ims.example',
        realm: 'ims.example',
        uri: 'sip:ims.example',
        nonce: ch.nonce,
        method: 'REGISTER',
        algorithm: 'AKAv1-MD5',
        res: new Uint8Array(0),
        qop: 'auth',
        nc: a['nc']!,
        cnonce: a['cnonce']!,
      }),
    );
    assert.equal(p.ueBackend.sets.length, 0);
    // The HSS resynchronises above SQN_MS and challenges again.
    const ch2 = await p.fake.challenge(r2, { sqn: 0x1001 });
    const r3 = await p.fake.next();
    assert.equal(r3.pctx?.sa.name, 'SA1');
    assert.equal(r3.req.headers.get('CSeq'), '3 REGISTER');
    await p.fake.ok(r3, ch2.set!);
    assert.ok((await done).ok);
  } finally {
    await p.close();
  }
});

test('invalid challenges: the UE answers two in a row, not a third (24.229 §5.1.1.5.1)', async () => {
  const p = await startPair();
  try {
    const done = p.ue.register();
    let rx = await p.fake.next();
    await p.fake.challenge(rx, { k: WRONG_K });
    rx = await p.fake.next();
    assert.equal(authParams(rx.req)['response'], '');
    await p.fake.challenge(rx, { k: WRONG_K });
    rx = await p.fake.next();
    assert.equal(authParams(rx.req)['response'], '');
    await p.fake.challenge(rx, { k: WRONG_K });
    const res = await done;
    assert.ok(!res.ok);
    assert.equal(res.reason, 'too_many_invalid_challenges');
    assert.ok(await p.fake.silent(150), 'the third challenge is not answered');
    assert.equal(p.ueBackend.sets.length, 0);
  } finally {
    await p.close();
  }
});

test('403 to the protected REGISTER: the temporary set is deleted, reason forbidden', async () => {
  const p = await startPair();
  try {
    const deleted: string[] = [];
    p.ue.on('sa-deleted', (s, why) => deleted.push(`${s.id}:${why}`));
    const done = p.ue.register();
    const ch = await p.fake.challenge(await p.fake.next());
    const r2 = await p.fake.next();
    assert.equal(p.ueBackend.sets.length, 1);
    await p.fake.reply(r2, 403, [], ch.set);
    const res = await done;
    assert.ok(!res.ok);
    assert.equal(res.reason, 'forbidden');
    assert.equal(p.ueBackend.sets.length, 0);
    assert.equal(deleted.length, 1);
    assert.match(deleted[0]!, /:failed$/);
  } finally {
    await p.close();
  }
});

test('registerPair helper: a UE registers and its status lists IMPUs and the Service-Route', async () => {
  const p = await startPair();
  try {
    await registerPair(p, 900);
    const st = p.ue.status();
    assert.equal(st.state, 'registered');
    assert.equal(st.expires, 900);
    assert.deepEqual(st.impus, ['sip:alice@ims.example', 'tel:+15550100']);
  } finally {
    await p.close();
  }
});

test('on the twins (MemoryNetwork + memory backend) the UE registers and sends a MESSAGE without opening a UDP socket', async () => {
  const udpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'UDPWRAP').length;
  const before = udpHandles();
  const p = await startPair();
  try {
    assert.equal(udpHandles(), before, 'the UE (plain SIP through its openPlain option) and the fake P-CSCF opened no UDP socket');
    assert.ok(p.ue.plainPort > 0, 'the plain transport is bound on the MemoryNetwork');
    await registerPair(p);
    assert.equal(p.ue.state, 'registered');
    assert.equal(udpHandles(), before, 'nor did the SA endpoints');
  } finally {
    await p.close();
  }
});

// mod=trans sends ESP over raw IP (protocol 50): needs CAP_NET_RAW, so probe first and say why when skipping.
const rawEsp = await (async () => {
  try {
    const { openRawEsp } = await import('../ipsec/backends/raw-esp.ts');
    (await openRawEsp('127.0.0.1', () => {})).close();
    return undefined;
  } catch (e) {
    return `mod=trans needs a raw ESP socket: ${e instanceof Error ? e.message : String(e)}`;
  }
})();

test('mod=trans (ESP over raw IP): registration and a MESSAGE both ways', { skip: rawEsp }, async () => {
  const p = await startPair({}, 'transport');
  try {
    const { ch } = await registerPair(p);
    assert.equal(p.ue.status().sets[0]!.mode, 'transport');
    assert.match(p.fake.backend.sets[0]!.config.mode, /^transport$/);
    const sent = p.ue.sendMessage('sip:bob@ims.example', 'over ESP');
    const r = await p.fake.next();
    assert.equal(r.pctx?.sa.name, 'SA1');
    await p.fake.reply(r, 200);
    assert.equal((await sent).status, 200);
    assert.equal((await p.fake.request(ch.set!, 'MESSAGE')).pctx?.sa.name, 'SA4');
  } finally {
    await p.close();
  }
});

test('de-registration answered in clear (Kamailio 5.6 deletes its SAs first): not accepted as SIP, the wait ends, reported as such', async () => {
  // Real sockets: the clear answer reaches the UE through the guard socket on its protected port.
  const p = await startPair({}, 'udp-enc-tunnel', '127.0.0.1', 'userspace');
  try {
    await registerPair(p);
    const steps: string[] = [];
    p.ue.on('step', (s) => steps.push(s));
    let failed = false;
    p.ue.on('failed', () => (failed = true));
    const done = p.ue.deregister();
    const rx = await p.fake.next();
    assert.ok(rx.pctx, 'the de-registration goes over the SAs');
    assert.equal(rx.req.headers.get('Expires'), '0');
    // A 200 in clear text to the protected port the request came from.
    await p.fake.replyInClear(rx, 200);
    const r = await done;
    assert.ok(r.ok && r.unprotectedAnswer, JSON.stringify(r));
    assert.ok(
      steps.some((s) => /de-registered; the P-CSCF's answer was not protected/.test(s)),
      steps.join('\n'),
    );
    assert.ok(
      steps.some((s) => /discarded an unprotected 200 OK .* for protected port/.test(s)),
      'noted, never fed to the transaction layer',
    );
    assert.equal(p.ue.state, 'deregistered');
    assert.deepEqual(p.ue.status().sets, []);
    assert.equal(failed, false);
  } finally {
    await p.close();
  }
});

test('a clear 200 for a MESSAGE is not an answer: the MESSAGE waits for its protected one', async () => {
  const p = await startPair({ timers: { t1: 20 } });
  try {
    await registerPair(p);
    const sent = p.ue.sendMessage('sip:bob@ims.example', 'hi');
    const rx = await p.fake.next();
    await p.fake.replyInClear(rx, 200); // dropped: only a de-registration takes a clear answer as its end
    const res = await sent;
    assert.equal(res.status, 408, 'no protected answer: Timer F');
  } finally {
    await p.close();
  }
});

test('de-registration without an answer: "de-registration not confirmed … every SA set removed locally", not "registration failed"', async () => {
  const p = await startPair({ timers: { t1: 20 } });
  try {
    await registerPair(p);
    const steps: string[] = [];
    p.ue.on('step', (s) => steps.push(s));
    let failed = false;
    let deregistered = false;
    p.ue.on('failed', () => (failed = true));
    p.ue.on('deregistered', () => (deregistered = true));
    const r = await p.ue.deregister();
    assert.equal(r.ok, false);
    assert.equal(r.kind, 'deregister');
    assert.ok(
      steps.some((s) => /^de-registration not confirmed: timeout: no final response \(Timer F\); every SA set removed locally$/.test(s)),
      steps.join('\n'),
    );
    assert.ok(!steps.some((s) => /registration failed/.test(s)));
    assert.equal(p.ue.state, 'deregistered');
    assert.deepEqual(p.ue.status().sets, []);
    assert.ok(deregistered && !failed);
  } finally {
    await p.close();
  }
});

test('the USIM SQN array outlives idle (kept as its non-zero slots between procedures): a replayed SQN gets auts, a fresh IND slot passes', async () => {
  const p = await startPair();
  try {
    // SQN 0x45: IND 5 (IND length 5), SEQ 2. Accepted, then the UE is idle (its SQN state compacted).
    const first = p.ue.register();
    const c1 = await p.fake.challenge(await p.fake.next(), { sqn: 0x45 });
    await p.fake.ok(await p.fake.next(), c1.set!, 600);
    assert.ok((await first).ok);
    // The same SQN again (33.102 C.2: SEQ not above SEQ_MS[IND]): a synchronisation failure, AUTS carrying SQN_MS 0x45.
    const again = p.ue.register();
    const r1 = await p.fake.next();
    const ch = await p.fake.challenge(r1, { sqn: 0x45 });
    const r2 = await p.fake.next();
    const a = authParams(r2.req);
    assert.ok(a['auts'], 'the replayed SQN is refused with auts');
    const check = verifyAuts({ k: K, opc: OPC, rand: ch.vector.rand, auts: fromBase64(a['auts']!) });
    assert.ok(check.ok);
    assert.equal(Buffer.from(check.sqnMs).toString('hex'), '000000000045');
    // Another IND slot with a lower SEQ is fresh (the array, not a single SQN_MS floor, survived).
    const c3 = await p.fake.challenge(r2, { sqn: 0x26 });
    await p.fake.ok(await p.fake.next(), c3.set!, 600);
    assert.ok((await again).ok);
  } finally {
    await p.close();
  }
});
