// The P-CSCF registration machine on its own (registration-state.ts `step`): a table of state ×
// event cases, attacker events included, then random event sequences run against a model of the
// slot owner (sa-slots.ts semantics: temporary/current/old, set-gone on every drop) checking that no
// SA set is ever live without a registration counting on it, that no registration points at a
// deleted set, and that pending-limit holds are released exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { buildSecurityClient, serializeMechanisms } from '../secagree/index.ts';
import { createRequest, createResponse } from '../sip/builders.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import {
  IDLE,
  securityServerText,
  setsOf,
  step,
  type Arrival,
  type RegAction,
  type RegEnv,
  type RegEvent,
  type RegState,
  type SetId,
} from './registration-state.ts';

const PC = '192.0.2.1';
const UE_IP = '198.51.100.7';
const DOMAIN = 'ims.example.org';
const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const impuOf = (impi: string) => `sip:${impi}`;
const KEYS = () => ({ ik: new Uint8Array(16).fill(1), ck: new Uint8Array(16).fill(2) });

function env(impi: string, o: Partial<RegEnv> = {}): RegEnv {
  return {
    impi,
    now: 1_000_000,
    mode: 'auto',
    policy: {},
    natInnerAddress: 'private',
    regAwaitAuthMs: 240_000,
    address: PC,
    port: 5060,
    portC: 5100,
    portS: 6100,
    pathUri: `sip:term@${PC}:5060;lr`,
    isMine: () => false,
    setWithClientPort: () => undefined,
    admit: () => ({ ok: true }),
    ...o,
  };
}

function client(portUc: number, spi = 3000): string {
  return serializeMechanisms(
    buildSecurityClient([{ alg: 'hmac-sha-1-96', ealg: 'null' }], { spiC: spi, spiS: spi + 1, portC: portUc, portS: 7777 }, ['trans']),
  );
}

interface Reg {
  impi: string;
  /** Public identity in To (default the IMPI's). */
  impu?: string;
  portUc?: number;
  client?: string | null;
  verify?: string;
  expires?: number;
  callId?: string;
}
let cseq = 1;
function register(o: Reg): SipRequest {
  const headers: [string, string][] = [
    ['Contact', `<sip:u@${UE_IP}:7777>;expires=${o.expires ?? 600}`],
    ['Authorization', `Digest username="${o.impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response=""`],
  ];
  const c = o.client === undefined ? client(o.portUc ?? 5000) : o.client;
  if (c !== null) headers.push(['Security-Client', c]);
  if (o.verify !== undefined) headers.push(['Security-Verify', o.verify]);
  const impu = o.impu ?? impuOf(o.impi);
  return createRequest({
    method: 'REGISTER',
    uri: `sip:${DOMAIN}`,
    via: `SIP/2.0/UDP ${UE_IP}:5060;branch=z9hG4bK${cseq}`,
    from: `<${impu}>;tag=f`,
    to: `<${impu}>`,
    callId: o.callId ?? `call-${o.impi}`,
    cseq: cseq++,
    headers,
  });
}
const unprotected = (o: Reg, roundId = cseq): RegEvent => ({
  type: 'unprotected-register',
  req: register(o),
  from: { address: UE_IP, port: 5060 },
  protocol: 'udp',
  roundId,
});
function ok(req: SipRequest, expires = 600): SipResponse {
  return createResponse(req, 200, undefined, [
    ['Contact', `<sip:u@${UE_IP}:7777>;expires=${expires}`],
    ['P-Associated-URI', `<${req.headers.get('To')!.replace(/[<>]/g, '')}>`],
  ]);
}
const kinds = (t: { actions: readonly RegAction[] }) => t.actions.map((a) => a.kind);
const forwardOf = (t: { actions: readonly RegAction[] }): Arrival =>
  (t.actions.find((a) => a.kind === 'forward') as Extract<RegAction, { kind: 'forward' }>).arrival;

/** Alice through 401 and temporary set 'T' to registered on 'T' (or only to challenged). */
function challenged(impi = ALICE, set = 'T', portUc = 5000): { state: RegState; verify: string; client: string; req: SipRequest } {
  const first = step(IDLE, unprotected({ impi, portUc }, 1), env(impi));
  assert.equal(first.state.kind, 'awaiting-challenge');
  const a = forwardOf(first);
  const r401 = createResponse(a.req, 401);
  const inst = step(first.state, { type: 'answered', arrival: a, res: r401, keys: KEYS() }, env(impi));
  assert.deepEqual(kinds(inst), ['install-temporary']);
  const done = step(inst.state, { type: 'temporary-installed', roundId: 1, set, spis: { spiC: 9000, spiS: 9001 }, res: r401 }, env(impi));
  assert.equal(done.state.kind, 'challenged');
  const relay = done.actions[0] as Extract<RegAction, { kind: 'relay' }>;
  return { state: done.state, verify: relay.securityServer!, client: client(portUc), req: a.req };
}
function registered(impi = ALICE, set = 'T'): RegState {
  const c = challenged(impi, set);
  const p = step(
    c.state,
    { type: 'register-over-set', req: register({ impi, client: c.client, verify: c.verify }), set, roundId: 2 },
    env(impi),
  );
  const arrival = forwardOf(p);
  const r = step(p.state, { type: 'answered', arrival, res: ok(arrival.req) }, env(impi));
  assert.deepEqual(kinds(r), ['promote', 'emit-registered', 'relay', 'release-pending']);
  assert.equal(r.state.kind, 'registered');
  return r.state;
}

test('machine table: the happy path — unprotected REGISTER held and forwarded, 401 installs, protected REGISTER promotes and releases the hold', () => {
  const first = step(IDLE, unprotected({ impi: ALICE }, 1), env(ALICE));
  assert.deepEqual(kinds(first), ['hold-pending', 'forward']);
  const c = challenged();
  assert.deepEqual(setsOf(c.state), ['T']);
  const p = step(
    c.state,
    { type: 'register-over-set', req: register({ impi: ALICE, client: c.client, verify: c.verify }), set: 'T', roundId: 2 },
    env(ALICE),
  );
  assert.deepEqual(kinds(p), ['forward']);
  assert.match(forwardOf(p).req.headers.get('Authorization')!, /username="alice/);
  const r = step(p.state, { type: 'answered', arrival: forwardOf(p), res: ok(forwardOf(p).req) }, env(ALICE));
  assert.deepEqual(kinds(r), ['promote', 'emit-registered', 'relay', 'release-pending']);
  assert.equal(r.state.kind === 'registered' && r.state.bound.current, 'T');
});

test('machine table: every refusal before forwarding leaves the state as it was (494 before a vector is spent, 503, admission 403, 483)', () => {
  const base = challenged().state;
  let spent = 0;
  const counting = env(ALICE, { admit: () => (spent++, { ok: true }) });
  const cases: [string, RegEvent, RegEnv, number, string][] = [
    ['no Security-Client', unprotected({ impi: ALICE, client: null }), counting, 494, 'no-security-client'],
    ['SPI in 1..255', unprotected({ impi: ALICE, client: client(5000, 100) }), counting, 494, 'bad-security-client'],
    ['no IMPI', unprotected({ impi: '' }), counting, 403, 'no-impi'],
    [
      'over the pending limit',
      unprotected({ impi: ALICE }),
      env(ALICE, { admit: () => ({ ok: false, reason: 'overload-pending-source', retryAfterS: 30, message: 'full' }) }),
      503,
      'overload-pending-source',
    ],
    [
      'port_uc tied to another set',
      unprotected({ impi: ALICE, portUc: 5001 }),
      env(ALICE, { setWithClientPort: () => 'B#1' }),
      403,
      'admission-port-in-use',
    ],
  ];
  for (const [what, ev, e, status, reason] of cases) {
    const t = step(base, ev, e);
    assert.equal(t.state, base, what);
    assert.deepEqual(
      t.actions,
      [
        {
          kind: 'reject',
          status,
          reason,
          message: (t.actions[0] as { message: string }).message,
          ...(status === 503 ? { headers: [['Retry-After', '30']] } : {}),
        },
      ],
      what,
    );
  }
  assert.equal(spent, 0, 'the 494s and the 403 for a missing IMPI come before the limits (no token, no vector)');
  const hops = register({ impi: BOB });
  hops.headers.set('Max-Forwards', '0');
  const t = step(
    IDLE,
    { type: 'unprotected-register', req: hops, from: { address: UE_IP, port: 5060 }, protocol: 'udp', roundId: 9 },
    env(BOB),
  );
  assert.deepEqual([t.state, kinds(t)], [IDLE, ['reject']]);
});

test('machine table: attacker REGISTERs over a set — another identity, a tampered Security-Verify, an old set, a set not counted on', () => {
  const c = challenged();
  // Bob's identity over Alice's temporary set: refused, the set stays for Alice.
  const bob = step(
    c.state,
    { type: 'register-over-set', req: register({ impi: BOB, client: c.client, verify: c.verify }), set: 'T', roundId: 3 },
    env(ALICE),
  );
  assert.equal(bob.state, c.state);
  assert.deepEqual(
    bob.actions.map((a) => a.kind === 'reject' && a.reason),
    ['register-identity-mismatch'],
  );
  // Alice's IMPI but another public identity.
  const to = step(
    c.state,
    {
      type: 'register-over-set',
      req: register({ impi: ALICE, impu: 'sip:carol@ims.example.org', client: c.client, verify: c.verify }),
      set: 'T',
      roundId: 3,
    },
    env(ALICE),
  );
  assert.equal(to.state, c.state);
  // Tampered Security-Verify: 403 over the set, which is deleted after the answer; the set-up ends.
  const sv = step(
    c.state,
    {
      type: 'register-over-set',
      req: register({ impi: ALICE, client: c.client, verify: c.verify.replace('spi-c=9000', 'spi-c=9002') }),
      set: 'T',
      roundId: 3,
    },
    env(ALICE),
  );
  assert.equal(sv.state.kind, 'idle');
  assert.deepEqual(
    sv.actions.map((a) => [a.kind, a.kind === 'reject' && a.reason, a.kind === 'reject' && a.after?.kind]),
    [
      ['reject', 'security-verify-mismatch', 'delete-set'],
      ['release-pending', false, false],
    ],
  );
  // A changed Security-Client.
  const sc = step(
    c.state,
    { type: 'register-over-set', req: register({ impi: ALICE, client: client(5009), verify: c.verify }), set: 'T', roundId: 3 },
    env(ALICE),
  );
  assert.equal(sc.actions[0]!.kind === 'reject' && sc.actions[0]!.reason, 'security-client-changed');
  // The same Security-Client spelled otherwise (spaces around ';', upper case) is the same offer: the set-up goes on.
  const respelled = step(
    c.state,
    {
      type: 'register-over-set',
      req: register({ impi: ALICE, client: c.client.replace(/;/g, ' ; ').toUpperCase(), verify: c.verify }),
      set: 'T',
      roundId: 3,
    },
    env(ALICE),
  );
  assert.deepEqual(
    respelled.actions.map((a) => a.kind),
    ['forward'],
  );
  // Bob's identity over Alice's current set (a de-registration of somebody else): refused, nothing changes.
  const reg = registered();
  const d = step(reg, { type: 'register-over-set', req: register({ impi: BOB, expires: 0 }), set: 'T', roundId: 4 }, env(ALICE));
  assert.equal(d.state, reg);
  assert.equal(d.actions[0]!.kind === 'reject' && d.actions[0]!.reason, 'register-identity-mismatch');
  // A set the registration does not count on (a replaced temporary set still waiting for its deletion).
  const stale = step(reg, { type: 'register-over-set', req: register({ impi: ALICE }), set: 'T-old', roundId: 4 }, env(ALICE));
  assert.equal(stale.state, reg);
  assert.equal(stale.actions[0]!.kind === 'reject' && stale.actions[0]!.reason, 'not-temporary-set');
});

test("machine table: late, duplicated and unknown answers change nothing; a replaced round's install is deleted", () => {
  const c = challenged();
  // The auth response of a round that is gone: a second 200 after promotion (duplicate) does not promote twice.
  const p = step(
    c.state,
    { type: 'register-over-set', req: register({ impi: ALICE, client: c.client, verify: c.verify }), set: 'T', roundId: 2 },
    env(ALICE),
  );
  const arrival = forwardOf(p);
  const r = step(p.state, { type: 'answered', arrival, res: ok(arrival.req) }, env(ALICE));
  const again = step(r.state, { type: 'answered', arrival, res: ok(arrival.req) }, env(ALICE));
  assert.deepEqual([again.state, kinds(again)], [r.state, ['relay']]);
  const refused = step(r.state, { type: 'answered', arrival, res: createResponse(arrival.req, 403) }, env(ALICE));
  assert.deepEqual(
    [refused.state, kinds(refused)],
    [r.state, ['relay']],
    'a 403 to a stale protected REGISTER does not delete the current set',
  );
  // A 401 for a replaced round goes on without Security-Server; an install that ends after its round was replaced is deleted.
  const first = step(IDLE, unprotected({ impi: ALICE }, 1), env(ALICE));
  const second = step(first.state, unprotected({ impi: ALICE, portUc: 5002 }, 2), env(ALICE));
  const late401 = createResponse(forwardOf(first).req, 401);
  assert.deepEqual(kinds(step(second.state, { type: 'answered', arrival: forwardOf(first), res: late401, keys: KEYS() }, env(ALICE))), [
    'relay',
  ]);
  const inst = step(
    second.state,
    { type: 'temporary-installed', roundId: 1, set: 'X', spis: { spiC: 9000, spiS: 9001 }, res: late401 },
    env(ALICE),
  );
  assert.deepEqual(
    inst.actions.map((a) => (a.kind === 'delete-set' ? `delete ${a.set}` : a.kind)),
    ['delete X', 'relay'],
  );
  assert.equal(inst.state, second.state);
  // Timers of another round, set-gone of a foreign set, expiry of nothing.
  for (const ev of [
    { type: 'round-timeout', roundId: 1 },
    { type: 'set-gone', set: 'Z' },
    { type: 'forward-failed', arrival: forwardOf(first) },
  ] as RegEvent[]) {
    assert.equal(step(second.state, ev, env(ALICE)).state, second.state, ev.type);
  }
  assert.deepEqual(step(IDLE, { type: 'registration-expired' }, env(ALICE)), { state: IDLE, actions: [] });
  // A 401 without ik/ck: 500 to the UE, the round ends.
  const nokeys = step(first.state, { type: 'answered', arrival: forwardOf(first), res: late401 }, env(ALICE));
  assert.deepEqual([nokeys.state.kind, kinds(nokeys)], ['idle', ['refuse-relay', 'release-pending']]);
});

test('machine table: re-registration, refresh without challenge, de-registration and expiry', () => {
  const reg = registered();
  // Re-REGISTER with a new offer over the current set: a new round, bound kept, nothing held.
  const rr = step(
    reg,
    { type: 'register-over-set', req: register({ impi: ALICE, portUc: 5003, callId: 'c2' }), set: 'T', roundId: 7 },
    env(ALICE),
  );
  assert.equal(rr.state.kind, 'awaiting-challenge');
  assert.deepEqual(kinds(rr), ['forward']);
  assert.deepEqual(setsOf(rr.state), ['T']);
  // --no-challenge-reregister: the 200 refreshes the current set.
  const ok200 = step(
    rr.state,
    { type: 'answered', arrival: forwardOf(rr), res: ok(forwardOf(rr).req, 900) },
    env(ALICE, { now: 2_000_000 }),
  );
  assert.equal(ok200.state.kind, 'registered');
  assert.deepEqual(
    ok200.actions.map((a) => (a.kind === 'refresh' ? `refresh ${a.lifetime}` : a.kind)),
    [`refresh ${2_000_000 + 930_000}`, 'relay'],
  );
  // De-registration: the 200 goes out, then every set.
  const de = step(
    reg,
    { type: 'register-over-set', req: register({ impi: ALICE, expires: 0, client: null }), set: 'T', roundId: 8 },
    env(ALICE),
  );
  assert.equal(de.state, reg, 'no offer in a de-registration: no round');
  const gone = step(de.state, { type: 'answered', arrival: forwardOf(de), res: ok(forwardOf(de).req, 0) }, env(ALICE));
  assert.equal(gone.state.kind, 'idle');
  assert.deepEqual(
    gone.actions.map((a) => (a.kind === 'relay' ? `relay then ${a.after?.kind}` : a.kind)),
    ['emit-deregistered', 'relay then delete-all'],
  );
  // REGISTER over an old set.
  const c2 = step(
    rr.state,
    { type: 'answered', arrival: forwardOf(rr), res: createResponse(forwardOf(rr).req, 401), keys: KEYS() },
    env(ALICE),
  );
  const inst = step(
    c2.state,
    { type: 'temporary-installed', roundId: 7, set: 'T2', spis: { spiC: 9100, spiS: 9101 }, res: createResponse(forwardOf(rr).req, 401) },
    env(ALICE),
  );
  const verify = (inst.actions[0] as Extract<RegAction, { kind: 'relay' }>).securityServer!;
  const prot = step(
    inst.state,
    { type: 'register-over-set', req: register({ impi: ALICE, portUc: 5003, verify }), set: 'T2', roundId: 9 },
    env(ALICE),
  );
  const promoted = step(prot.state, { type: 'answered', arrival: forwardOf(prot), res: ok(forwardOf(prot).req) }, env(ALICE));
  assert.deepEqual(setsOf(promoted.state), ['T2', 'T']);
  const overOld = step(promoted.state, { type: 'register-over-set', req: register({ impi: ALICE }), set: 'T', roundId: 10 }, env(ALICE));
  assert.equal(overOld.actions[0]!.kind === 'reject' && overOld.actions[0]!.reason, 'register-over-old-set');
  // Expiry: every set goes.
  const exp = step(promoted.state, { type: 'registration-expired' }, env(ALICE));
  assert.deepEqual([exp.state.kind, kinds(exp)], ['idle', ['emit-deregistered', 'delete-all']]);
  // The table keeps no registration timer: the current set's lifetime running out is the registration's expiry.
  assert.deepEqual(step(promoted.state, { type: 'set-gone', set: 'T2', expired: true }, env(ALICE)), exp);
  // An old set that expires, or a current set deleted for another cause, is no registration expiry.
  const oldGone = step(promoted.state, { type: 'set-gone', set: 'T', expired: true }, env(ALICE));
  assert.deepEqual([oldGone.state.kind, setsOf(oldGone.state)], ['registered', ['T2']]);
  const currentDeleted = step(promoted.state, { type: 'set-gone', set: 'T2' }, env(ALICE));
  assert.deepEqual([currentDeleted.state.kind, kinds(currentDeleted)], ['idle', ['emit-deregistered', 'delete-set']]);
  assert.notDeepEqual(currentDeleted, exp);
});

// ---- property: random event sequences against a model of the slot owner ----------------------

type Role = 'temporary' | 'current' | 'old';
/** The slot owner, as sa-slots.ts behaves: one temporary (a new one replaces it), one current, old ones. */
class Model {
  readonly states = new Map<string, RegState>();
  readonly sets = new Map<SetId, { impi: string; role: Role; portUc: number }>();
  readonly held = new Set<number>();
  readonly arrivals: { impi: string; arrival: Arrival }[] = [];
  readonly installs: { impi: string; a: Extract<RegAction, { kind: 'install-temporary' }> }[] = [];
  #ids = 0;
  roundIds = 100;

  env(impi: string): RegEnv {
    return env(impi, {
      setWithClientPort: (_ip, _inner, port) => [...this.sets].find(([, s]) => s.portUc === port)?.[0],
    });
  }
  state(impi: string): RegState {
    return this.states.get(impi) ?? IDLE;
  }
  feed(impi: string, ev: RegEvent): void {
    const t = step(this.state(impi), ev, this.env(impi));
    this.states.set(impi, t.state);
    for (const a of t.actions) this.exec(impi, a);
  }
  exec(impi: string, a: RegAction): void {
    switch (a.kind) {
      case 'hold-pending':
        assert.ok(!this.held.has(a.roundId), 'held twice');
        this.held.add(a.roundId);
        return;
      case 'release-pending':
        assert.ok(this.held.delete(a.roundId), 'released a round that was not held');
        return;
      case 'forward':
        this.arrivals.push({ impi, arrival: a.arrival });
        return;
      case 'install-temporary':
        this.installs.push({ impi, a });
        return;
      case 'reject':
      case 'relay':
        if (a.after?.kind === 'delete-set') this.drop(a.after.set);
        if (a.after?.kind === 'delete-all') this.dropAll(impi);
        return;
      case 'delete-set':
        return this.drop(a.set);
      case 'delete-all':
        return this.dropAll(impi);
      case 'promote': {
        const s = this.sets.get(a.set);
        assert.equal(s?.role, 'temporary', 'promote of a set that is not the temporary one');
        for (const [id, o] of this.sets) if (o.impi === impi && o.role === 'current') ((o.role = 'old'), void id);
        s.role = 'current';
        return;
      }
      case 'refresh':
        assert.ok(
          [...this.sets.values()].some((s) => s.impi === impi && s.role === 'current'),
          'refresh without a current set',
        );
        return;
      default:
        return;
    }
  }
  /** Completes a pending install as the executor does: into the slots (replacing their temporary set), then the event. */
  finishInstall(k: number): void {
    const [x] = this.installs.splice(k, 1);
    if (!x) return;
    for (const [id, o] of this.sets) if (o.impi === x.impi && o.role === 'temporary') this.drop(id);
    const id = `S${++this.#ids}`;
    this.sets.set(id, { impi: x.impi, role: 'temporary', portUc: x.a.round.choice.client.portC });
    this.feed(x.impi, {
      type: 'temporary-installed',
      roundId: x.a.round.id,
      set: id,
      spis: { spiC: 9000 + 2 * this.#ids, spiS: 9001 + 2 * this.#ids },
      res: x.a.res,
    });
  }
  drop(id: SetId): void {
    const s = this.sets.get(id);
    if (!s) return;
    this.sets.delete(id);
    this.feed(s.impi, { type: 'set-gone', set: id });
  }
  dropAll(impi: string): void {
    for (const [id, s] of [...this.sets]) if (s.impi === impi) this.drop(id);
  }

  check(): void {
    const referenced = new Map<SetId, string>();
    for (const [impi, st] of this.states) {
      for (const id of setsOf(st)) {
        assert.ok(!referenced.has(id), `${id} counted on by two registrations`);
        referenced.set(id, impi);
        const s = this.sets.get(id);
        assert.ok(s, `${impi} points at deleted set ${id} (${st.kind})`);
        assert.equal(s.impi, impi, `${id} owned by ${s.impi}, counted on by ${impi}`);
        const role: Role =
          st.kind === 'challenged' && st.temporary === id
            ? 'temporary'
            : st.kind !== 'idle' && st.bound?.current === id
              ? 'current'
              : 'old';
        assert.equal(s.role, role, `${id}: slot ${s.role}, state says ${role}`);
      }
    }
    for (const id of this.sets.keys()) assert.ok(referenced.has(id), `live set ${id} has no registration counting on it`);
    const rounds = new Set<number>();
    for (const st of this.states.values())
      if ((st.kind === 'awaiting-challenge' || st.kind === 'challenged') && st.round.origin === 'unprotected') rounds.add(st.round.id);
    assert.deepEqual([...this.held].sort(), [...rounds].sort(), 'holds = unprotected rounds in progress');
  }
}

const impiArb = fc.constantFrom(ALICE, BOB);
/** True about `pct` % of the time (in tenths; constantFrom is not biased the way integers are). */
const often = (pct: number) => fc.constantFrom(...Array.from({ length: 10 }, (_, i) => i * 10 < pct));
const cmdArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('unprotected' as const),
      impi: impiArb,
      port: fc.integer({ min: 5000, max: 5003 }),
      other: often(10),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      t: fc.constant('answer' as const),
      k: fc.nat(),
      latest: often(70),
      status: fc.constantFrom(200, 200, 401, 401, 403, 500),
      keys: often(85),
      dereg: often(15),
    }),
  },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('install' as const), k: fc.nat() }) },
  // Mostly the owner's honest REGISTERs (they move the machine); attacker variants a fair share.
  {
    weight: 10,
    arbitrary: fc.record({
      t: fc.constant('over-set' as const),
      k: fc.nat(),
      temp: often(60),
      asOwner: often(80),
      tamper: often(10),
      offer: often(40),
      expires: fc.constantFrom(600, 600, 600, 0),
      port: fc.integer({ min: 5000, max: 5003 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('timeout' as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fail' as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('gone' as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('expired' as const), impi: impiArb }) },
);

test('property: random event sequences never leave a live SA set without its registration, nor a registration pointing at a deleted set', () => {
  const reached = new Set<string>();
  fc.assert(
    fc.property(fc.boolean(), fc.array(cmdArb, { minLength: 5, maxLength: 100, size: 'max' }), (twice, cmds) => {
      const m = new Model();
      // Alice starts registered (unprotected REGISTER, 401, temporary set, protected REGISTER, 200),
      // and with `twice` re-registered once more over her current set (one old set kept).
      const fullRound = (start: (roundId: number) => void) => {
        start(++m.roundIds);
        const first = m.arrivals.pop()!.arrival;
        m.feed(ALICE, { type: 'answered', arrival: first, res: createResponse(first.req, 401), keys: KEYS() });
        m.finishInstall(0);
        const ch = m.state(ALICE) as Extract<RegState, { kind: 'challenged' }>;
        m.feed(ALICE, {
          type: 'register-over-set',
          req: register({ impi: ALICE, client: ch.round.client.raw.join(', '), verify: serializeMechanisms(ch.server) }),
          set: ch.temporary,
          roundId: ++m.roundIds,
        });
        const prot = m.arrivals.pop()!.arrival;
        m.feed(ALICE, { type: 'answered', arrival: prot, res: ok(prot.req) });
        assert.equal(m.state(ALICE).kind, 'registered');
        m.check();
      };
      fullRound((id) => m.feed(ALICE, unprotected({ impi: ALICE, portUc: 5000 }, id)));
      if (twice) {
        const st = m.state(ALICE) as Extract<RegState, { kind: 'registered' }>;
        fullRound((id) =>
          m.feed(ALICE, {
            type: 'register-over-set',
            req: register({ impi: ALICE, portUc: 5001, verify: securityServerText(st.bound, env(ALICE)) }),
            set: st.bound.current,
            roundId: id,
          }),
        );
        assert.equal((m.state(ALICE) as Extract<RegState, { kind: 'registered' }>).bound.old.length, 1);
      }
      for (const st of m.states.values()) reached.add(st.kind === 'registered' && st.bound.old.length > 0 ? 'registered+old' : st.kind);
      for (const c of cmds) {
        switch (c.t) {
          case 'unprotected':
            m.feed(c.impi, unprotected({ impi: c.impi, portUc: c.port, impu: c.other ? impuOf(BOB) : undefined }, ++m.roundIds));
            break;
          case 'answer': {
            if (m.arrivals.length === 0) break;
            // Mostly the newest forward (the S-CSCF answers promptly), sometimes a stale one.
            const { impi, arrival } = m.arrivals.splice(c.latest ? -1 : c.k % m.arrivals.length, 1)[0]!;
            const res = c.status === 200 ? ok(arrival.req, c.dereg ? 0 : 600) : createResponse(arrival.req, c.status);
            m.feed(impi, { type: 'answered', arrival, res, ...(c.keys && { keys: KEYS() }) });
            break;
          }
          case 'install':
            if (m.installs.length > 0) m.finishInstall(c.k % m.installs.length);
            break;
          case 'over-set': {
            // Any live set, any identity: the executor hands the REGISTER to the set's owner.
            const ids = [...m.sets.keys()];
            if (ids.length === 0) break;
            // Often the temporary set of a set-up in progress (the path that moves the machine on).
            const temps = ids.filter((i) => m.sets.get(i)!.role === 'temporary');
            const id = c.temp && temps.length > 0 ? temps[c.k % temps.length]! : ids[c.k % ids.length]!;
            const owner = m.sets.get(id)!.impi;
            const st = m.state(owner);
            const verify =
              st.kind === 'challenged'
                ? serializeMechanisms(st.server)
                : st.kind !== 'idle'
                  ? st.bound
                    ? securityServerText(st.bound, env(owner))
                    : ''
                  : undefined;
            const cl = st.kind === 'challenged' && !c.offer ? st.round.client.raw.join(', ') : client(c.port, 4000 + (c.k % 1000));
            m.feed(owner, {
              type: 'register-over-set',
              req: register({
                impi: c.asOwner ? owner : owner === ALICE ? BOB : ALICE,
                client: cl,
                ...(verify && { verify: c.tamper ? verify.replace(/spi-c=\d+/, 'spi-c=12345') : verify }),
                expires: c.expires,
              }),
              set: id,
              roundId: ++m.roundIds,
            });
            break;
          }
          case 'timeout': {
            m.feed([ALICE, BOB][c.k % 2]!, { type: 'round-timeout', roundId: 100 + (c.k % (m.roundIds - 99)) });
            break;
          }
          case 'fail': {
            if (m.arrivals.length === 0) break;
            const { impi, arrival } = m.arrivals.splice(c.k % m.arrivals.length, 1)[0]!;
            m.feed(impi, { type: 'forward-failed', arrival });
            break;
          }
          case 'gone': {
            const ids = [...m.sets.keys()];
            if (ids.length > 0) m.drop(ids[c.k % ids.length]!);
            break;
          }
          case 'expired':
            m.feed(c.impi, { type: 'registration-expired' });
            break;
        }
        m.check();
        for (const st of m.states.values()) reached.add(st.kind === 'registered' && st.bound.old.length > 0 ? 'registered+old' : st.kind);
      }
    }),
    { numRuns: 200 },
  );
  // The runs must reach every state (else the invariants were checked on little).
  assert.deepEqual([...reached].sort(), ['awaiting-challenge', 'challenged', 'idle', 'registered', 'registered+old']);
});

test('memory per registration (issue 9 §2): states, rounds and bindings of different registrations share V8 hidden classes', () => {
  // A literal opening with a spread (`{ ...x, y }`) or with conditional spreads gets a hidden class of
  // its own per object in V8 (Node 20). Checked with V8's %HaveSameMap (natives syntax for this one function).
  setFlagsFromString('--allow-natives-syntax');
  const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  setFlagsFromString('--no-allow-natives-syntax');
  const a = challenged(ALICE, 'TA', 5000).state as Extract<RegState, { kind: 'challenged' }>;
  const b = challenged(BOB, 'TB', 5002).state as Extract<RegState, { kind: 'challenged' }>;
  assert.ok(sameMap(a, b), 'challenged states');
  assert.ok(sameMap(a.round, b.round), 'rounds');
  const ra = registered(ALICE, 'TA') as Extract<RegState, { kind: 'registered' }>;
  const rb = registered(BOB, 'TB') as Extract<RegState, { kind: 'registered' }>;
  assert.ok(sameMap(ra.bound, rb.bound), 'bindings of two registrations');
  // A re-REGISTER answered 200 without a challenge (a refresh) builds the binding anew: same class.
  const req = register({ impi: ALICE, portUc: 5003, callId: 'c2', verify: securityServerText(ra.bound, env(ALICE)) });
  const over = step(ra, { type: 'register-over-set', req, set: 'TA', roundId: 3 }, env(ALICE));
  const arrival = forwardOf(over);
  const refreshed = step(over.state, { type: 'answered', arrival, res: ok(arrival.req, 900) }, env(ALICE, { now: 2_000_000 }));
  assert.deepEqual(kinds(refreshed), ['refresh', 'relay']);
  const rr = refreshed.state as Extract<RegState, { kind: 'registered' }>;
  assert.notEqual(rr.bound, ra.bound);
  assert.ok(sameMap(rr.bound, rb.bound), 'a refreshed binding');
});

test('memory per refresh (issue 9 §2): a 200 that repeats the binding keeps its lists; one that changes them gets new ones', () => {
  const ra = registered(ALICE, 'TA') as Extract<RegState, { kind: 'registered' }>;
  const refresh = (res: (req: SipRequest) => SipResponse) => {
    const req = register({ impi: ALICE, portUc: 5003, callId: 'c2', verify: securityServerText(ra.bound, env(ALICE)) });
    const over = step(ra, { type: 'register-over-set', req, set: 'TA', roundId: 3 }, env(ALICE));
    const arrival = forwardOf(over);
    const t = step(over.state, { type: 'answered', arrival, res: res(arrival.req) }, env(ALICE, { now: 2_000_000 }));
    assert.deepEqual(kinds(t), ['refresh', 'relay']);
    return (t.state as Extract<RegState, { kind: 'registered' }>).bound;
  };
  const same = refresh((req) => ok(req, 900));
  assert.equal(same.impus, ra.bound.impus, 'the same P-Associated-URI: the same array');
  assert.equal(same.serviceRoute, ra.bound.serviceRoute);
  assert.equal(same.expiresAt, 2_000_000 + 900_000);
  const routed = (req: SipRequest) =>
    createResponse(req, 200, undefined, [
      ['Contact', `<sip:u@${UE_IP}:7777>;expires=900`],
      ['P-Associated-URI', `<${impuOf(ALICE)}>, <tel:+15550100>`],
      ['Service-Route', '<sip:orig@scscf.ims.example;lr>'],
    ]);
  const changed = refresh(routed);
  assert.deepEqual(changed.impus, [impuOf(ALICE), 'tel:+15550100']);
  assert.deepEqual(changed.serviceRoute, ['<sip:orig@scscf.ims.example;lr>']);
  assert.notEqual(changed.impus, ra.bound.impus);
});

test('re-REGISTER over the current set: its Security-Verify is checked against the Security-Server of the 401, made again (verbatim, respelled, tampered)', () => {
  const reg = registered() as Extract<RegState, { kind: 'registered' }>;
  const sent = securityServerText(reg.bound, env(ALICE));
  assert.equal(sent, challenged().verify, 'the very text the 401 carried');
  assert.ok(!('lastServer' in reg.bound) && !('lastServerText' in reg.bound), 'neither parsed nor as text (issue 9 §2)');
  const over = (verify: string) =>
    step(reg, { type: 'register-over-set', req: register({ impi: ALICE, portUc: 5003, verify }), set: 'T', roundId: 5 }, env(ALICE));
  assert.deepEqual(kinds(over(sent)), ['forward'], 'the verbatim copy');
  // The same mechanisms spelled otherwise: parsed again from the kept text and compared field by field.
  const respelled = sent.replace(/;/g, ' ; ').toUpperCase();
  assert.notEqual(respelled, sent);
  assert.deepEqual(kinds(over(respelled)), ['forward'], 'respelled');
  const tampered = over(sent.replace(/spi-c=(\d+)/, (_, n: string) => `spi-c=${Number(n) + 1}`));
  assert.equal(tampered.state, reg);
  assert.equal(tampered.actions[0]!.kind === 'reject' && tampered.actions[0]!.reason, 'security-verify-mismatch');
});

test('memory per registration (issue 9 §2): registrations given the same Service-Route share one list; another route gets its own', () => {
  const withRoute = (impi: string, set: string, route: string) => {
    const c = challenged(impi, set) as { state: Extract<RegState, { kind: 'challenged' }>; client: string; verify: string };
    const p = step(
      c.state,
      { type: 'register-over-set', req: register({ impi, client: c.client, verify: c.verify }), set, roundId: 2 },
      env(impi),
    );
    const arrival = forwardOf(p);
    const res = ok(arrival.req);
    res.headers.append('Service-Route', route);
    const r = step(p.state, { type: 'answered', arrival, res }, env(impi));
    return (r.state as Extract<RegState, { kind: 'registered' }>).bound;
  };
  const a = withRoute(ALICE, 'TA', '<sip:orig@scscf.ims.example;lr>');
  const b = withRoute(BOB, 'TB', '<sip:orig@scscf.ims.example;lr>');
  assert.deepEqual(a.serviceRoute, ['<sip:orig@scscf.ims.example;lr>']);
  assert.equal(b.serviceRoute, a.serviceRoute, 'one list for both');
  const c = withRoute(ALICE, 'TC', '<sip:orig@scscf2.ims.example;lr>');
  assert.deepEqual(c.serviceRoute, ['<sip:orig@scscf2.ims.example;lr>']);
  assert.deepEqual(a.serviceRoute, ['<sip:orig@scscf.ims.example;lr>'], 'the first list is not changed');
  assert.equal(a.contact, `sip:u@${UE_IP}:7777`);
});
