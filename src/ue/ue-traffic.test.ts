// The registered UE: re-registration over the current set (24.229 §5.1.1.4.1, 33.203 §7.4),
// de-registration (§5.1.1.6), requests both ways over the SAs (digest §6.2), the fallback when the
// P-CSCF lost the SAs, and the refresh/expiry timers (in virtual time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSecurityHeaderOrThrow } from '../secagree/index.ts';
import { ManualClock, parseViaOrThrow } from '../sip/index.ts';
import { authParams, registerPair, startPair } from './_fake-pcscf.ts';

const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('re-registration goes over the current set with new port_uc and SPIs, port_us kept; the old set takes requests until the P-CSCF sends over the new one (33.203 §7.4)', async () => {
  const p = await startPair();
  try {
    const { r2, ch } = await registerPair(p);
    const set1 = p.ue.sas.current!;
    const sc1 = parseSecurityHeaderOrThrow(r2.req.headers.getAll('Security-Client'))[0]!;
    const deleted: string[] = [];
    p.ue.on('sa-deleted', (s, why) => deleted.push(`${s.id}:${why}`));

    const done = p.ue.reRegister();
    const r3 = await p.fake.next();
    assert.equal(r3.pctx?.set, ch.set, 're-REGISTER over the current set');
    assert.equal(r3.pctx?.sa.name, 'SA1');
    assert.equal(r3.req.headers.get('Call-ID'), r2.req.headers.get('Call-ID'));
    assert.equal(r3.req.headers.get('CSeq'), '3 REGISTER');
    const sc2 = parseSecurityHeaderOrThrow(r3.req.headers.getAll('Security-Client'))[0]!;
    assert.notEqual(sc2.portC, sc1.portC, 'new port_uc');
    assert.equal(sc2.portS, sc1.portS, 'port_us kept');
    assert.ok(sc2.spiC !== sc1.spiC && sc2.spiS !== sc1.spiS, 'new SPIs');
    assert.deepEqual(r3.req.headers.raw('Security-Verify'), [ch.securityServer], 'Security-Verify = the current Security-Server');
    assert.equal(authParams(r3.req)['response'], authParams(r2.req)['response'], 'cached credentials (24.228 R2-1a)');

    const ch2 = await p.fake.challenge(r3); // the 401 goes back over the current set
    const r4 = await p.fake.next();
    assert.equal(r4.pctx?.set, ch2.set, 'the answer goes over the new temporary set');
    assert.equal(r4.remote.port, sc2.portC);
    assert.deepEqual(r4.req.headers.raw('Security-Client'), r3.req.headers.raw('Security-Client'));
    assert.deepEqual(r4.req.headers.raw('Security-Verify'), [ch2.securityServer]);
    await p.fake.ok(r4, ch2.set!);
    const res = await done;
    assert.ok(res.ok);
    const set2 = p.ue.sas.current!;
    assert.notEqual(set2, set1);
    assert.equal(set2.config.ue.portC, sc2.portC);
    // Nothing is in flight over set1 any more, but the P-CSCF has not sent over set2 yet: it may
    // still send its requests over set1 (Kamailio 5.6 keeps doing so), so set1 stays, as old.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(set1.state, 'old');
    assert.deepEqual(deleted, []);
    const overOld = await p.fake.request(ch.set!, 'MESSAGE', 'over the old set');
    assert.equal(overOld.res.status, 200, 'a request over the old set is taken');
    assert.equal(set1.state, 'old');
    // Requests from the UE go over the new set only.
    const mo = p.ue.sendMessage('sip:echo@ims.example', 'mo');
    const rx = await p.fake.next();
    assert.equal(rx.pctx?.set, ch2.set, 'over the new set');
    await p.fake.reply(rx, 200, [], ch2.set);
    assert.equal((await mo).status, 200);
    assert.equal(set1.state, 'old', 'a response over the new set is no sign that the P-CSCF moved');
    // The P-CSCF's first request over set2: set1 goes.
    assert.equal((await p.fake.request(ch2.set!, 'MESSAGE', 'over the new set')).res.status, 200);
    await until(() => set1.state === 'deleted');
    assert.deepEqual(deleted, [`${set1.id}:transactions-done`]);
    assert.deepEqual(p.ueBackend.sets, [set2]);
    assert.equal(p.ue.state, 'registered');
  } finally {
    await p.close();
  }
});

test('a re-registration refused with 403 deletes the new temporary set and keeps the current one', async () => {
  const p = await startPair();
  try {
    await registerPair(p);
    const set1 = p.ue.sas.current!;
    const done = p.ue.reRegister();
    const r3 = await p.fake.next();
    const ch2 = await p.fake.challenge(r3);
    const r4 = await p.fake.next();
    await p.fake.reply(r4, 403, [], ch2.set);
    const res = await done;
    assert.ok(!res.ok);
    assert.equal(res.reason, 'forbidden');
    assert.equal(p.ue.state, 'registered', 'still registered until expiry');
    assert.equal(p.ue.sas.current, set1);
    assert.deepEqual(p.ueBackend.sets, [set1]);
  } finally {
    await p.close();
  }
});

test('de-registration: Expires 0 over the current set; on the protected 200 every SA set is deleted', async () => {
  const p = await startPair();
  try {
    const { ch } = await registerPair(p);
    let dereg = 0;
    p.ue.on('deregistered', () => dereg++);
    const done = p.ue.deregister();
    const r = await p.fake.next();
    assert.equal(r.pctx?.set, ch.set);
    assert.equal(r.req.headers.get('Expires'), '0');
    assert.match(r.req.headers.get('Contact')!, /;expires=0$/);
    assert.ok(r.req.headers.has('Security-Verify'));
    await p.fake.reply(r, 200);
    const res = await done;
    assert.ok(res.ok);
    assert.equal(p.ue.state, 'deregistered');
    assert.equal(p.ueBackend.sets.length, 0);
    assert.equal(dereg, 1);
    assert.deepEqual(p.ue.status().sets, []);
  } finally {
    await p.close();
  }
});

test('an incoming MESSAGE over SA2 is answered 200 over SA4 (port_us → port_pc); a handler can answer otherwise', async () => {
  const p = await startPair();
  try {
    const { ch } = await registerPair(p);
    const a = await p.fake.request(ch.set!, 'MESSAGE', 'hi UE');
    assert.equal(a.res.status, 200);
    assert.equal(a.pctx?.sa.name, 'SA4');
    assert.equal(a.pctx?.remote.port, p.ue.sas.current!.config.ue.portS);
    assert.equal(a.pctx?.local.port, p.fake.portPc);
    const got: string[] = [];
    p.ue.onRequest((r) => {
      got.push(new TextDecoder().decode(r.request.body));
      return r.request.method === 'INFO' ? { status: 488 } : undefined;
    });
    assert.equal((await p.fake.request(ch.set!, 'NOTIFY', 'n')).res.status, 200);
    assert.equal((await p.fake.request(ch.set!, 'INFO', 'i')).res.status, 488);
    assert.deepEqual(got, ['n', 'i']);
    p.ue.onRequest(() => undefined);
    assert.equal((await p.fake.request(ch.set!, 'SUBSCRIBE')).res.status, 405, 'unknown methods: 405');
  } finally {
    await p.close();
  }
});

test('an unprotected request to the plain port is discarded (24.229 §5.1.1.x)', async () => {
  const p = await startPair();
  try {
    await registerPair(p);
    await p.fake.plainRequest({ address: '127.0.0.1', port: p.ue.plainPort }, 'MESSAGE');
    await until(() => p.steps.some((s) => s.startsWith('discarded an unprotected MESSAGE')));
  } finally {
    await p.close();
  }
});

test('MESSAGE: from port_uc over SA1 with Route P-CSCF + Service-Route and P-Preferred-Identity; its 200 arrives at port_us over SA2', async () => {
  const p = await startPair();
  try {
    await registerPair(p);
    const set = p.ue.sas.current!;
    const sent = p.ue.sendMessage('sip:bob@ims.example', 'hello bob');
    const r = await p.fake.next();
    assert.equal(r.req.method, 'MESSAGE');
    assert.equal(r.pctx?.sa.name, 'SA1');
    assert.equal(r.remote.port, set.config.ue.portC);
    assert.deepEqual(r.req.headers.getAll('Route'), [`<sip:127.0.0.1:${p.fake.portPs};lr>`, '<sip:orig@127.0.0.1:6060;lr>']);
    assert.equal(r.req.headers.get('P-Preferred-Identity'), '<sip:alice@ims.example>');
    assert.equal(parseViaOrThrow(r.req.headers.get('Via')!).port, set.config.ue.portS);
    assert.match(r.req.headers.get('Contact')!, new RegExp(`:${set.config.ue.portS}>$`));
    assert.equal(new TextDecoder().decode(r.req.body), 'hello bob');
    await p.fake.reply(r, 200);
    const res = await sent;
    assert.equal(res.status, 200);
    const recv = p.traces.find(
      (e) => e.dir === 'recv' && e.firstLine.startsWith('SIP/2.0 200') && /MESSAGE/.test(Buffer.from(e.bytes).toString()),
    );
    assert.equal(recv?.sa?.name, 'SA2');
    assert.equal(recv?.local.port, set.config.ue.portS);
  } finally {
    await p.close();
  }
});

test('the P-CSCF lost the SAs: the re-REGISTER gets no answer, the UE falls back to an unprotected initial registration', async () => {
  const p = await startPair({ timers: { t1: 10, t2: 40, t4: 20 } });
  try {
    const { r2, ch } = await registerPair(p);
    await p.fake.backend.remove(ch.set!);
    const done = p.ue.reRegister();
    const r = await p.fake.next(3000);
    assert.equal(r.pctx, undefined, 'unprotected');
    assert.notEqual(r.req.headers.get('Call-ID'), r2.req.headers.get('Call-ID'));
    assert.equal(authParams(r.req)['nonce'], '');
    assert.equal(p.ueBackend.sets.length, 0, 'the stale SAs are gone');
    const ch2 = await p.fake.challenge(r);
    const r2b = await p.fake.next();
    await p.fake.ok(r2b, ch2.set!);
    assert.ok((await done).ok);
    assert.equal(p.ue.state, 'registered');
  } finally {
    await p.close();
  }
});

test('refresh timing (24.229 §5.1.1.4.1): half of a 600 s registration; expiry without refresh deletes the SAs', async () => {
  const clock = new ManualClock();
  const p = await startPair({ clock, reRegister: 'auto' });
  try {
    await registerPair(p, 600);
    clock.advance(299_000);
    assert.ok(await p.fake.silent(100), 'nothing before half time');
    clock.advance(1_000);
    const r = await p.fake.next();
    assert.equal(r.pctx?.set, p.fake.backend.sets[0]);
    assert.equal(p.ue.state, 'reregistering');
    // The network never answers: Timer F ends the refresh attempt, the fallback REGISTER is unanswered too.
    clock.advance(64 * 50);
    const fb = await p.fake.next();
    assert.equal(authParams(fb.req)['nonce'], '', 'fallback to an unprotected initial registration');
    clock.advance(64 * 50);
    await until(() => p.ue.state === 'failed');
    assert.equal(p.ueBackend.sets.length, 0);
  } finally {
    await p.close();
  }
});

test('a registration longer than 1200 s is refreshed 600 s before expiry; with reRegister off it just expires', async () => {
  const clock = new ManualClock();
  const p = await startPair({ clock, reRegister: 'auto' });
  try {
    await registerPair(p, 3600);
    clock.advance(2_999_000);
    assert.ok(await p.fake.silent(100));
    clock.advance(1_000);
    assert.equal((await p.fake.next()).req.method, 'REGISTER');
  } finally {
    await p.close();
  }
  const clock2 = new ManualClock();
  const q = await startPair({ clock: clock2, reRegister: 'off' });
  try {
    const failed: string[] = [];
    q.ue.on('failed', (r) => failed.push(r));
    await registerPair(q, 600);
    clock2.advance(600_000);
    await until(() => q.ue.state === 'failed');
    assert.deepEqual(failed, ['registration_expired']);
    assert.equal(q.ueBackend.sets.length, 0);
  } finally {
    await q.close();
  }
});

test('IPv6 (::1): registration, a MESSAGE out and one in, de-registration', async () => {
  const p = await startPair({}, 'udp-enc-tunnel', '::1');
  try {
    const { ch } = await registerPair(p);
    assert.match(p.ue.status().local, /^::1:/);
    const sent = p.ue.sendMessage('sip:bob@ims.example', 'v6');
    const r = await p.fake.next();
    assert.deepEqual(r.req.headers.getAll('Route')[0], `<sip:[::1]:${p.fake.portPs};lr>`);
    assert.match(r.req.headers.get('Via')!, /^SIP\/2\.0\/UDP \[::1\]:\d+;/);
    await p.fake.reply(r, 200);
    assert.equal((await sent).status, 200);
    assert.equal((await p.fake.request(ch.set!, 'MESSAGE')).pctx?.sa.name, 'SA4');
    const done = p.ue.deregister();
    await p.fake.reply(await p.fake.next(), 200);
    assert.ok((await done).ok);
    assert.equal(p.ueBackend.sets.length, 0);
  } finally {
    await p.close();
  }
});

test('a long hold with refreshes and no request from the P-CSCF: each old set goes at the end of its own lifetime (the old registration expiry + 30 s, digest §8 rule 3); never more than three sets', async () => {
  const clock = new ManualClock();
  const p = await startPair({ clock });
  try {
    const deleted: { id: string; why: string; at: number }[] = [];
    p.ue.on('sa-deleted', (s, why) => deleted.push({ id: s.id, why, at: clock.now() }));
    await registerPair(p, 120);
    const lifetimes = new Map<string, number>([[p.ue.sas.current!.id, clock.now() + 150_000]]);
    let most = 0;
    // Eight refreshes at half the expiry, as a load run's hold does (24.229 §5.1.1.4.1).
    // Time moves in 10 s steps, with the backend removals settling after each (a set's deletion is
    // reported once its removal settled: `at` is then the step its timer fired in).
    const advance = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 10_000) {
        clock.advance(10_000);
        await new Promise((r) => setImmediate(r));
      }
    };
    for (let i = 0; i < 8; i++) {
      await advance(60_000);
      const done = p.ue.reRegister();
      const rx = await p.fake.next();
      const ch = await p.fake.challenge(rx);
      await p.fake.ok(await p.fake.next(), ch.set!, 120);
      assert.ok((await done).ok);
      // Lifetime of the new set: max(previous set's, now + expires + 30 s) = now + 150 s.
      assert.equal(p.ue.sas.current!.expiresAt, clock.now() + 150_000);
      lifetimes.set(p.ue.sas.current!.id, clock.now() + 150_000);
      most = Math.max(most, p.ue.sas.all().length);
    }
    assert.equal(most, 3, 'right after a refresh: current + the sets of the two registrations before');
    await advance(30_000);
    // Every set superseded long enough ago has gone, at its own lifetime, as 'expired'.
    const now = clock.now();
    for (const [id, end] of lifetimes) {
      const d = deleted.find((x) => x.id === id);
      if (end <= now) {
        assert.ok(d, `${id} (lifetime ended at ${end}) deleted by ${now}`);
        assert.equal(d.why, 'expired');
        assert.equal(d.at, end);
      } else assert.equal(d, undefined, `${id} still within its lifetime`);
    }
    assert.equal(p.ue.sas.all().length, 2, '30 s after a refresh: the current set and the one it replaced');
    assert.equal(p.ue.state, 'registered');
  } finally {
    await p.close();
  }
});
