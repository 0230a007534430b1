// REGISTER at the S-CSCF, 24.229 §5.4.1.2: Digest AKA (RFC 3310), Path (RFC 3327), Service-Route (RFC 3608),
// P-Associated-URI (RFC 3455). Pure: request + state + HSS in, response + actions + events out. Order:
// identities → Authorization → auts → protected re-REGISTER → challenge → response check → bind/unbind.
import {
  buildDigestHeader,
  buildNonce,
  parseAkaAlgorithm,
  parseAuts,
  parseDigestHeader,
  serializeDigestHeader,
  verifyDigestResponse,
  type AuthVector,
  type DigestHeader,
} from '../aka/index.ts';
import type { ResyncResult } from './hss.ts';
import {
  createResponse,
  formatNameAddr,
  isStarContact,
  parseNameAddr,
  type NameAddr,
  type SipRequest,
  type SipResponse,
} from '../sip/index.ts';
import { toHex } from '../util/bytes.ts';
import type { PendingChallenge } from './auth-pending.ts';
import { impuKey, type Registration } from './bindings.ts';
import type { AuthFailReason, ChallengeReason, ScscfEvent } from './events.ts';

/** The HSS as the registrar uses it (Hss from hss.ts fits). */
export interface RegistrarHss {
  authenticate(impi: string): AuthVector[];
  resynchronise(impi: string, rand: Uint8Array, auts: Uint8Array): ResyncResult;
  impusOf(impi: string): string[] | undefined;
  impiOf(impu: string): string | undefined;
  /** With grouped SQN commits: calls back once the SQNs of the vectors handed out are durable (Hss.afterCommit). */
  afterCommit?(cb: (err: Error | undefined) => void): void;
}

export interface RegistrarConfig {
  /** Home domain: the Digest realm. */
  readonly domain: string;
  /** The Service-Route value, e.g. `<sip:orig@192.0.2.5:6060;lr>`. */
  readonly serviceRoute: string;
  /** reg-await-auth, ms (24.229 Table 7.8.1: 4 min). */
  readonly regAwaitAuthMs: number;
  /** Challenge integrity-protected re-REGISTERs anyway (a new SA set per re-registration). */
  readonly challengeReRegister: boolean;
  /** Seconds granted when the REGISTER names none. */
  readonly defaultExpires: number;
  /** Upper bound on granted seconds. */
  readonly maxExpires: number;
}

export interface RegistrarState {
  pending(impi: string, callId: string): PendingChallenge | undefined;
  registration(impi: string): Registration | undefined;
}

export type RegistrarAction =
  | { readonly kind: 'challenge'; readonly pending: PendingChallenge }
  | { readonly kind: 'drop-challenge'; readonly impi: string; readonly callId: string }
  | { readonly kind: 'bind'; readonly registration: Registration }
  | { readonly kind: 'unbind'; readonly impi: string };

export interface RegisterOutcome {
  readonly response: SipResponse;
  readonly actions: readonly RegistrarAction[];
  readonly events: readonly ScscfEvent[];
}

/** Timers run on setTimeout, whose limit is 2^31-1 ms: no grant may exceed it (~24.8 days). */
export const MAX_GRANT_S = Math.floor(0x7fffffff / 1000);

export function handleRegister(
  req: SipRequest,
  state: RegistrarState,
  hss: RegistrarHss,
  cfg: RegistrarConfig,
  now: number,
): RegisterOutcome {
  const actions: RegistrarAction[] = [];
  const events: ScscfEvent[] = [];
  const done = (response: SipResponse): RegisterOutcome => ({ response, actions, events });
  const bad = (why: string) => done(createResponse(req, 400, `Bad Request (${why})`));

  // --- identities: To IMPU, Contact, requested expiry
  const to = parseNameAddr(req.headers.get('To') ?? '', 'To');
  if (!to.ok) return bad('To');
  const impu = to.value.uri;
  const contacts = req.headers.getAll('Contact');
  if (contacts.length === 0) return bad('no Contact'); // DEVIATION: binding queries (RFC 3261 §10.2.3) not supported
  const star = isStarContact(contacts[0]!);
  let contact: NameAddr | undefined;
  if (!star) {
    const first = parseNameAddr(contacts[0]!, 'Contact'); // several Contacts: the first one is bound
    if (!first.ok) return bad('Contact');
    contact = first.value;
  }
  const requested = requestedExpires(req, contact, cfg.defaultExpires);
  if (requested === 'bad') return bad('Expires');
  // RFC 3261 §10.2.2: `Contact: *` only with Expires: 0.
  if (star && requested !== 0) return bad('Contact * needs Expires: 0');
  const dereg = requested === 0;
  const granted = Math.min(requested, cfg.maxExpires, MAX_GRANT_S);

  // --- Authorization and the IMPI
  let auth: Credentials | undefined;
  const rawAuth = req.headers.get('Authorization');
  if (rawAuth !== undefined) {
    const parsed = parseDigestHeader(rawAuth);
    if (!parsed.ok) return bad('Authorization');
    if (parsed.value.scheme.toLowerCase() !== 'digest') return bad('Authorization scheme');
    auth = credentialsOf(parsed.value);
  }
  const impi = auth?.username || hss.impiOf(impu);
  const fail = (reason: AuthFailReason, who = impi ?? ''): RegisterOutcome => {
    events.push({ type: 'auth-failed', impi: who, impu, status: 403, reason });
    return done(createResponse(req, 403, 'Forbidden'));
  };
  if (!impi) return fail('unknown_user');
  const impus = hss.impusOf(impi);
  if (!impus) return fail('unknown_user');
  // 24.229 §5.4.1.2.1: the public identity must belong to the private one (spelled as the HSS has it:
  // no URI parsed; otherwise compared by impuKey, computed once for the To).
  if (!impus.includes(impu)) {
    const key = impuKey(impu);
    if (!impus.some((u) => impuKey(u) === key)) return fail('impu_mismatch');
  }

  const callId = req.headers.get('Call-ID') ?? '';
  const nonce = auth?.nonce ?? '';
  const response = auth?.response ?? '';
  const autsB64 = auth?.auts;
  // 24.229 §5.2.2: the P-CSCF marks a REGISTER that arrived over an SA with integrity-protected="yes".
  const protectedReq = auth?.integrityProtected?.toLowerCase() === 'yes';
  const pending = state.pending(impi, callId);
  const matches = pending !== undefined && nonce !== '' && pending.nonce === nonce;

  const challenge = (reason: ChallengeReason): RegisterOutcome => {
    let av: AuthVector | undefined;
    try {
      av = hss.authenticate(impi)[0];
    } catch {
      av = undefined; // removed from the HSS since impusOf (HSS_UNKNOWN_IMPI)
    }
    if (!av) return fail('unknown_user');
    const pendingNew: PendingChallenge = {
      impi,
      impu,
      callId,
      nonce: buildNonce(av.rand, av.autn),
      rand: av.rand,
      xres: av.xres,
      ck: av.ck,
      ik: av.ik,
      expiresAt: now + cfg.regAwaitAuthMs,
    };
    av.ak.fill(0);
    // 24.229 §5.4.1.2.1: ik/ck ride along for the P-CSCF, which removes them (spec digest §3.1).
    const www = `${challengePrefix(cfg.domain)}, nonce="${pendingNew.nonce}", algorithm=AKAv1-MD5, qop="auth", ik="${toHex(av.ik)}", ck="${toHex(av.ck)}"`;
    actions.push({ kind: 'challenge', pending: pendingNew });
    events.push({ type: 'challenge', impi, impu, callId, reason });
    return done(createResponse(req, 401, 'Unauthorized', [['WWW-Authenticate', www]]));
  };
  const dropPending = () => {
    if (pending) actions.push({ kind: 'drop-challenge', impi, callId });
  };

  // --- synchronisation failure: RFC 3310 §3.4, 24.229 §5.4.1.2.1 (spec digest §10.3)
  if (autsB64 !== undefined) {
    // The RAND is the one we sent for this (IMPI, Call-ID); without it there is nothing to resync against.
    if (!matches) return challenge('stale_nonce');
    const parsedAuts = parseAuts(autsB64);
    if (!parsedAuts.ok) {
      dropPending();
      return fail('bad_credentials');
    }
    const auts = parsedAuts.value;
    // MAC-S authenticates the AUTS; the response over the empty password is not checked (it adds nothing).
    const r = hss.resynchronise(impi, pending!.rand, auts);
    if (!r.ok) {
      dropPending();
      return fail(r.reason === 'mac_s_failure' ? 'mac_s_failure' : 'unknown_user');
    }
    events.push({ type: 'resync', impi });
    return challenge('resync');
  }

  const reg = state.registration(impi);
  const ok200 = () =>
    dereg
      ? deregistered(req, impi, contact, reg, actions, events)
      : registered(req, { impi, impus, contact: contact!, callId, granted, now, refresh: reg !== undefined }, cfg, actions, events);

  // --- integrity-protected REGISTER of a registered user that answers no challenge of ours.
  // De-registration is accepted directly (24.229 §5.4.1.4: no new authentication is needed once the
  // P-CSCF vouches for the SA); a re-registration is challenged unless challengeReRegister is off.
  // Issue 10 §1: the flag vouches only for the binding it was earned for. 24.229 §5.4.1.2.2: the
  // S-CSCF identifies the user by the To and the Authorization username of the protected REGISTER,
  // and "if the REGISTER request does not contain a reg-id header field parameter and the contact
  // address indicated in the Contact header field was not previously registered", answers 403. For
  // `Contact: *` (no address to compare) the Path must be the one the binding came through.
  if (protectedReq && !matches && reg !== undefined) {
    const samePath = req.headers.getAll('Path').join(',') === reg.path.join(',');
    const earned = star ? samePath : contact !== undefined && sameContactUri(contact.uri, reg.contact);
    if (!earned) return fail('contact_not_registered');
    if (dereg || !cfg.challengeReRegister) return ok200();
    return challenge('re_register');
  }

  // --- no credentials yet (initial REGISTER: nonce="" response="", 24.229 §5.1.1.2.1)
  if (!auth || nonce === '') return challenge(protectedReq ? 're_register' : 'initial');

  // --- response="" with a nonce and no auts: the UE could not authenticate the network (spec digest §10.2).
  if (response === '') {
    dropPending();
    return fail('empty_response');
  }

  // --- a nonce we no longer hold (expired reg-await-auth, other Call-ID, already used): challenge afresh.
  if (!matches) return challenge('stale_nonce');

  // --- the answer to our challenge: response computed from XRES (RFC 3310 §3.3, RFC 4169 for AKAv2).
  dropPending(); // one answer per challenge, right or wrong
  if (!checkResponse(req, auth, pending!, cfg.domain)) return fail(credentialsUsable(auth) ? 'wrong_response' : 'bad_credentials');
  return ok200();
}

// `Digest realm="…"` as serializeDigestHeader writes it (the realm quoted and escaped), made once per
// domain: the rest of a challenge is base64 and hex, which need no quoting, so it is appended as text.
let prefixFor = '';
let prefix = '';
function challengePrefix(domain: string): string {
  if (domain !== prefixFor) {
    prefix = serializeDigestHeader(buildDigestHeader({ realm: domain }, { challenge: true }));
    prefixFor = domain;
  }
  return prefix;
}

/** The Authorization parameters the registrar reads (names case-insensitive; the first of a name counts, as getParam has it). */
interface Credentials {
  readonly username: string | undefined;
  readonly nonce: string | undefined;
  readonly response: string | undefined;
  readonly auts: string | undefined;
  readonly integrityProtected: string | undefined;
  readonly qop: string | undefined;
  readonly nc: string | undefined;
  readonly cnonce: string | undefined;
  readonly uri: string | undefined;
  readonly algorithm: string | undefined;
}

/** One pass over the header instead of a getParam scan per name; the result has one fixed shape. */
function credentialsOf(h: DigestHeader): Credentials {
  let username, nonce, response, auts, integrityProtected, qop, nc, cnonce, uri, algorithm: string | undefined;
  for (const p of h.params) {
    const v = p.value;
    switch (p.name.toLowerCase()) {
      case 'username':
        username ??= v;
        break;
      case 'nonce':
        nonce ??= v;
        break;
      case 'response':
        response ??= v;
        break;
      case 'auts':
        auts ??= v;
        break;
      case 'integrity-protected':
        integrityProtected ??= v;
        break;
      case 'qop':
        qop ??= v;
        break;
      case 'nc':
        nc ??= v;
        break;
      case 'cnonce':
        cnonce ??= v;
        break;
      case 'uri':
        uri ??= v;
        break;
      case 'algorithm':
        algorithm ??= v;
        break;
    }
  }
  return { username, nonce, response, auts, integrityProtected, qop, nc, cnonce, uri, algorithm };
}

function checkResponse(req: SipRequest, auth: Credentials, p: PendingChallenge, domain: string): boolean {
  if (!credentialsUsable(auth)) return false;
  const qop = auth.qop?.toLowerCase() as 'auth' | 'auth-int' | undefined;
  // With qop, nc is 8 hex digits (RFC 2617 §3.2.2): checked here so that the verifier, which throws
  // on it as misuse, only ever sees well-formed input (the algorithm was checked by credentialsUsable).
  if (qop !== undefined && !/^[0-9a-fA-F]{8}$/.test(auth.nc ?? '')) return false;
  return verifyDigestResponse({
    username: p.impi,
    realm: domain,
    uri: auth.uri ?? `sip:${domain}`,
    nonce: p.nonce,
    method: 'REGISTER',
    algorithm: parseAkaAlgorithm(auth.algorithm ?? 'AKAv1-MD5'),
    res: p.xres,
    ik: p.ik,
    ck: p.ck,
    // Lenient: a UE that omits qop (RFC 2069 form) is checked without it.
    ...(qop !== undefined && { qop, nc: auth.nc ?? '', cnonce: auth.cnonce ?? '' }),
    body: req.body,
    response: auth.response ?? '',
  });
}

/** Algorithm AKAv1-MD5/AKAv2-MD5 (or absent) and qop auth/auth-int (or absent). */
function credentialsUsable(auth: Credentials): boolean {
  const alg = auth.algorithm;
  const qop = auth.qop?.toLowerCase();
  return (alg === undefined || /^akav[12]-md5$/i.test(alg)) && (qop === undefined || qop === 'auth' || qop === 'auth-int');
}

/** RFC 3261 §10.3 step 6: the Contact's expires parameter, else the Expires header, else the default. */
function requestedExpires(req: SipRequest, contact: NameAddr | undefined, dflt: number): number | 'bad' {
  const p = contact?.params.getUnquoted('expires');
  const h = req.headers.get('Expires');
  const v = typeof p === 'string' ? p : h;
  if (v === undefined) return dflt;
  if (!/^\s*\d{1,10}\s*$/.test(v)) return 'bad';
  return Number(v.trim());
}

interface Granted {
  readonly impi: string;
  readonly impus: readonly string[];
  readonly contact: NameAddr;
  readonly callId: string;
  readonly granted: number;
  readonly now: number;
  readonly refresh: boolean;
}

/** 200 OK with the binding: Contact;expires, Expires, Path, Service-Route, P-Associated-URI (24.229 §5.4.1.2.2). */
function registered(req: SipRequest, g: Granted, cfg: RegistrarConfig, actions: RegistrarAction[], events: ScscfEvent[]): RegisterOutcome {
  const path = req.headers.getAll('Path');
  const registration: Registration = {
    impi: g.impi,
    impus: g.impus, // the HSS's copy (impusOf), ours to keep
    contact: g.contact.uri,
    path,
    callId: g.callId,
    expires: g.granted,
    expiresAt: g.now + g.granted * 1000,
  };
  actions.push({ kind: 'bind', registration });
  events.push({
    type: 'registered',
    impi: g.impi,
    impus: registration.impus,
    contact: g.contact.uri,
    expires: g.granted,
    refresh: g.refresh,
  });
  const params = g.contact.params.clone();
  params.set('expires', String(g.granted));
  const headers: [string, string][] = [
    ['Contact', formatNameAddr({ ...g.contact, params })],
    ['Expires', String(g.granted)],
    // RFC 3327 §5.3 returns Path to UAs that sent Supported: path; the contract has it echoed always.
    ...path.map((p): [string, string] => ['Path', p]),
    ['Service-Route', cfg.serviceRoute],
    ['P-Associated-URI', g.impus.map((u) => `<${u}>`).join(', ')],
  ];
  return { response: createResponse(req, 200, 'OK', headers), actions, events };
}

/** 200 OK to a de-registration: the binding goes; the Contact is echoed with expires=0. */
function deregistered(
  req: SipRequest,
  impi: string,
  contact: NameAddr | undefined,
  reg: Registration | undefined,
  actions: RegistrarAction[],
  events: ScscfEvent[],
): RegisterOutcome {
  if (reg) {
    actions.push({ kind: 'unbind', impi });
    events.push({ type: 'deregistered', impi, impus: reg.impus, reason: 'user' });
  }
  const headers: [string, string][] = [];
  if (contact) {
    const params = contact.params.clone();
    params.set('expires', '0');
    headers.push(['Contact', formatNameAddr({ ...contact, params })]);
  }
  headers.push(['Expires', '0']);
  return { response: createResponse(req, 200, 'OK', headers), actions, events };
}

/** Two contact URIs are the same binding: equal after lower-casing the host part (RFC 3261 §19.1.4, loosely). */
function sameContactUri(a: string, b: string): boolean {
  if (a === b) return true; // the usual case: the UE repeats its Contact as it registered it
  const norm = (u: string) => u.replace(/@([^;>?]*)/, (_m, h: string) => `@${h.toLowerCase()}`).replace(/^sips?:/i, (x) => x.toLowerCase());
  return norm(a) === norm(b);
}
