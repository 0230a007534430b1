// Attacks of issue 10 §1–3 end to end: a real S-CSCF/HSS and P-CSCF on loopback, real UEs, and an
// attacker that sends crafted requests over real SAs (its own, negotiated honestly) or floods the
// P-CSCF's plain port. Each case checks what must not happen: a victim de-registered, a vector
// spent, pending state growing without bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScriptedUe } from '../../src/pcscf/_test-kit.ts';
import { DEFAULT_PENDING_LIMITS } from '../../src/pcscf/pending-limits.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { DOMAIN, startWorld, subscriber, until, type World } from '../support/ims-world.ts';

async function withWorld(o: Parameters<typeof startWorld>[0], fn: (w: World) => Promise<void>): Promise<void> {
  const w = await startWorld(o);
  try {
    await fn(w);
  } finally {
    await w.close();
  }
}

/** A scripted attacker UE (its own keys and SAs) for subscriber i against the world's P-CSCF. */
async function attacker(w: World, i: number): Promise<ScriptedUe> {
  const pcscf = w.pcscf;
  const s = subscriber(i);
  const a = await ScriptedUe.create({
    pcscf: { address: w.ip, port: pcscf.port, portC: pcscf.portC, portS: pcscf.portS },
    pcEncapPort: w.pcBackend.encapPort,
    ...s,
  });
  return a;
}

const registered = (w: World, i: number) => w.scscf.bindings.has(subscriber(i).impu);

test('§1: registered UE A sends, over its own current SA, REGISTERs naming B (Expires 0, then 600): 403, B stays registered, A keeps its SAs', async () => {
  await withWorld({}, async (w) => {
    const a = await w.ue(1);
    const b = await w.ue(2);
    assert.ok((await a.register()).ok);
    assert.ok((await b.register()).ok);
    const B = subscriber(2);
    const aSets = w.liveSets(w.pcBackend).length;
    for (const expires of ['0', '600']) {
      const res = await a.sendRequest('REGISTER', `sip:${DOMAIN}`, {
        headers: [
          ['To', `<${B.impu}>`],
          ['From', `<${B.impu}>;tag=evil${expires}`],
          ['Authorization', `Digest username="${B.impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response=""`],
          ['Contact', `<sip:evil@${w.ip}:${a.sas.current!.config.ue.portS}>;expires=${expires}`],
          ['Expires', expires],
        ],
      });
      assert.equal(res.status, 403, `Expires ${expires}`);
    }
    assert.ok(registered(w, 2), 'B is still registered at the S-CSCF');
    assert.equal((await b.sendMessage(`sip:echo@${DOMAIN}`, 'still here')).status, 200);
    assert.equal(w.liveSets(w.pcBackend).length, aSets, 'no SA set deleted');
    assert.equal((await a.sendMessage(`sip:echo@${DOMAIN}`, 'me too')).status, 200);
    assert.equal(w.pcscf.counters.rejected['register-identity-mismatch'], 2);
  });
});

test('§1: an attacker over the temporary set of its own challenge (never authenticated) names B with Expires 0: 403, nothing reaches the core', async () => {
  await withWorld({ subscribers: 3 }, async (w) => {
    const b = await w.ue(2);
    assert.ok((await b.register()).ok);
    const evil = await attacker(w, 3);
    try {
      const ch = await evil.unprotectedRegister();
      assert.equal(ch.res.status, 401);
      await evil.acceptChallenge(ch.res);
      const before = w.scscf.counters;
      const r = await evil.registerAs({ ...subscriber(2), expires: 0, over: evil.temporary! });
      assert.equal(r.res.status, 403);
      assert.deepEqual(w.scscf.counters, before, 'the S-CSCF saw nothing');
      assert.ok(registered(w, 2));
      assert.equal((await b.sendMessage(`sip:echo@${DOMAIN}`, 'ok')).status, 200);
    } finally {
      await evil.close();
    }
  });
});

test('§3: a Security-Client with SPIs 1..255 or spi-c = spi-s gets 494 before the core spends a vector (the HSS SQN does not move)', async () => {
  await withWorld({}, async (w) => {
    const evil = await attacker(w, 1);
    try {
      const sqn = w.store.get(subscriber(1).impi)!.sqn;
      const good = evil.clientHeader;
      for (const client of [good.replace(/spi-c=\d+/, 'spi-c=255'), good.replace(/spi-s=\d+/, `spi-s=${evil.spis[0]}`)]) {
        const r = await evil.unprotectedRegister({ client });
        assert.equal(r.res.status, 494);
        assert.match(r.res.headers.get('Warning') ?? '', /spi/);
      }
      assert.equal(w.store.get(subscriber(1).impi)!.sqn, sqn, 'no authentication vector spent');
      assert.equal(w.scscf.pendingChallenges, 0);
    } finally {
      await evil.close();
    }
  });
});

test('§2: a flood of unanswered initial REGISTERs from one address meets 503 past its limit while a UE from another address registers', async () => {
  const limit = 20;
  await withWorld({ subscribers: 40, limits: { maxPendingPerSource: limit } }, async (w) => {
    const evil = [];
    for (let i = 1; i <= 39; i++) evil.push(await attacker(w, i));
    try {
      const answers = await Promise.all(evil.map((e) => e.unprotectedRegister()));
      const by = (s: number) => answers.filter((a) => a.res.status === s).length;
      assert.equal(by(401), limit);
      assert.equal(by(503), 39 - limit);
      assert.ok(answers.every((a) => a.res.status !== 503 || /^\d+$/.test(a.res.headers.get('Retry-After') ?? '')));
      assert.equal(w.scscf.pendingChallenges, limit, 'vectors spent only within the limit');
      // Subscriber 40 from another loopback address (127.0.0.2): not affected by 127.0.0.1's limit.
      const legit = await w.ue(40, { localIp: '127.0.0.2' });
      assert.ok((await legit.register()).ok);
      assert.equal(w.pcscf.counters.rejected['overload-pending-source'], 39 - limit);
    } finally {
      for (const e of evil) await e.close();
    }
  });
  assert.ok(DEFAULT_PENDING_LIMITS.maxPendingPerSource >= 200, 'the default leaves room for a NAT or a load generator');
});

test('§2: pending state always ends: unanswered challenges go after reg-await-auth and give their slots back', async () => {
  const clock = new ManualClock();
  await withWorld({ subscribers: 3, limits: { maxPendingPerSource: 2 }, clock }, async (w) => {
    const evil = [await attacker(w, 1), await attacker(w, 2), await attacker(w, 3)];
    try {
      assert.equal((await evil[0]!.unprotectedRegister()).res.status, 401);
      assert.equal((await evil[1]!.unprotectedRegister()).res.status, 401);
      assert.equal((await evil[2]!.unprotectedRegister()).res.status, 503);
      assert.equal(w.pcscf.registrations().length, 2);
      clock.advance(240_000);
      await until(
        () => w.pcscf.registrations().length === 0 && w.liveSets(w.pcBackend).length === 0,
        'temporary sets and pending registrations gone',
      );
      assert.equal((await evil[2]!.unprotectedRegister()).res.status, 401, 'the slots were given back');
    } finally {
      for (const e of evil) await e.close();
    }
  });
});
