// One registration procedure of the UE, start to final answer: initial (24.229 §5.1.1.2), refresh
// (§5.1.1.4.1) or de-registration (§5.1.1.6), each with the 401 handling of §5.1.1.5.1 and the SA
// set-up of 33.203 §7.2. Order: REGISTER → 401 → Security-Server → AUTN → SAs → protected REGISTER → 200.
import { digestResponse, type UsimResult } from '../aka/index.ts';
import type { SaSet } from '../ipsec/index.ts';
import { chooseServerMechanism, parseSecurityHeader, type ServerChoiceResult, type UeSupport } from '../secagree/index.ts';
import { parseVia, type SipRequest, type SipResponse, type Via } from '../sip/index.ts';
import {
  akaAuthorization,
  buildRegister,
  contactUser,
  initialAuthorization,
  newCnonce,
  parseAkaChallenge,
  parseRegisterOk,
  type AkaChallenge,
  type RegDialog,
  type RegisterOk,
  type UeIdentity,
} from './register-request.ts';
import type { RegEvent } from './registration-state.ts';
import type { ClientOffer, UeSaTable } from './sa-table.ts';
import type { SendOutcome } from './sip-io.ts';
import type { UeObserver } from './ue-types.ts';
import { toBase64 } from '../util/bytes.ts';

/**
 * A protected REGISTER with des-ede3-cbc that gets no answer: Kamailio 5.6.3 installs the 3DES key
 * of its SAs with its last 8 octets not CK1 (Annex I: CK1 ‖ CK2 ‖ CK1; it copies CK without a
 * terminating NUL and appends CK1 after whatever follows), so its kernel drops our ESP unseen.
 */
const DES_HINT =
  '; with des-ede3-cbc: a P-CSCF whose 3DES key is not CK1 ‖ CK2 ‖ CK1 (33.203 Annex I) drops the protected REGISTER unseen, as Kamailio 5.6 does; offer aes-cbc or null (--offer)';

/** A de-registration over a set: a clear final answer ends its wait (see UeSipIo.send). */
const CLEAR_ANSWER_ENDS = Object.freeze({ clearAnswerEnds: true });

/** Which registration procedure: initial, refresh (re-registration) or de-registration. */
export type RegistrationKind = 'initial' | 'refresh' | 'deregister';

/** Why a registration procedure failed. */
export type FailureReason =
  /** AUTN's MAC did not verify: the network is not authentic (33.203 §6.1.2.2). */
  | 'mac_failure'
  /** 403 to the REGISTER (wrong RES, unknown user, …). */
  | 'forbidden'
  /** Any other final failure status. */
  | 'rejected'
  /** 401 without a complete Security-Server, attempts exhausted (24.229 §5.1.1.5.1). */
  | 'no_security_server'
  /** Security-Server complete but no entry we support. */
  | 'no_acceptable_mechanism'
  /** A 401 without a usable AKA Digest challenge. */
  | 'bad_challenge'
  /** More consecutive invalid challenges than allowed (24.229 §5.1.1.5.1: two). */
  | 'too_many_invalid_challenges'
  | 'sa_setup_failed'
  /** A 2xx without IMS AKA: there is no SA set to protect later traffic with. */
  | 'unauthenticated'
  | 'timeout'
  | 'transport_error'
  | 'registration_expired'
  | 'closed';

/** A registration procedure that succeeded: the registered contact, expiry and SA set. */
export interface RegistrationOk extends RegisterOk {
  readonly ok: true;
  readonly kind: RegistrationKind;
  /** The current SA set's id after the procedure (absent after a de-registration). */
  readonly set?: string;
  /** A de-registration whose 2xx came in clear text (Kamailio 5.6, digest §17.1): it ended the wait only. */
  readonly unprotectedAnswer?: boolean;
}

/** A registration procedure that failed, with its reason and the status code when there was one. */
export interface RegistrationFailure {
  readonly ok: false;
  readonly kind: RegistrationKind;
  readonly reason: FailureReason;
  readonly status?: number;
  readonly detail: string;
}

/** The outcome of a registration procedure. */
export type RegistrationResult = RegistrationOk | RegistrationFailure;

/** What a procedure needs from the Ue (implemented by Ue; kept narrow so the flow reads alone). */
export interface RegistrationHost {
  readonly id: UeIdentity;
  readonly localIp: string;
  readonly plainPort: number;
  readonly expires: number;
  readonly maxAttempts: number;
  readonly maxInvalidChallenges: number;
  /** The USIM's AUTN check (33.102 §6.3.3) with this UE's keys and SQN state. */
  akaRespond(rand: Uint8Array, autn: Uint8Array): UsimResult;
  readonly support: UeSupport;
  readonly sas: UeSaTable;
  readonly dialog: RegDialog;
  /** The Authorization of the last successful registration (re-REGISTER, 24.228 R2-1a). */
  cachedAuthorization: string | undefined;
  readonly closed: boolean;
  newDialog(): void;
  /** Binds the unprotected socket if it is not (before an unprotected REGISTER). */
  openPlain(): Promise<void>;
  /** Fresh SPIs and protected ports (port_us kept when given); endpoints opened. */
  newOffer(keepPortS?: number): Promise<ClientOffer>;
  /** `clearAnswerEnds`: a final response in clear text ends the wait (reported, never accepted as SIP). */
  send(req: SipRequest, over: SaSet | undefined, opts?: { readonly clearAnswerEnds?: boolean }): Promise<SendOutcome>;
  fire(event: RegEvent, data?: { expires?: number }): Promise<void>;
  step(text: string): void;
  /** Whether anyone reads the steps: their text is built only then (a load run's 100k UEs have no reader). */
  readonly tracing: boolean;
  /** Notes the public address a NAT gave us (Via received/rport of an unprotected response). */
  notePublicAddress(res: SipResponse): void;
  /**
   * Via and Contact hosts of a REGISTER over `set` (or unprotected without one): behind a NAT the
   * Contact of a protected REGISTER is the public address (24.229 F.2.1.2.2).
   */
  addressing(set: SaSet | undefined): { readonly via: string; readonly contact: string };
  /** The inner address of a UDP-enc-tun set when it is not the local one ('public inside' peers, §15A point 4). */
  tunnelInnerIp(): string | undefined;
  /** Test-only misbehaviour, so end-to-end tests can prove the network refuses it. */
  readonly testHooks?: UeTestHooks;
  /** Load-test measurements (the USIM's verdicts); absent normally. */
  readonly observer?: UeObserver;
}

/** Ways a test can make the UE misbehave. Never set outside tests. */
export interface UeTestHooks {
  /** Answer the challenge with a RES that has its first octet flipped (the S-CSCF must say 403). */
  readonly wrongRes?: boolean;
  /** Send a Security-Verify whose ealg differs from the Security-Server received (bidding down). */
  readonly tamperSecurityVerify?: boolean;
}

/** A Security-Verify that claims a different ealg than the Security-Server said (a bidding-down attempt). */
function tamperVerify(ss: readonly string[]): string[] {
  return ss.map((v) => (/ealg=null/.test(v) ? v.replace(/ealg=null/, 'ealg=aes-cbc') : v.replace(/ealg=[\w-]+/, 'ealg=null')));
}

/** Runs one procedure to its end. The caller ensures no other procedure runs. */
export async function runRegistration(h: RegistrationHost, requested: RegistrationKind): Promise<RegistrationResult> {
  let kind = requested;
  const fail = (reason: FailureReason, detail: string, status?: number): RegistrationFailure => {
    // A de-registration ends the registration whatever the answer: say what is known, not "failed".
    if (requested === 'deregister')
      h.step(`de-registration not confirmed: ${reason}${status ? ` (${status})` : ''}: ${detail}; every SA set removed locally`);
    else h.step(`registration failed: ${reason}${status ? ` (${status})` : ''}: ${detail}`);
    return { ok: false, kind: requested, reason, detail, ...(status !== undefined && { status }) };
  };
  await h.fire(kind === 'initial' ? 'register' : kind === 'refresh' ? 'reregister' : 'deregister');
  // The set the procedure's first REGISTER goes over (none for an initial registration).
  let base: SaSet | undefined = kind === 'initial' ? undefined : h.sas.current;
  if (kind === 'initial') {
    h.newDialog();
    try {
      await h.openPlain();
    } catch (e) {
      // EMFILE, EADDRINUSE…: one UE's failure, reported like any transport failure.
      await h.fire('reject');
      return fail('transport_error', `cannot bind the unprotected socket: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  let expires = kind === 'deregister' ? 0 : h.expires;
  let offer = await h.newOffer(base?.config.ue.portS);
  let attempts = 1;
  let invalid = 0;
  let macFailed = false;
  let pendingAuth: string | undefined;
  let over = base;
  const user = contactUser(h.id); // the same in every REGISTER of the procedure

  const register = (authorization: string, verify: readonly string[] | undefined, viaSet: SaSet | undefined): SipRequest => {
    h.dialog.cseq++;
    const a = h.addressing(viaSet);
    return buildRegister({
      id: h.id,
      dialog: h.dialog,
      localIp: a.via,
      contactIp: a.contact,
      port: viaSet ? offer.portS : h.plainPort,
      expires,
      authorization,
      securityClient: offer.header,
      contactUser: user,
      ...(verify && { securityVerify: verify }),
    });
  };
  // 24.229 §5.1.1.4.1 / 24.228 R2-1a: a re-REGISTER carries the cached credentials, a new
  // Security-Client (new port_uc and SPIs) and Security-Verify = the current Security-Server.
  const first = (): SipRequest =>
    base
      ? register(h.cachedAuthorization ?? initialAuthorization(h.id), h.sas.serverOf(base), base)
      : register(initialAuthorization(h.id), undefined, undefined);
  const restartInitial = async (): Promise<void> => {
    kind = 'initial';
    base = undefined;
    over = undefined;
    invalid = 0;
    macFailed = false;
    h.newDialog();
    await h.openPlain();
    offer = await h.newOffer();
  };

  let req = first();
  if (h.tracing)
    h.step(
      `REGISTER (expires ${expires}) ${over ? `over SA set ${over.id} (port_uc ${over.config.ue.portC} → port_ps ${over.config.pcscf.portS})` : 'unprotected'}, Call-ID ${h.dialog.callId}`,
    );
  for (;;) {
    const out = await h.send(req, over, kind === 'deregister' && over !== undefined ? CLEAR_ANSWER_ENDS : undefined);
    if (h.closed) return fail('closed', 'the UE was closed');
    if (out.kind === 'clear-response') {
      // Kamailio 5.6 deletes its SAs when it saves the de-registration, then answers in clear
      // (digest §17.1). Not accepted as SIP: it only ends the wait. Every SA set goes either way.
      const res = out.response;
      await h.fire(res.status < 300 ? 'ok' : 'reject');
      if (res.status < 300) {
        h.step(
          `de-registered; the P-CSCF's answer was not protected (${res.status} ${res.reason} in clear text to port ${out.port}, not accepted as SIP); every SA set deleted`,
        );
        return { ok: true, kind: requested, expires: 0, impus: [], serviceRoute: [], unprotectedAnswer: true };
      }
      return fail('rejected', `the P-CSCF's answer (${res.status} ${res.reason}) was not protected`, res.status);
    }
    if (out.kind !== 'response') {
      const what =
        out.kind === 'timeout'
          ? `no final response (Timer F)${out.tcp ? '; it went over TCP inside the SAs (RFC 3261 §18.1.1): a P-CSCF without SIP over TCP on its protected ports needs UDP (--transport udp)' : ''}${over && over !== base && over.config.ealg === 'des-ede3-cbc' ? DES_HINT : ''}`
          : `transport error: ${out.error.message}`;
      if (over && over === base && kind === 'refresh' && attempts < h.maxAttempts) {
        // Digest §8 rule 6: the P-CSCF lost our SAs; register again from scratch, unprotected.
        h.step(`${what} over the current SA set: falling back to an unprotected initial registration`);
        await h.fire('fallback');
        attempts++;
        await restartInitial();
        req = first();
        continue;
      }
      await h.fire(kind === 'deregister' ? 'fallback' : 'reject');
      return fail(out.kind === 'timeout' ? 'timeout' : 'transport_error', what);
    }
    const res = out.response;
    if (h.tracing)
      h.step(
        `${res.status} ${res.reason} ${out.protectedBy ? `over ${out.protectedBy.sa.name} of set ${out.protectedBy.set.id}` : 'unprotected'}`,
      );

    if (res.status === 401) {
      const ssRaw = res.headers.raw('Security-Server');
      const choice = chooseFrom(ssRaw, h.support);
      if (!choice.ok && choice.abandon && h.plainPort !== 5060 && /port-s=0\b/.test(ssRaw.join(','))) {
        // Digest §17.1: Kamailio 5.6 takes a REGISTER from another port for a re-registration.
        await h.fire('reject');
        return fail(
          'no_security_server',
          `${choice.detail}: the P-CSCF answered port-s=0, as Kamailio 5.6 does when the unprotected REGISTER does not come from port 5060; use local port 5060 (--local-port 5060)`,
          401,
        );
      }
      if (!choice.ok && choice.abandon) {
        // 24.229 §5.1.1.5.1: missing or incomplete Security-Server ⇒ abandon, new Call-ID.
        if (kind === 'deregister' || ++attempts > h.maxAttempts) {
          await h.fire(kind === 'deregister' ? 'abandon' : 'reject');
          return fail('no_security_server', choice.detail, 401);
        }
        h.step(`abandoning this registration (${choice.detail}); starting again with a new Call-ID (24.229 §5.1.1.5.1)`);
        await h.fire('abandon');
        await restartInitial();
        req = first();
        continue;
      }
      if (!choice.ok) {
        await h.fire('reject');
        return fail('no_acceptable_mechanism', choice.detail, 401);
      }
      const parsed = parseAkaChallenge(res.headers.getAll('WWW-Authenticate'));
      if (!parsed.ok) {
        await h.fire('reject');
        return fail('bad_challenge', parsed.reason, 401);
      }
      const ch = parsed.challenge;
      // Digest §15A point 2: the NAT's mapping shows in the unprotected 401 (rport of a protected one is port_uc).
      if (!out.protectedBy) h.notePublicAddress(res);
      const r = h.akaRespond(ch.rand, ch.autn);
      h.observer?.akaCheck?.(r.result);
      if (r.result === 'ok') {
        invalid = 0;
        macFailed = false;
        // Test-only misbehaviour (e2e tests of the network's checks): a wrong RES.
        if (h.testHooks?.wrongRes) r.res[0]! ^= 0xff;
        const c = credentials(h, ch, r.res, undefined, r.ik, r.ck);
        r.res.fill(0);
        let set: SaSet;
        try {
          const innerIp = choice.mod === 'UDP-enc-tun' ? h.tunnelInnerIp() : undefined;
          set = await h.sas.createTemporary(offer, choice, r.ik, r.ck, ssRaw, innerIp);
        } catch (e) {
          await h.fire('reject');
          return fail('sa_setup_failed', e instanceof Error ? e.message : String(e), 401);
        } finally {
          r.ik.fill(0);
          r.ck.fill(0);
        }
        if (h.tracing)
          h.step(
            `AUTN verified; temporary SA set ${set.id}: ${choice.alg}/${choice.ealg} mod=${choice.mod}, spi_uc ${offer.spiC} spi_us ${offer.spiS} port_uc ${offer.portC} port_us ${offer.portS} ↔ spi_pc ${choice.server.spiC} spi_ps ${choice.server.spiS} port_pc ${choice.server.portC} port_ps ${choice.server.portS}`,
          );
        pendingAuth = c;
        over = set;
        // 33.203 §7.2: same Call-ID, CSeq + 1, Security-Client unchanged, Security-Verify = Security-Server.
        req = register(c, h.testHooks?.tamperSecurityVerify ? tamperVerify(ssRaw) : ssRaw, set);
        await h.fire('challenge');
        if (h.tracing)
          h.step(`REGISTER with the AKA response over SA1 of ${set.id} (port_uc ${offer.portC} → port_ps ${choice.server.portS})`);
        continue;
      }
      // 24.229 §5.1.1.5.1: the UE answers at most two consecutive invalid challenges.
      if (++invalid > h.maxInvalidChallenges) {
        await h.fire('reject');
        return fail(
          'too_many_invalid_challenges',
          `${invalid} consecutive challenges failed the AUTN check (last: ${r.result}); not answering`,
          401,
        );
      }
      over = base;
      let auth: string;
      if (r.result === 'mac_failure') {
        // 33.203 §6.1.2.2: no SAs; empty response, no auts; over the existing set if any.
        macFailed = true;
        auth = akaAuthorization({ username: h.id.impi, uri: `sip:${h.id.domain}`, challenge: ch, response: '' });
        h.step('AUTN MAC check failed (network authentication failure): REGISTER with an empty response, no SAs built');
      } else {
        // RFC 3310 §3.4, 33.203 §6.1.2.3: auts and a response over the empty password.
        macFailed = false;
        auth = credentials(h, ch, new Uint8Array(0), toBase64(r.auts));
        h.step(`AUTN SQN not acceptable (${r.reason}): REGISTER with auts for resynchronisation`);
      }
      req = register(auth, base ? h.sas.serverOf(base) : undefined, base);
      await h.fire('invalid-challenge');
      continue;
    }

    if (res.status === 423 && over?.state !== 'temporary' && attempts < h.maxAttempts) {
      // RFC 3261 §10.2.8: raise the expiry to Min-Expires and try again.
      const min = Number(res.headers.get('Min-Expires') ?? NaN);
      if (Number.isInteger(min) && min > expires) {
        attempts++;
        expires = min;
        req = first();
        continue;
      }
    }

    if (res.status >= 200 && res.status < 300) {
      if (kind === 'deregister') {
        await h.fire('ok');
        if (h.tracing) h.step('de-registered; every SA set deleted');
        return { ok: true, kind: requested, expires: 0, impus: [], serviceRoute: [] };
      }
      if (!over) {
        await h.fire('reject');
        return fail(
          'unauthenticated',
          `${res.status} to an unprotected REGISTER without IMS AKA: no SA set to protect traffic`,
          res.status,
        );
      }
      const ok = parseRegisterOk(res, { host: h.addressing(over).contact, port: offer.portS }, expires);
      if (ok.expires === 0) {
        await h.fire('reject');
        return fail('rejected', 'the registrar granted expires=0', res.status);
      }
      if (pendingAuth) h.cachedAuthorization = pendingAuth;
      await h.fire('ok', { expires: ok.expires });
      if (h.tracing)
        h.step(
          `registered for ${ok.expires} s; IMPUs ${ok.impus.join(', ') || '(none listed)'}; SA set ${h.sas.current?.id ?? '?'} current`,
        );
      return { ok: true, kind: requested, ...ok, ...(h.sas.current && { set: h.sas.current.id }) };
    }

    await h.fire('reject');
    const reason = macFailed ? 'mac_failure' : res.status === 403 ? 'forbidden' : 'rejected';
    // The network's Warning says why (e.g. a NAT without a UDP-enc-tun offer, 33.203 Annex M).
    const warning = res.headers.get('Warning');
    return fail(reason, `${res.status} ${res.reason}${warning ? ` (Warning: ${warning})` : ''}`, res.status);
  }
}

type Choice = Extract<ServerChoiceResult, { ok: true }> | { ok: false; abandon: boolean; detail: string };

/** Security-Server → the entry to use; unparseable, missing or incomplete ⇒ abandon (§5.1.1.5.1). */
function chooseFrom(raw: readonly string[], support: UeSupport): Choice {
  if (raw.length === 0) return { ok: false, abandon: true, detail: 'the 401 has no Security-Server' };
  const server = parseSecurityHeader(raw, 'Security-Server');
  if (!server.ok) return { ok: false, abandon: true, detail: server.error.message };
  const r: ServerChoiceResult = chooseServerMechanism(server.value, support);
  if (r.ok) return r;
  return { ok: false, abandon: r.error.code === 'SECAGREE_SERVER_INCOMPLETE', detail: r.error.message };
}

/** The Authorization answering `ch` with password RES (or the empty one, with auts, for a resync). */
function credentials(h: RegistrationHost, ch: AkaChallenge, res: Uint8Array, auts?: string, ik?: Uint8Array, ck?: Uint8Array): string {
  const uri = `sip:${h.id.domain}`;
  const qop = ch.qop;
  const nc = qop ? '00000001' : undefined;
  const cnonce = qop ? newCnonce() : undefined;
  const response = digestResponse({
    username: h.id.impi,
    realm: ch.realm,
    uri,
    nonce: ch.nonce,
    method: 'REGISTER',
    algorithm: ch.algorithm,
    res,
    ...(ik && ck && { ik, ck }),
    ...(qop && { qop, nc, cnonce }),
  });
  return akaAuthorization({
    username: h.id.impi,
    uri,
    challenge: ch,
    response,
    ...(nc && { nc }),
    ...(cnonce && { cnonce }),
    ...(auts && { auts }),
  });
}

/** The public address a NAT gave us, from the top Via of a response (digest §15A point 2); `top`: that Via, parsed already. */
export function viaReceived(res: SipResponse, top?: Via): { address: string; port?: number } | undefined {
  let via = top;
  if (!via) {
    const v = parseVia(res.headers.get('Via') ?? '');
    if (!v.ok) return undefined;
    via = v.value;
  }
  const received = via.params.getUnquoted('received');
  const rport = via.params.get('rport');
  if (typeof received !== 'string') return undefined;
  return { address: received, ...(typeof rport === 'string' && /^[0-9]+$/.test(rport) && { port: Number(rport) }) };
}
