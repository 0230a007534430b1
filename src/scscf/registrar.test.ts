// handleRegister as a pure function (24.229 §5.4.1.2, RFC 3310/4169, RFC 3261 §10.3): the edge cases
// the network tests do not reach — AKAv2 and qop variants, malformed requests, Contact *, caps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildDigestHeader,
  digestResponse,
  getParam,
  parseDigestHeaderOrThrow,
  parseNonceOrThrow,
  serializeDigestHeader,
  type AkaAlgorithm,
} from '../aka/index.ts';
import { toHex } from '../util/bytes.ts';
import type { SipRequest } from '../sip/index.ts';
import type { PendingChallenge } from './auth-pending.ts';
import type { Registration } from './bindings.ts';
import { handleRegister, MAX_GRANT_S, type RegisterOutcome, type RegistrarConfig } from './registrar.ts';
import { ALICE, DOMAIN, setup, usimOf, type RegisterParams } from './_test-helpers.ts';

const CFG: RegistrarConfig = {
  domain: DOMAIN,
  serviceRoute: '<sip:orig@10.0.0.5:6060;lr>',
  regAwaitAuthMs: 240_000,
  challengeReRegister: true,
  defaultExpires: 600_000,
  maxExpires: MAX_GRANT_S,
};

/** A registrar with its state in two Maps, applying the actions as scscf.ts does (no timers). */
async function harness() {
  const s = await setup();
  await s.scscf.stop(); // only its HSS and request builder are used here
  const pending = new Map<string, PendingChallenge>();
  const regs = new Map<string, Registration>();
  const state = { pending: (i: string, c: string) => pending.get(`${i} ${c}`), registration: (i: string) => regs.get(i) };
  const run = (req: SipRequest, cfg: Partial<RegistrarConfig> = {}): RegisterOutcome => {
    const out = handleRegister(req, state, s.hss, { ...CFG, ...cfg }, 0);
    for (const a of out.actions) {
      if (a.kind === 'challenge') pending.set(`${a.pending.impi} ${a.pending.callId}`, a.pending);
      else if (a.kind === 'drop-challenge') pending.delete(`${a.impi} ${a.callId}`);
      else if (a.kind === 'bind') regs.set(a.registration.impi, a.registration);
      else regs.delete(a.impi);
    }
    return out;
  };
  const reg = (p: RegisterParams) => s.ue.register({ callId: 'cid', ...p });
  /** Challenge, then answer with the given algorithm/qop shape. */
  const answer = (alg: AkaAlgorithm, qop: 'auth' | 'auth-int' | undefined, extra: RegisterParams = {}) => {
    const c = run(reg({ ...extra })).response;
    assert.equal(c.status, 401);
    const nonce = getParam(parseDigestHeaderOrThrow(c.headers.get('WWW-Authenticate')!), 'nonce')!;
    const { rand, autn } = parseNonceOrThrow(nonce);
    const r = usimOf(ALICE).respond(rand, autn);
    assert.equal(r.result, 'ok');
    if (r.result !== 'ok') throw new Error('usim');
    const q = qop === undefined ? {} : { qop, nc: '00000001', cnonce: 'abc' };
    const base = { username: ALICE.impi, realm: DOMAIN, uri: `sip:${DOMAIN}`, nonce, algorithm: alg };
    const response = digestResponse({ ...base, ...q, method: 'REGISTER', res: r.res, ik: r.ik, ck: r.ck });
    return run(reg({ ...extra, cseq: 2, auth: { ...base, ...q, response }, integrityProtected: 'yes' }));
  };
  return { run, reg, answer, regs, pending };
}

test('a challenge action carries the vector for (IMPI, Call-ID) with expiry now + reg-await-auth', async () => {
  const h = await harness();
  const out = h.run(h.reg({}));
  assert.equal(out.actions.length, 1);
  const a = out.actions[0]!;
  assert.equal(a.kind, 'challenge');
  if (a.kind !== 'challenge') return;
  assert.equal(a.pending.impi, ALICE.impi);
  assert.equal(a.pending.callId, 'cid');
  assert.equal(a.pending.expiresAt, 240_000);
  assert.equal(a.pending.xres.length, 8);
});

test('the 401 carries the challenge as the Digest serializer writes it (realm quoted and escaped), for any domain', async () => {
  const h = await harness();
  for (const domain of [DOMAIN, 'we"ird\\realm.example', DOMAIN]) {
    const out = h.run(h.reg({ callId: `cid-${domain}` }), { domain });
    const a = out.actions[0]!;
    if (a.kind !== 'challenge') return assert.fail(a.kind);
    const www = out.response.headers.get('WWW-Authenticate')!;
    const fields = {
      realm: domain,
      nonce: a.pending.nonce,
      algorithm: 'AKAv1-MD5',
      qop: 'auth',
      ik: toHex(a.pending.ik),
      ck: toHex(a.pending.ck),
    };
    assert.equal(www, serializeDigestHeader(buildDigestHeader(fields, { challenge: true })));
    assert.equal(getParam(parseDigestHeaderOrThrow(www), 'realm'), domain);
  }
});

test('AKAv2-MD5 answers are accepted (RFC 4169), as are answers without qop (RFC 2069 form) and with qop=auth-int', async () => {
  for (const [alg, qop] of [
    ['AKAv2-MD5', 'auth'],
    ['AKAv1-MD5', undefined],
    ['AKAv1-MD5', 'auth-int'],
  ] as const) {
    const h = await harness();
    const out = h.answer(alg, qop);
    assert.equal(out.response.status, 200, `${alg} qop=${qop}`);
    assert.equal(h.regs.size, 1);
  }
});

test('an unsupported algorithm (plain MD5) is a 403 bad_credentials and drops the challenge', async () => {
  const h = await harness();
  h.run(h.reg({}));
  const out = h.run(
    h.reg({
      cseq: 2,
      auth: {
        username: ALICE.impi,
        realm: DOMAIN,
        uri: `sip:${DOMAIN}`,
        nonce: [...h.pending.values()][0]!.nonce,
        algorithm: 'MD5',
        response: '0'.repeat(32),
      },
    }),
  );
  assert.equal(out.response.status, 403);
  assert.deepEqual(
    out.events.map((e) => (e.type === 'auth-failed' ? e.reason : e.type)),
    ['bad_credentials'],
  );
  assert.equal(h.pending.size, 0);
});

test('malformed REGISTERs get 400: no Contact, bad Expires, Contact * without Expires 0, unparseable Authorization', async () => {
  const h = await harness();
  const noContact = h.reg({});
  noContact.headers.remove('Contact');
  assert.equal(h.run(noContact).response.reason, 'Bad Request (no Contact)');
  const badExpires = h.reg({});
  badExpires.headers.set('Expires', 'soon');
  assert.equal(h.run(badExpires).response.status, 400);
  const star = h.reg({});
  star.headers.set('Contact', '*');
  assert.equal(h.run(star).response.status, 400);
  const badAuth = h.reg({});
  badAuth.headers.set('Authorization', 'Digest username');
  assert.equal(h.run(badAuth).response.status, 400);
  assert.equal(h.pending.size, 0, 'nothing was challenged');
});

test('Contact: * with Expires: 0, integrity-protected, removes the registration', async () => {
  const h = await harness();
  assert.equal(h.answer('AKAv1-MD5', 'auth').response.status, 200);
  const star = h.reg({ cseq: 3, integrityProtected: 'yes' });
  star.headers.set('Contact', '*');
  star.headers.set('Expires', '0');
  const out = h.run(star);
  assert.equal(out.response.status, 200);
  assert.equal(out.response.headers.get('Contact'), undefined);
  assert.equal(h.regs.size, 0);
});

test('an Expires beyond the timer range is capped at MAX_GRANT_S (setTimeout limit)', async () => {
  const h = await harness();
  const out = h.answer('AKAv1-MD5', 'auth', { expires: 4294967295 });
  assert.equal(out.response.headers.get('Expires'), String(MAX_GRANT_S));
});

test('a protected REGISTER of a user with no registration is challenged (no shortcut without a binding)', async () => {
  const h = await harness();
  const out = h.run(h.reg({ integrityProtected: 'yes' }), { challengeReRegister: false });
  assert.equal(out.response.status, 401);
});

test('issue 10 §1: no challenge skipped for a binding the integrity-protected flag was not earned for (24.229 §5.4.1.2.2: contact not previously registered ⇒ 403)', async () => {
  const h = await harness();
  assert.equal(h.answer('AKAv1-MD5', 'auth').response.status, 200);
  const bound = h.regs.get(ALICE.impi)!.contact;
  for (const [expires, cfg] of [
    [0, {}],
    [600, { challengeReRegister: false }],
  ] as const) {
    const other = h.reg({ cseq: 3, integrityProtected: 'yes', expires });
    other.headers.set('Contact', `<sip:alice@192.0.2.99:7777>;expires=${expires}`);
    const out = h.run(other, cfg);
    assert.equal(out.response.status, 403, `expires ${expires}: another contact`);
    assert.equal(h.regs.get(ALICE.impi)?.contact, bound, 'the binding is untouched');
  }
  const star = h.reg({ cseq: 4, integrityProtected: 'yes' });
  star.headers.set('Contact', '*');
  star.headers.set('Expires', '0');
  star.headers.set('Path', '<sip:term@192.0.2.98:5060;lr>');
  assert.equal(h.run(star).response.status, 403, 'Contact: * through another P-CSCF (Path)');
  assert.equal(h.regs.size, 1);
  // The binding the flag was earned for still refreshes without a challenge when so configured.
  assert.equal(h.run(h.reg({ cseq: 5, integrityProtected: 'yes', expires: 600 }), { challengeReRegister: false }).response.status, 200);
});
