// The P-CSCF's side of a registration as one state machine (33.203 §7.2–§7.4, Annex H, Annex M;
// 24.229 §5.2.2; spec digest §5, §8): one state union per registration (by IMPI), one transition
// function `step(state, event, env)` returning the new state and the actions as data. register.ts
// runs the actions (SIP answers and forwards, SA sets through ipsec/sa-slots.ts, timers) and feeds
// back what came of them (a temporary set installed, a set dropped, a timer fired) as events.
// No I/O and no clock here; what it needs from table-wide indexes and the pending limits comes in
// through `env`, like the S-CSCF's `handleRegister` gets its HSS. SA sets are named by id only.
import { sameAddress } from '../ipsec/sa.ts';
import { modeFromMod, type EspMode } from '../ipsec/types.ts';
import type { EncryptionAlg, IntegrityAlg } from '../ipsec/algorithms.ts';
import { lifetimeAfterSuccess } from '../ipsec/sa-set.ts';
import type { SaSetEvent } from '../ipsec/sa-set.ts';
import {
  buildSecurityServer,
  negotiate,
  parseSecurityHeader,
  serializeMechanisms,
  verifySecurityClientUnchanged,
  verifySecurityVerify,
  type Negotiated,
  type SecAgreePolicy,
  type SecMechanism,
} from '../secagree/index.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import { topVia } from '../sip/validate.ts';
import { formatHostPort } from '../sip/uri.ts';
import { isIP } from 'node:net';
import {
  admissionCheck,
  associatedIdentities,
  checkRegisterIdentity,
  checkSecurityClient,
  detectNat,
  grantedExpires,
  impuKey,
  isDeregistration,
  toImpuKey,
  uriOf,
  wantsUdpEncTun,
} from './decisions.ts';
import type { LimitVerdict } from './pending-limits.ts';
import { ownString } from '../util/own-string.ts';
import { addPath, forwardCopy, impiOf, markIntegrityProtected, pushVia, stripSecAgree, type AkaKeys } from './rewrite.ts';
import type { PcscfEvents, PcscfMode, RejectReason, Source } from './types.ts';

/*
 *                 unprotected REGISTER (checks pass; forwarded)
 *   idle ─────────────────────────────────────────────► awaiting-challenge ◄──┐ REGISTER over the current
 *    ▲  ▲                                                 │    │   401+ik/ck:  │ set with a new offer
 *    │  │ round ends: S-CSCF's final ≠ 401, no answer,   │    │   install the │ (re-registering: `bound`
 *    │  └ reg-await-auth without 401, install failed ────┘    │   temporary   │  stays set meanwhile)
 *    │                                                        ▼   set         │
 *    │   protected REGISTER refused (403, Security-Verify/   challenged ──────┤
 *    ├── -Client), S-CSCF's ≥300 to it, temporary set expired │               │
 *    │                                                        │ 200 to the    │
 *    │                                                        ▼ protected REG │
 *    │   200 to a de-registration, registration expired,  registered ─────────┘
 *    └── current set gone (every set deleted)            (current + old; a 200 to a re-REGISTER
 *                                                          without challenge refreshes it)
 * Each pending state keeps the `bound` part of an earlier 200 OK (a re-registration, or a UE that
 * lost its SAs registering anew, spec digest §8 rule 6) until that registration ends.
 */

/** An SA set, by its id (the executor maps ids to SaSet objects held by the registration's slots). */
export type SetId = string;

/** One security set-up, SM1 → SM12 (33.203 §6.1.1, §7.2): what the protected REGISTER is checked against. */
export interface Round {
  /** Unique per P-CSCF (given by the executor with the event that starts the round). */
  readonly id: number;
  readonly callId: string;
  /** Packet source (public address behind a NAT) of the REGISTER that started the round. */
  readonly ueIp: string;
  /** 24.229 F.1 verdict on the REGISTER that started the round. */
  readonly natDetected: boolean;
  /** The UE's private address (the Via sent-by host) when a NAT was detected (spec digest §15A.4). */
  readonly innerIp?: string;
  /** Security-Client as received (raw lines) and parsed (Annex H: must come back identical). */
  readonly client: { readonly raw: readonly string[]; readonly parsed: readonly SecMechanism[] };
  readonly choice: Negotiated;
  /** impuKey of the To of the REGISTER that started the round: the protected REGISTER must name it (issue 10 §1). */
  readonly impu: string;
  /** 'unprotected': an unauthenticated peer's round, holding pending-limit state and a timer (issue 10 §2). */
  readonly origin: 'unprotected' | 're-register';
}

/** What the last 200 OK to a protected REGISTER established (24.229 §5.2.2). */
export interface Bound {
  readonly current: SetId;
  /** Superseded sets still finishing their transactions (spec digest §8 rule 4). */
  readonly old: readonly SetId[];
  /** Lifetime of the current set (clock ms; spec digest §8 rule 3). */
  readonly lifetime: number;
  readonly impus: readonly string[];
  readonly contact?: string;
  /** Service-Route of the last 200 OK: the route of UE-originated requests. */
  readonly serviceRoute: readonly string[];
  /** Registration expiry (clock ms). */
  readonly expiresAt: number;
  /**
   * The Security-Server of the set now current (a re-REGISTER's Security-Verify repeats it, spec
   * digest §8.5) as what it was made of: its SPIs (int32 of their 32 bits: never a boxed number)
   * and algorithms, with `mode` and this P-CSCF's protected ports. `securityServerText` makes the
   * very text the 401 carried again (issue 9 §2: kept as text it was ~150 B per registration,
   * parsed ~200 B more).
   */
  readonly serverSpiC: number;
  readonly serverSpiS: number;
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  /** The UE's public IP (the packet source of the REGISTER that set the current set up). */
  readonly ueIp: string;
  /** Behind a NAT: the UE's private (inner) IP. Two fields, not an object of its own (~32 B per registration, issue 9 §2). */
  readonly innerIp: string | undefined;
  readonly natDetected: boolean;
  /** Mode of the current set: a re-registration keeps it (NAT detection is for unprotected REGISTERs, 24.229 F.1). */
  readonly mode: EspMode;
}

export type RegState =
  /** No registration and nothing pending (the table holds no entry). */
  | { readonly kind: 'idle' }
  /** A REGISTER was forwarded with a usable offer; the S-CSCF's answer (a 401) is awaited. */
  | { readonly kind: 'awaiting-challenge'; readonly round: Round; readonly bound?: Bound }
  /** The 401 went out with Security-Server; the temporary set waits for the protected REGISTER (reg-await-auth). */
  | {
      readonly kind: 'challenged';
      readonly round: Round;
      readonly temporary: SetId;
      readonly server: readonly SecMechanism[];
      /** `server` as it went out in the 401's Security-Server (serialized once). */
      readonly serverText: string;
      readonly bound?: Bound;
    }
  | { readonly kind: 'registered'; readonly bound: Bound };

export type RegStateKind = RegState['kind'];
export const IDLE: RegState = { kind: 'idle' };
/** The empty list every Bound without old sets (or Service-Route) shares: not an array per registration. */
const NO_SETS: readonly string[] = [];

/** A REGISTER as forwarded: handed back with the S-CSCF's answer. */
export interface Arrival {
  /** 'initial': unprotected; 're-register': over the current set; 'protected': over the temporary set. */
  readonly kind: 'initial' | 're-register' | 'protected';
  readonly req: SipRequest;
  /** The round this REGISTER started or continues, if any. */
  readonly roundId?: number;
  /** The set it came over (re-register, protected). */
  readonly set?: SetId;
  readonly dereg: boolean;
}

export type RegEvent =
  /** A REGISTER on the plain port (initial registration, or a UE that lost its SAs). */
  | {
      readonly type: 'unprotected-register';
      readonly req: SipRequest;
      readonly from: Source;
      readonly protocol: 'udp' | 'tcp';
      readonly roundId: number;
    }
  /** A REGISTER over `set`, a set this registration owns (the executor found the owner by the SA). */
  | { readonly type: 'register-over-set'; readonly req: SipRequest; readonly set: SetId; readonly roundId: number }
  /** The S-CSCF's final answer to a forwarded REGISTER; `keys`: ik/ck the executor took out of a 401. */
  | { readonly type: 'answered'; readonly arrival: Arrival; readonly res: SipResponse; readonly keys?: AkaKeys }
  /** The install-temporary action finished: the set is in the slots and the backend. */
  | {
      readonly type: 'temporary-installed';
      readonly roundId: number;
      readonly set: SetId;
      readonly spis: { readonly spiC: number; readonly spiS: number };
      readonly res: SipResponse;
    }
  | { readonly type: 'temporary-failed'; readonly roundId: number; readonly message: string; readonly res: SipResponse }
  /** The forwarded REGISTER got no answer (the UE gets 408/503 from the transaction layer). */
  | { readonly type: 'forward-failed'; readonly arrival: Arrival }
  /** reg-await-auth after an unprotected REGISTER, and no 401 came (an S-CSCF that never answers). */
  | { readonly type: 'round-timeout'; readonly roundId: number }
  /**
   * The slot owner dropped a set (expiry, deletion, whatever the cause). `expired`: its lifetime ran
   * out; the current set's lifetime is the registration's, so for it this is 'registration-expired'.
   */
  | { readonly type: 'set-gone'; readonly set: SetId; readonly expired?: boolean }
  /** The registration ran out without a refresh (spec digest §8). */
  | { readonly type: 'registration-expired' };

/** What happens once an answer has gone out over the set its request came on. */
export type AfterSend =
  | { readonly kind: 'delete-set'; readonly set: SetId; readonly event: SaSetEvent; readonly reason: string }
  | { readonly kind: 'delete-all'; readonly reason: string };

export type RegAction =
  /** Answer the REGISTER ourselves (over the set it came on, if any). */
  | {
      readonly kind: 'reject';
      readonly status: number;
      readonly reason: RejectReason;
      readonly message: string;
      readonly headers?: readonly [string, string][];
      readonly after?: AfterSend;
    }
  /** Send `out` to the S-CSCF; its final answer comes back as an 'answered' event with `arrival`. */
  | { readonly kind: 'forward'; readonly out: SipRequest; readonly arrival: Arrival }
  /** Pass the S-CSCF's answer on (a Security-Server value appended when given). */
  | { readonly kind: 'relay'; readonly res: SipResponse; readonly securityServer?: string; readonly after?: AfterSend }
  /** Replace the S-CSCF's answer by our own failure (counted like a reject). */
  | { readonly kind: 'refuse-relay'; readonly status: number; readonly reason: RejectReason; readonly message: string }
  /** Count a pending round against the limits and arm its reg-await-auth timer ('round-timeout'). */
  | { readonly kind: 'hold-pending'; readonly roundId: number; readonly source: string; readonly ms: number }
  /** Give back what hold-pending took, cancel the timer (exactly once per held round). */
  | { readonly kind: 'release-pending'; readonly roundId: number }
  /** Allocate SPIs, derive keys (Annex I), build and install the temporary set; then 'temporary-installed' or 'temporary-failed'. */
  | {
      readonly kind: 'install-temporary';
      readonly round: Round;
      readonly keys: AkaKeys;
      readonly expiresAt: number;
      readonly res: SipResponse;
    }
  | { readonly kind: 'delete-set'; readonly set: SetId; readonly event: SaSetEvent; readonly reason: string }
  /** Temporary → current with `lifetime` (backend lifetimes too); the previous current becomes old. */
  | { readonly kind: 'promote'; readonly set: SetId; readonly lifetime: number }
  /** A 200 to a re-REGISTER without a challenge: the current set lives on until `lifetime`. */
  | { readonly kind: 'refresh'; readonly lifetime: number }
  | { readonly kind: 'delete-all'; readonly event: SaSetEvent; readonly reason: string }
  | { readonly kind: 'emit-nat-detected'; readonly payload: PcscfEvents['nat-detected'] }
  | { readonly kind: 'emit-registered'; readonly payload: PcscfEvents['registered'] }
  | { readonly kind: 'emit-deregistered'; readonly payload: PcscfEvents['deregistered'] };

export interface RegTransition {
  readonly state: RegState;
  readonly actions: readonly RegAction[];
}

/** What the transition reads from outside its registration (configuration, table-wide indexes, limits). */
export interface RegEnv {
  readonly impi: string;
  /** Clock ms at the event. */
  readonly now: number;
  readonly mode: PcscfMode;
  readonly policy: SecAgreePolicy;
  readonly natInnerAddress: 'private' | 'public';
  readonly regAwaitAuthMs: number;
  /** This P-CSCF: its address and plain port (our Via), Path URI, protected ports (Security-Server). */
  readonly address: string;
  readonly port: number;
  readonly portC: number;
  readonly portS: number;
  readonly pathUri: string;
  isMine(uri: string): boolean;
  /** 33.203 §7.1 rule 3: the live set (of any registration) tied to (UE address, inner address, port_uc). O(1). */
  setWithClientPort(ueIp: string, innerIp: string | undefined, portUc: number): SetId | undefined;
  /** Pending limits (issue 10 §2); takes a challenge token when it admits, like the S-CSCF's hss.authenticate spends a vector. */
  admit(source: string, replacing: boolean): LimitVerdict;
}

/**
 * The Security-Server text of `b`'s current set, exactly as its 401 carried it: the same inputs
 * through the same functions as at the challenge ('temporary-installed'). A Security-Verify that
 * repeats it verbatim is accepted without parsing; another is compared with it parsed.
 */
export function securityServerText(b: Bound, env: Pick<RegEnv, 'portC' | 'portS'>): string {
  const choice = { alg: b.alg, ealg: b.ealg, mod: b.mode === 'transport' ? 'trans' : 'UDP-enc-tun' } as const;
  return serializeMechanisms([
    buildSecurityServer(choice, { spiC: b.serverSpiC >>> 0, spiS: b.serverSpiS >>> 0, portC: env.portC, portS: env.portS }),
  ]);
}

/** Registration time assumed when a 200 OK names none. */
export const DEFAULT_EXPIRES_S = 3600;

/** Every SA set a state refers to (the property test's invariant: each is live and owned by this registration only). */
export function setsOf(s: RegState): SetId[] {
  const out: SetId[] = [];
  if (s.kind === 'challenged') out.push(s.temporary);
  const b = s.kind === 'idle' ? undefined : s.bound;
  if (b) out.push(b.current, ...b.old);
  return out;
}

export function boundOf(s: RegState): Bound | undefined {
  return s.kind === 'idle' ? undefined : s.bound;
}

export function roundOf(s: RegState): Round | undefined {
  return s.kind === 'awaiting-challenge' || s.kind === 'challenged' ? s.round : undefined;
}

/** The state once the set-up in progress ends (or none was in progress): back to the registration that stands, if any. */
function settle(bound: Bound | undefined): RegState {
  return bound ? { kind: 'registered', bound } : IDLE;
}

/** The REGISTER as the S-CSCF gets it (24.229 §5.2.2; the contract in ARCHITECTURE.md). Undefined: Max-Forwards ran out. */
export function registerForCore(
  env: Pick<RegEnv, 'isMine' | 'pathUri' | 'address' | 'port'>,
  req: SipRequest,
  protectedArrival: boolean,
): SipRequest | undefined {
  const out = forwardCopy(req, (u) => env.isMine(u));
  if (!out) return undefined;
  stripSecAgree(out);
  markIntegrityProtected(out, protectedArrival);
  addPath(out, env.pathUri);
  pushVia(out, env.address, env.port);
  return out;
}

type Offer = { ok: true; raw: readonly string[]; parsed: SecMechanism[] } | { ok: false; reason: RejectReason; message: string };

/** Whether two header instance lists are the same text, line by line. */
export function sameLines(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Security-Client, parsed and checked (issue 10 §3: a REGISTER whose SAs could never be installed gets 494 first). */
function parseClient(req: SipRequest): Offer {
  const raw = req.headers.raw('Security-Client');
  if (raw.length === 0)
    return {
      ok: false,
      reason: 'no-security-client',
      message: 'REGISTER without Security-Client: sec-agree with ipsec-3gpp is required (33.203 §7.2, RFC 3329 §2.3.1)',
    };
  const parsed = parseSecurityHeader(raw, 'Security-Client');
  if (!parsed.ok) return { ok: false, reason: 'bad-security-client', message: `${parsed.error.message} [${parsed.error.code}]` };
  const sane = checkSecurityClient(parsed.value);
  if (!sane.ok) return sane;
  return { ok: true, raw, parsed: parsed.value };
}

/**
 * The one function that moves a P-CSCF registration. Never throws on what a peer sends: every
 * event is legal in every state, a REGISTER that does not fit is refused with the state unchanged,
 * a late answer for a round that is gone changes nothing. Rounds that held pending-limit state are
 * released in one place (the end of this function) whatever path ended them.
 */
export function step(state: RegState, event: RegEvent, env: RegEnv): RegTransition {
  const t = decide(state, event, env);
  const before = roundOf(state);
  const after = roundOf(t.state);
  if (before?.origin === 'unprotected' && before.id !== after?.id)
    return { state: t.state, actions: [...t.actions, { kind: 'release-pending', roundId: before.id }] };
  return t;
}

function decide(state: RegState, ev: RegEvent, env: RegEnv): RegTransition {
  switch (ev.type) {
    case 'unprotected-register':
      return onUnprotected(state, ev, env);
    case 'register-over-set':
      return onOverSet(state, ev, env);
    case 'answered':
      return onAnswered(state, ev, env);
    case 'temporary-installed': {
      if (state.kind === 'awaiting-challenge' && state.round.id === ev.roundId) {
        const { choice } = state.round;
        const server = [buildSecurityServer(choice, { spiC: ev.spis.spiC, spiS: ev.spis.spiS, portC: env.portC, portS: env.portS })];
        const serverText = serializeMechanisms(server);
        const next: RegState = {
          kind: 'challenged',
          round: state.round,
          temporary: ev.set,
          server,
          serverText,
          bound: state.bound,
        };
        return { state: next, actions: [{ kind: 'relay', res: ev.res, securityServer: serverText }] };
      }
      // Replaced (or ended) while installing: this set will never be used; the 401 goes on bare and
      // the UE starts over (spec digest §10.5).
      return {
        state,
        actions: [
          { kind: 'delete-set', set: ev.set, event: 'deleted', reason: 'registration set-up replaced while installing' },
          { kind: 'relay', res: ev.res },
        ],
      };
    }
    case 'temporary-failed': {
      const live = state.kind === 'awaiting-challenge' && state.round.id === ev.roundId;
      return {
        state: live ? settle(state.bound) : state,
        actions: [
          { kind: 'refuse-relay', status: 500, reason: 'sa-setup-failed', message: `cannot build the temporary SA set: ${ev.message}` },
        ],
      };
    }
    case 'forward-failed':
    case 'round-timeout': {
      // Only a round still waiting for its 401 ends here; a challenged one ends with its temporary set.
      const id = ev.type === 'round-timeout' ? ev.roundId : ev.arrival.roundId;
      if (state.kind === 'awaiting-challenge' && state.round.id === id) return { state: settle(state.bound), actions: [] };
      return { state, actions: [] };
    }
    case 'set-gone':
      // The table keeps no registration timer of its own: the current set's expiry is the registration's.
      if (ev.expired === true && boundOf(state)?.current === ev.set) return expire(state, env);
      return onSetGone(state, ev.set, env);
    case 'registration-expired':
      return expire(state, env);
    default: {
      const never: never = ev;
      throw new TypeError(`P-CSCF registration: unknown event ${JSON.stringify(never)}`);
    }
  }
}

/** Spec digest §8: the registration ran out without a refresh; the whole registration goes. */
function expire(state: RegState, env: RegEnv): RegTransition {
  if (state.kind === 'idle') return { state, actions: [] };
  const reason = 'registration expired without a refresh';
  return {
    state: IDLE,
    actions: [
      ...(boundOf(state) ? [{ kind: 'emit-deregistered', payload: { impi: env.impi, reason } } as const] : []),
      { kind: 'delete-all', event: 'expired', reason },
    ],
  };
}

function reject(
  state: RegState,
  status: number,
  reason: RejectReason,
  message: string,
  extra: { headers?: readonly [string, string][]; after?: AfterSend } = {},
): RegTransition {
  return { state, actions: [{ kind: 'reject', status, reason, message, ...extra }] };
}

/** An unprotected REGISTER from a UE: an initial registration, or a UE that lost its SAs (spec digest §8 rule 6). */
function onUnprotected(state: RegState, ev: Extract<RegEvent, { type: 'unprotected-register' }>, env: RegEnv): RegTransition {
  const { req, from } = ev;
  if (!impiOf(req)) return reject(state, 403, 'no-impi', 'REGISTER without an Authorization username (IMPI) (24.229 §5.1.1.2.1)');
  const offer = parseClient(req);
  if (!offer.ok) return reject(state, 494, offer.reason, offer.message);
  const impu = toImpuKey(req);
  if (impu === undefined) return reject(state, 400, 'bad-request', 'REGISTER without a usable To (the public identity to register)');
  const via = topVia(req); // the transaction layer validated every Via before the TU saw the request (its parse is kept)
  const nat = detectNat(via, from, ev.protocol);
  const choice = negotiate(offer.parsed, env.policy, { natDetected: wantsUdpEncTun(env.mode, nat.natDetected) });
  if (!choice.ok) {
    const reason = choice.error.code === 'SECAGREE_NAT_NO_UDP_ENC_TUN' ? 'nat-without-udp-enc-tun' : 'no-acceptable-mechanism';
    return reject(state, 494, reason, `${choice.error.message} [${choice.error.code}]`);
  }
  // One set-up per registration at a time: this REGISTER replaces a pending one.
  const pending = roundOf(state);
  // Issue 10 §2: bounded pending state and vector spending, checked before anything is forwarded
  // (a token is spent even if the admission check below then refuses: cheap, and on the safe side).
  const limit = env.admit(from.address, pending?.origin === 'unprotected' && sameAddress(pending.ueIp, from.address));
  if (!limit.ok) return reject(state, 503, limit.reason, limit.message, { headers: [['Retry-After', String(limit.retryAfterS)]] });
  // Spec digest §15A.4: inside the tunnel the UE keeps its private address, the Via sent-by host
  // (unless this P-CSCF is configured for 'public inside' peers).
  const innerIp =
    env.natInnerAddress === 'private' && nat.differs === 'address' && isIP(via.host) === isIP(from.address) ? via.host : undefined;
  const replaced = state.kind === 'challenged' ? state.temporary : undefined;
  const bound = boundOf(state);
  const adm = admit(env, from.address, innerIp, choice.client.portC, bound, replaced);
  if (!adm.ok) return reject(state, 403, adm.reason, adm.message);
  const out = registerForCore(env, req, false);
  if (!out) return reject(state, 483, 'too-many-hops', 'Max-Forwards reached 0');
  const round: Round = {
    id: ev.roundId,
    callId: req.headers.get('Call-ID')!,
    ueIp: from.address,
    natDetected: nat.natDetected,
    innerIp,
    client: { raw: offer.raw, parsed: offer.parsed },
    choice,
    impu,
    origin: 'unprotected',
  };
  const actions: RegAction[] = [];
  if (replaced) actions.push({ kind: 'delete-set', set: replaced, event: 'deleted', reason: 'replaced by a new unprotected REGISTER' });
  if (nat.natDetected)
    actions.push({
      kind: 'emit-nat-detected',
      payload: {
        impi: env.impi,
        via: formatHostPort(via.host, via.port ?? 5060),
        source: from,
        ...(nat.differs ? { differs: nat.differs } : {}),
      },
    });
  // Pending state always ends: the temporary set's reg-await-auth (its slot), the S-CSCF's answer,
  // a forwarding failure, or at the latest this timer (an S-CSCF that never answers).
  actions.push({ kind: 'hold-pending', roundId: round.id, source: from.address, ms: env.regAwaitAuthMs });
  actions.push({ kind: 'forward', out, arrival: { kind: 'initial', req, roundId: round.id, dereg: false } });
  return { state: { kind: 'awaiting-challenge', round, bound }, actions };
}

/** 33.203 §7.1 rule 3 over the sets this registration keeps once `replaced` (a temporary set about to go) is gone. */
function admit(
  env: RegEnv,
  ueIp: string,
  innerIp: string | undefined,
  portUc: number,
  bound: Bound | undefined,
  replaced: SetId | undefined,
) {
  const found = env.setWithClientPort(ueIp, innerIp, portUc);
  const clash = found !== undefined && found !== replaced ? { id: found, live: true } : undefined;
  return admissionCheck(ueIp, portUc, () => clash, liveSets(bound ? 1 + bound.old.length : 0), innerIp);
}

/** `n` live sets, as admissionCheck counts them (shared lists: every REGISTER asks). */
function liveSets(n: number): readonly { readonly live: true }[] {
  if (n < 16) return (LIVE_SETS[n] ??= freshLiveSets(n));
  return freshLiveSets(n);
}
function freshLiveSets(n: number): readonly { readonly live: true }[] {
  return Object.freeze(new Array<{ readonly live: true }>(n).fill(LIVE));
}
const LIVE = Object.freeze({ live: true as const });
const LIVE_SETS: (readonly { readonly live: true }[] | undefined)[] = [];

/** A REGISTER over a set of this registration: the temporary one (SM7), the current one (re-/de-registration), or an old one. */
function onOverSet(state: RegState, ev: Extract<RegEvent, { type: 'register-over-set' }>, env: RegEnv): RegTransition {
  const { req, set } = ev;
  if (state.kind === 'challenged' && state.temporary === set) return onProtected(state, req, set, env);
  const bound = boundOf(state);
  if (bound && bound.current === set) return onReRegister(state, bound, req, set, ev.roundId, env);
  if (bound?.old.includes(set)) {
    return reject(
      state,
      403,
      'register-over-old-set',
      `REGISTER over the old SA set ${set}: re-register over the current set (spec digest §8 rule 5)`,
    );
  }
  // A set this registration no longer counts on (a temporary set replaced or refused, a
  // de-registered current set whose deletion waits for the 200 to go out).
  return reject(state, 403, 'not-temporary-set', `REGISTER over SA set ${set}, which is not the temporary set of a pending registration`);
}

/** The protected REGISTER over the temporary set: identities of the round, headers unchanged (Annex H). */
function onProtected(state: Extract<RegState, { kind: 'challenged' }>, req: SipRequest, set: SetId, env: RegEnv): RegTransition {
  const round = state.round;
  // Issue 10 §1: the identities this temporary set was negotiated for, nobody else's. Refused
  // without touching the set: the owner may still finish its own registration over it.
  const who = checkRegisterIdentity(req, env.impi, [round.impu], set);
  if (!who.ok) return reject(state, 403, who.reason, who.message);
  const sv = verifySecurityVerify(req.headers.raw('Security-Verify'), state.server, state.serverText);
  // The same text parses to the same mechanisms: only a Security-Client spelled otherwise is parsed and compared.
  const clientNow = req.headers.raw('Security-Client');
  const check = !sv.ok || sameLines(clientNow, round.client.raw) ? sv : verifySecurityClientUnchanged(round.client.parsed, clientNow);
  if (!check.ok) {
    // Spec digest §10.7: refuse (403, our choice: the code is UNVERIFIED) and drop the temporary set
    // once the refusal has gone out over it; the set-up is over.
    const message = `${check.error.message} [${check.error.code}]`;
    return reject(settle(state.bound), 403, sv.ok ? 'security-client-changed' : 'security-verify-mismatch', message, {
      after: { kind: 'delete-set', set, event: 'failed', reason: message },
    });
  }
  const out = registerForCore(env, req, true);
  if (!out) return reject(state, 483, 'too-many-hops', 'Max-Forwards reached 0');
  return {
    state,
    actions: [{ kind: 'forward', out, arrival: { kind: 'protected', req, roundId: round.id, set, dereg: isDeregistration(req) } }],
  };
}

/**
 * A REGISTER over the current set: a re-registration (spec digest §8 rule 5: new Security-Client
 * with new client ports and SPIs) or a de-registration (§8 rule 7). Every check comes before any
 * change: a refused REGISTER replaces no round and deletes no set.
 */
function onReRegister(state: RegState, bound: Bound, req: SipRequest, set: SetId, roundId: number, env: RegEnv): RegTransition {
  // Issue 10 §1: the identities of this registration only.
  const who = checkRegisterIdentity(
    req,
    env.impi,
    bound.impus.map(impuKey).filter((k): k is string => k !== undefined),
    set,
  );
  if (!who.ok) return reject(state, 403, who.reason, who.message);
  const dereg = isDeregistration(req);
  // RFC 3329 §2.3.1: Security-Verify repeats the Security-Server in force. DEVIATION: an absent one
  // is tolerated here, the request came over an authenticated SA already.
  const svRaw = req.headers.raw('Security-Verify');
  if (svRaw.length > 0) {
    const sent = securityServerText(bound, env);
    const v = verifySecurityVerify(svRaw, sent, sent);
    if (!v.ok) return reject(state, 403, 'security-verify-mismatch', `${v.error.message} [${v.error.code}]`);
  }
  const offer = parseClient(req);
  if (!offer.ok && !dereg)
    return reject(state, 494, offer.reason, `${offer.message}; a re-REGISTER carries a new one (spec digest §8 rule 5)`);
  let round: Round | undefined;
  if (offer.ok) {
    const choice = negotiate(offer.parsed, env.policy, { natDetected: bound.mode === 'udp-enc-tunnel' });
    if (!choice.ok && !dereg) return reject(state, 494, 'no-acceptable-mechanism', `${choice.error.message} [${choice.error.code}]`);
    if (choice.ok) {
      const replaced = state.kind === 'challenged' ? state.temporary : undefined;
      const adm = admit(env, bound.ueIp, bound.innerIp, choice.client.portC, bound, replaced);
      if (!adm.ok && !dereg) return reject(state, 403, adm.reason, adm.message);
      if (adm.ok) {
        round = {
          id: roundId,
          callId: req.headers.get('Call-ID')!,
          ueIp: bound.ueIp,
          natDetected: bound.natDetected,
          innerIp: bound.innerIp,
          client: { raw: offer.raw, parsed: offer.parsed },
          choice,
          impu: toImpuKey(req)!,
          origin: 're-register',
        };
      }
    }
  }
  const out = registerForCore(env, req, true);
  if (!out) return reject(state, 483, 'too-many-hops', 'Max-Forwards reached 0');
  const actions: RegAction[] = [];
  let next: RegState = state;
  if (round) {
    // The new offer replaces a set-up in progress (and its temporary set).
    if (state.kind === 'challenged')
      actions.push({ kind: 'delete-set', set: state.temporary, event: 'deleted', reason: 'replaced by a new re-REGISTER' });
    next = { kind: 'awaiting-challenge', round, bound };
  }
  actions.push({ kind: 'forward', out, arrival: { kind: 're-register', req, roundId: round?.id, set, dereg } });
  return { state: next, actions };
}

function onAnswered(state: RegState, ev: Extract<RegEvent, { type: 'answered' }>, env: RegEnv): RegTransition {
  const { arrival: a, res } = ev;
  if (a.kind === 'protected') return afterProtected(state, a, res, env);
  const round = roundOf(state);
  const live = state.kind === 'awaiting-challenge' && round !== undefined && round.id === a.roundId;
  if (res.status === 401) {
    // Nothing to set up (the round was replaced, or the REGISTER had no usable Security-Client): the
    // 401 goes on without Security-Server and the UE starts over (spec digest §10.5).
    if (!live) return { state, actions: [{ kind: 'relay', res }] };
    if (!ev.keys) {
      return {
        state: settle(state.bound),
        actions: [
          {
            kind: 'refuse-relay',
            status: 500,
            reason: 'challenge-without-keys',
            message: 'the S-CSCF sent a 401 without ik/ck: no SA set can be built (24.229 §5.4.1.2)',
          },
        ],
      };
    }
    return { state, actions: [{ kind: 'install-temporary', round: round, keys: ev.keys, expiresAt: env.now + env.regAwaitAuthMs, res }] };
  }
  const after = live ? settle(state.bound) : state;
  // DEVIATION: a 2xx to an unprotected REGISTER (no challenge) is relayed, but no SA set exists, so
  // nothing but another REGISTER will be accepted from that UE.
  if (res.status >= 300 || a.kind === 'initial') return { state: after, actions: [{ kind: 'relay', res }] };
  // A re-REGISTER answered without a challenge keeps the current set (24.228 R2-1a).
  const bound = boundOf(after);
  if (!bound || bound.current !== a.set) return { state: after, actions: [{ kind: 'relay', res }] };
  const contact = uriOf(a.req.headers.get('Contact') ?? '');
  const expires = grantedExpires(res, contact) ?? DEFAULT_EXPIRES_S;
  if (a.dereg || expires === 0) return deregister(env, res);
  const lifetime = lifetimeAfterSuccess(env.now, expires, bound.lifetime);
  const next = makeBound(bound, bindingOf(bound, res, a.req, contact, expires, env.now), lifetime);
  return {
    state: Object.assign({}, after, { bound: next }) as RegState,
    actions: [
      { kind: 'refresh', lifetime },
      { kind: 'relay', res },
    ],
  };
}

/** The S-CSCF's answer to the protected REGISTER (SM11 → SM12, or a failure: spec digest §8 rule 8). */
function afterProtected(state: RegState, a: Arrival, res: SipResponse, env: RegEnv): RegTransition {
  const set = a.set!;
  // Only an answer for the set-up in progress, over its temporary set, moves anything: a late or
  // duplicated answer (the set already promoted, replaced or gone) is relayed and changes nothing.
  if (state.kind !== 'challenged' || state.temporary !== set) return { state, actions: [{ kind: 'relay', res }] };
  if (res.status >= 300) {
    // Relayed over the temporary set, which is deleted once the answer is out; the current set stays.
    const reason = `the S-CSCF answered ${res.status} to the protected REGISTER`;
    return { state: settle(state.bound), actions: [{ kind: 'relay', res, after: { kind: 'delete-set', set, event: 'failed', reason } }] };
  }
  const contact = uriOf(a.req.headers.get('Contact') ?? '');
  const expires = grantedExpires(res, contact) ?? DEFAULT_EXPIRES_S;
  if (a.dereg || expires === 0) return deregister(env, res, state.bound !== undefined);
  const prev = state.bound;
  const round = state.round;
  const lifetime = lifetimeAfterSuccess(env.now, expires, prev?.lifetime);
  const binding = bindingOf(prev, res, a.req, contact, expires, env.now);
  // One literal with every field (no spread): every Bound has the one hidden class.
  const bound: Bound = {
    current: set,
    old: prev ? [...prev.old, prev.current] : NO_SETS,
    lifetime,
    impus: binding.impus,
    contact: binding.contact,
    serviceRoute: binding.serviceRoute,
    expiresAt: binding.expiresAt,
    serverSpiC: state.server[0]!.spiC! | 0,
    serverSpiS: state.server[0]!.spiS! | 0,
    alg: round.choice.alg,
    ealg: round.choice.ealg,
    ueIp: round.ueIp,
    innerIp: round.innerIp,
    natDetected: round.natDetected,
    mode: modeFromMod(round.choice.mod),
  };
  // Spec digest §5.7: the set becomes current; the 200 OK goes out over it (the layer's response
  // route pins the set the request came over, which is this one).
  return {
    state: { kind: 'registered', bound },
    actions: [
      { kind: 'promote', set, lifetime },
      { kind: 'emit-registered', payload: { impi: env.impi, impus: bound.impus, expires } },
      { kind: 'relay', res },
    ],
  };
}

/** Spec digest §8 rule 7: the 200 OK goes out protected over the set the request came on, then every set goes. */
function deregister(env: RegEnv, res: SipResponse, wasBound = true): RegTransition {
  const reason = 'de-registered';
  return {
    state: IDLE,
    actions: [
      ...(wasBound ? [{ kind: 'emit-deregistered', payload: { impi: env.impi, reason } } as const] : []),
      { kind: 'relay', res, after: { kind: 'delete-all', reason } },
    ],
  };
}

/**
 * A copy of `b` with a new binding, lifetime and old sets: one literal naming every field in the
 * order afterProtected writes them. Not `{ ...b, x }` nor Object.assign: V8 (Node 20) gives each
 * object made by a literal opening with a spread a hidden class of its own (hundreds of bytes per
 * registration, megamorphic reads), and Object.assign({}, …) builds another transition chain.
 */
function makeBound(
  b: Bound,
  binding: Pick<Bound, 'impus' | 'contact' | 'serviceRoute' | 'expiresAt'>,
  lifetime: number,
  old: readonly SetId[] = b.old,
): Bound {
  return {
    current: b.current,
    old,
    lifetime,
    impus: binding.impus,
    contact: binding.contact,
    serviceRoute: binding.serviceRoute,
    expiresAt: binding.expiresAt,
    serverSpiC: b.serverSpiC,
    serverSpiS: b.serverSpiS,
    alg: b.alg,
    ealg: b.ealg,
    ueIp: b.ueIp,
    innerIp: b.innerIp,
    natDetected: b.natDetected,
    mode: b.mode,
  };
}

/** The facts of a 200 OK to REGISTER (24.229 §5.2.2); what it does not name stays as it was. `contact`: the REGISTER's Contact URI. */
function bindingOf(
  prev: Bound | undefined,
  res: SipResponse,
  req: SipRequest,
  contact: string | undefined,
  expires: number,
  now: number,
): Pick<Bound, 'impus' | 'contact' | 'serviceRoute' | 'expiresAt'> {
  const sr = res.headers.getAll('Service-Route');
  const impus = associatedIdentities(res, req);
  // Kept for the registration's life: arrays of exactly their length (a filtered or collected
  // array keeps room for 17 elements, 152 B each; issue 9 §2 heap snapshot). A refresh that repeats
  // them keeps the previous ones: nothing new outlives the refresh but the Bound itself (at 100k
  // with expiry 120 s, ~1,600 refreshes/s would otherwise leave their copies dead in old space), and
  // the registration table sees the same lists and keeps its index keys.
  // New values are own strings: a slice of the header would keep the whole header value alive
  // (~72 B for a Contact, ~40 B for a P-Associated-URI per registration).
  return {
    impus: prev !== undefined && sameLines(prev.impus, impus) ? prev.impus : impus.map(ownString),
    contact: contact === undefined || contact === prev?.contact ? prev?.contact : ownString(contact),
    serviceRoute:
      sr.length === 0
        ? (prev?.serviceRoute ?? NO_SETS)
        : prev !== undefined && sameLines(prev.serviceRoute, sr)
          ? prev.serviceRoute
          : sharedRoute(sr),
    expiresAt: now + expires * 1000,
  };
}

/** The Service-Route list the last new binding got: the next one that names the same route shares it. */
let lastRoute: readonly string[] = NO_SETS;

/**
 * Issue 9 §2: the S-CSCF gives every UE it serves the same Service-Route (its own URI), so the
 * bindings share one list (read-only) rather than an array and strings each (~110 B per
 * registration). A one-entry memo, not a table: nothing grows, and a route that differs simply
 * gets its own list and becomes the one shared next.
 */
function sharedRoute(sr: readonly string[]): readonly string[] {
  if (!sameLines(lastRoute, sr)) lastRoute = sr.map(ownString);
  return lastRoute;
}

/** The slot owner dropped a set: whatever role it had here ends. */
function onSetGone(state: RegState, set: SetId, env: RegEnv): RegTransition {
  if (state.kind === 'idle') return { state, actions: [] };
  const bound = state.bound;
  let nextBound: Bound | undefined = bound;
  const actions: RegAction[] = [];
  if (bound?.current === set) {
    // The registration's current set is gone (its lifetime ran out): the registration is over,
    // its old sets with it.
    nextBound = undefined;
    actions.push({ kind: 'emit-deregistered', payload: { impi: env.impi, reason: 'SA lifetime expired' } });
    for (const o of bound.old) actions.push({ kind: 'delete-set', set: o, event: 'deleted', reason: 'the current set is gone' });
  } else if (bound?.old.includes(set)) {
    nextBound = makeBound(
      bound,
      bound,
      bound.lifetime,
      bound.old.filter((s) => s !== set),
    );
  }
  if (state.kind === 'challenged' && state.temporary === set) return { state: settle(nextBound), actions };
  if (state.kind === 'registered') return { state: settle(nextBound), actions };
  if (nextBound === bound) return { state, actions };
  const { bound: _dropped, ...rest } = state;
  return { state: (nextBound ? Object.assign({}, rest, { bound: nextBound }) : rest) as RegState, actions };
}
