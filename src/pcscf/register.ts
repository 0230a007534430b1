// REGISTER at the P-CSCF (33.203 §7.2-§7.4, Annex H, Annex M; 24.229 §5.2.2; spec digest §5, §8):
// unprotected REGISTER → store Security-Client, NAT test, negotiate, admission check, forward;
// 401 → ik/ck out, temporary set, Security-Server; protected REGISTER → Security-Verify and
// Security-Client checks, forward; 200 → promote and answer over the new set; failures → delete.
import { isIP } from 'node:net';
import type { ProtectedContext } from '../ipsec/backends/backend.ts';
import { expandKeys } from '../ipsec/keys.ts';
import { sameAddress } from '../ipsec/sa.ts';
import { createSaSet, lifetimeAfterSuccess, type SaSet } from '../ipsec/sa-set.ts';
import { NAT_T_PORT, modeFromMod } from '../ipsec/types.ts';
import {
  SecAgreeError, buildSecurityServer, negotiate, parseSecurityHeader, serializeMechanisms, verifySecurityClientUnchanged, verifySecurityVerify,
  type SecMechanism,
} from '../secagree/index.ts';
import { createResponse } from '../sip/builders.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import type { ServerTransaction } from '../sip/transaction-manager.ts';
import type { ReceiveContext } from '../sip/transport.ts';
import { formatHostPort } from '../sip/uri.ts';
import { parseVia } from '../sip/via.ts';
import { wipe } from '../util/bytes.ts';
import { afterSend, type PcscfCore } from './core.ts';
import { admissionCheck, associatedIdentities, checkRegisterIdentity, checkSecurityClient, detectNat, impuKey, grantedExpires, isDeregistration, uriOf, wantsUdpEncTun } from './decisions.ts';
import { forward } from './proxy.ts';
import type { Registration, Round } from './registrations.ts';
import {
  addPath, forwardCopy, impiOf, markIntegrityProtected, pushVia, stripSecAgree, takeAkaKeys, warningValue, type AkaKeys,
} from './rewrite.ts';
import type { RejectReason } from './types.ts';

/** Registration time assumed when a 200 OK names none. */
const DEFAULT_EXPIRES_S = 3600;

type Offer = { ok: true; raw: readonly string[]; parsed: SecMechanism[] } | { ok: false; reason: RejectReason; message: string };

function parseClient(req: SipRequest): Offer {
  const raw = req.headers.raw('Security-Client');
  if (raw.length === 0) return { ok: false, reason: 'no-security-client', message: 'REGISTER without Security-Client: sec-agree with ipsec-3gpp is required (33.203 §7.2, RFC 3329 §2.3.1)' };
  const parsed = parseSecurityHeader(raw, 'Security-Client');
  if (!parsed.ok) return { ok: false, reason: 'bad-security-client', message: `${parsed.error.message} [${parsed.error.code}]` };
  return { ok: true, raw, parsed: parsed.value };
}

/** The REGISTER as the S-CSCF gets it (24.229 §5.2.2; the contract in ARCHITECTURE.md). Undefined: Max-Forwards ran out. */
export function registerForCore(core: PcscfCore, req: SipRequest, protectedArrival: boolean): SipRequest | undefined {
  const out = forwardCopy(req, (u) => core.isMine(u));
  if (!out) return undefined;
  stripSecAgree(out);
  markIntegrityProtected(out, protectedArrival);
  addPath(out, core.pathUri);
  pushVia(out, core.address, core.port);
  return out;
}

interface Arrival {
  readonly kind: 'initial' | 're-register' | 'protected';
  readonly reg: Registration;
  readonly round: Round | undefined;
  readonly req: SipRequest;
  /** The set the REGISTER came over: the current one (re-register) or the temporary one (protected). */
  readonly set?: SaSet;
  readonly dereg: boolean;
}

function send(core: PcscfCore, tx: ServerTransaction, a: Arrival, out: SipRequest | undefined, ctx: ReceiveContext): void {
  if (!out) {
    if (a.round && a.reg.round === a.round) core.table.endRound(a.reg);
    core.reject(tx, a.req, ctx, 483, 'too-many-hops', 'Max-Forwards reached 0', { impi: a.reg.impi });
    return;
  }
  forward(core, tx, out, core.toCore(), {
    toUe: true,
    onResponse: (res) => onRegisterResponse(core, tx, a, res),
    // No answer from the S-CSCF (408/503 to the UE): a round without a temporary set ends here.
    onFailed: () => {
      if (a.round && a.reg.round === a.round && !a.round.temporary) core.table.endRound(a.reg);
    },
  });
}

/** An unprotected REGISTER from a UE: an initial registration, or a UE that lost its SAs (spec digest §8 rule 6). */
export async function onUnprotectedRegister(core: PcscfCore, tx: ServerTransaction, req: SipRequest, ctx: ReceiveContext): Promise<void> {
  const from = ctx.remote;
  const impi = impiOf(req);
  if (!impi) return core.reject(tx, req, ctx, 403, 'no-impi', 'REGISTER without an Authorization username (IMPI) (24.229 §5.1.1.2.1)');
  const offer = parseClient(req);
  if (!offer.ok) return core.reject(tx, req, ctx, 494, offer.reason, offer.message, { impi });
  const sane = checkSecurityClient(offer.parsed);
  if (!sane.ok) return core.reject(tx, req, ctx, 494, sane.reason, sane.message, { impi });
  const impu = impuKey(uriOf(req.headers.get('To') ?? '') ?? '');
  if (impu === undefined) return core.reject(tx, req, ctx, 400, 'bad-request', 'REGISTER without a usable To (the public identity to register)', { impi });
  const via = parseVia(req.headers.get('Via')!);
  const nat = detectNat(via, from, ctx.protocol);
  const choice = negotiate(offer.parsed, core.policy, { natDetected: wantsUdpEncTun(core.mode, nat.natDetected) });
  if (!choice.ok) {
    const reason = choice.error.code === 'SECAGREE_NAT_NO_UDP_ENC_TUN' ? 'nat-without-udp-enc-tun' : 'no-acceptable-mechanism';
    return core.reject(tx, req, ctx, 494, reason, `${choice.error.message} [${choice.error.code}]`, { impi });
  }
  // One set-up per registration at a time: a new unprotected REGISTER replaces a pending one.
  const pending = core.table.get(impi)?.round;
  // Issue 10 §2: bounded pending state and vector spending, checked before anything is forwarded
  // (a token is spent even if the admission check below then refuses: cheap, and on the safe side).
  const limit = core.limits.admit(from.address, pending !== undefined && sameAddress(pending.ueIp, from.address));
  if (!limit.ok) return core.reject(tx, req, ctx, 503, limit.reason, limit.message, { impi, headers: [['Retry-After', String(limit.retryAfterS)]] });
  if (pending?.temporary) await core.table.deleteSet(pending.temporary, 'deleted', 'replaced by a new unprotected REGISTER');
  // Spec digest §15A.4: inside the tunnel the UE keeps its private address, the Via sent-by host
  // (unless this P-CSCF is configured for 'public inside' peers).
  const innerIp = core.natInnerAddress === 'private' && nat.differs === 'address' && isIP(via.host) === isIP(from.address) ? via.host : undefined;
  const adm = admissionCheck(from.address, choice.client.portC, (ip, inner, port) => core.table.setWithClientPort(ip, inner, port), core.table.get(impi)?.sets ?? [], innerIp);
  if (!adm.ok) return core.reject(tx, req, ctx, 403, adm.reason, adm.message, { impi });
  if (nat.natDetected) core.emit('nat-detected', { impi, via: formatHostPort(via.host, via.port ?? 5060), source: from, ...(nat.differs ? { differs: nat.differs } : {}) });
  const reg = core.table.getOrCreate(impi, from.address);
  const round: Round = {
    callId: req.headers.get('Call-ID')!,
    ueIp: from.address,
    natDetected: nat.natDetected,
    ...(innerIp ? { innerIp } : {}),
    client: { raw: offer.raw, parsed: offer.parsed },
    choice,
    impu,
  };
  reg.round = round;
  // Pending state always ends: the temporary set's reg-await-auth (its slot), the S-CSCF's answer,
  // a forwarding failure, or at the latest this timer (an S-CSCF that never answers).
  const give = core.limits.hold(from.address);
  const cancel = core.clock.setTimer(core.regAwaitAuthMs, () => {
    if (reg.round === round && !round.temporary) core.table.endRound(reg);
  });
  round.release = () => {
    cancel();
    give();
  };
  const a: Arrival = { kind: 'initial', reg, round, req, dereg: false };
  send(core, tx, a, registerForCore(core, req, false), ctx);
}

/** A REGISTER over the temporary set (SM7): it must be that set's round, with the headers unchanged (Annex H). */
export function onProtectedRegister(core: PcscfCore, tx: ServerTransaction, req: SipRequest, ctx: ReceiveContext, p: ProtectedContext): void {
  const set = p.set;
  const reg = core.table.ownerOf(set);
  const round = reg?.round;
  if (!reg || !round || round.temporary !== set) {
    return core.reject(tx, req, ctx, 403, 'not-temporary-set', `REGISTER over SA set ${set.id}, which is not the temporary set of a pending registration`);
  }
  // Issue 10 §1: the identities this temporary set was negotiated for, nobody else's. Refused
  // without touching the set: the owner may still finish its own registration over it.
  const who = checkRegisterIdentity(req, reg.impi, [round.impu], set.id);
  if (!who.ok) return core.reject(tx, req, ctx, 403, who.reason, who.message, { impi: reg.impi });
  const sv = verifySecurityVerify(req.headers.raw('Security-Verify'), round.server ?? []);
  const check = sv.ok ? verifySecurityClientUnchanged(round.client.parsed, req.headers.raw('Security-Client')) : sv;
  if (!check.ok) {
    // Spec digest §10.7: refuse (403, our choice: the code is UNVERIFIED) and drop the temporary set
    // once the refusal has gone out over it.
    const reason: RejectReason = sv.ok ? 'security-client-changed' : 'security-verify-mismatch';
    const message = `${check.error.message} [${check.error.code}]`;
    const r = core.toUe(set, ctx);
    const route = { to: r.to, transport: afterSend(r.transport, () => void core.table.deleteSet(set, 'failed', message)) };
    return core.reject(tx, req, ctx, 403, reason, message, { impi: reg.impi, route });
  }
  send(core, tx, { kind: 'protected', reg, round, req, set, dereg: isDeregistration(req) }, registerForCore(core, req, true), ctx);
}

/**
 * A REGISTER over the current set: a re-registration (spec digest §8 rule 5: new Security-Client
 * with new client ports and SPIs) or a de-registration (§8 rule 7).
 */
export async function onReRegister(core: PcscfCore, tx: ServerTransaction, req: SipRequest, ctx: ReceiveContext, reg: Registration, set: SaSet): Promise<void> {
  const impi = reg.impi;
  // Issue 10 §1: checked first, so a refused REGISTER changes nothing (no round replaced, no set deleted).
  const who = checkRegisterIdentity(req, impi, reg.impus.map(impuKey).filter((k): k is string => k !== undefined), set.id);
  if (!who.ok) return core.reject(tx, req, ctx, 403, who.reason, who.message, { impi });
  const dereg = isDeregistration(req);
  // RFC 3329 §2.3.1: Security-Verify repeats the Security-Server in force. DEVIATION: an absent one is
  // tolerated here, the request came over an authenticated SA already.
  const svRaw = req.headers.raw('Security-Verify');
  if (svRaw.length > 0 && reg.lastServer) {
    const v = verifySecurityVerify(svRaw, reg.lastServer);
    if (!v.ok) return core.reject(tx, req, ctx, 403, 'security-verify-mismatch', `${v.error.message} [${v.error.code}]`, { impi });
  }
  let round: Round | undefined;
  const parsedOffer = parseClient(req);
  const sane = parsedOffer.ok ? checkSecurityClient(parsedOffer.parsed) : undefined;
  const offer: Offer = sane && !sane.ok ? { ok: false, reason: sane.reason, message: sane.message } : parsedOffer;
  if (!offer.ok && !dereg) return core.reject(tx, req, ctx, 494, offer.reason, `${offer.message}; a re-REGISTER carries a new one (spec digest §8 rule 5)`, { impi });
  if (offer.ok) {
    // The mode stays what the registration runs (NAT detection happens on unprotected REGISTERs only, 24.229 F.1).
    const choice = negotiate(offer.parsed, core.policy, { natDetected: set.config.mode === 'udp-enc-tunnel' });
    if (!choice.ok && !dereg) return core.reject(tx, req, ctx, 494, 'no-acceptable-mechanism', `${choice.error.message} [${choice.error.code}]`, { impi });
    if (choice.ok) {
      if (reg.round?.temporary) await core.table.deleteSet(reg.round.temporary, 'deleted', 'replaced by a new re-REGISTER');
      reg.round = undefined;
      const adm = admissionCheck(set.config.ue.ip, choice.client.portC, (ip, inner, port) => core.table.setWithClientPort(ip, inner, port), reg.sets, set.config.ue.innerIp);
      if (!adm.ok && !dereg) return core.reject(tx, req, ctx, 403, adm.reason, adm.message, { impi });
      if (adm.ok) {
        round = {
          callId: req.headers.get('Call-ID')!,
          ueIp: set.config.ue.ip,
          natDetected: reg.natDetected,
          ...(set.config.ue.innerIp !== undefined ? { innerIp: set.config.ue.innerIp } : {}),
          client: { raw: offer.raw, parsed: offer.parsed },
          choice,
          impu: impuKey(uriOf(req.headers.get('To') ?? '') ?? '')!,
        };
        reg.round = round;
      }
    }
  }
  send(core, tx, { kind: 're-register', reg, round, req, set, dereg }, registerForCore(core, req, true), ctx);
}

async function onRegisterResponse(core: PcscfCore, tx: ServerTransaction, a: Arrival, res: SipResponse): Promise<SipResponse | undefined> {
  if (res.status < 200) return res;
  const live = a.round !== undefined && a.reg.round === a.round;
  if (a.kind === 'protected') return afterProtected(core, tx, a, res);
  if (res.status === 401) return challenge(core, tx, a, res);
  if (live) core.table.endRound(a.reg);
  if (res.status >= 300 || a.kind === 'initial') {
    // DEVIATION: a 2xx to an unprotected REGISTER (no challenge) is relayed, but no SA set exists,
    // so nothing but another REGISTER will be accepted from that UE.
    return res;
  }
  // A re-REGISTER answered without a challenge keeps the current set (24.228 R2-1a).
  const set = a.set!;
  if (a.dereg) return deregister(core, tx, a.reg, set, res);
  const expires = grantedExpires(res, uriOf(a.req.headers.get('Contact') ?? '')) ?? DEFAULT_EXPIRES_S;
  if (expires === 0) return deregister(core, tx, a.reg, set, res);
  applyRegistration(core, a.reg, res, a.req, undefined, expires);
  core.table.refresh(a.reg, lifetimeAfterSuccess(core.clock.now(), expires, set.expiresAt));
  return res;
}

/** The S-CSCF's 401 (SM5 → SM6): keys out of the message, temporary set in, Security-Server on. */
async function challenge(core: PcscfCore, tx: ServerTransaction, a: Arrival, res: SipResponse): Promise<SipResponse | undefined> {
  const keys = takeAkaKeys(res);
  const round = a.round;
  // Nothing to set up (the round was replaced, or the REGISTER had no usable Security-Client): the
  // 401 goes on without Security-Server and the UE starts over (spec digest §10.5).
  if (!round || a.reg.round !== round) {
    wipe(keys?.ik, keys?.ck);
    return res;
  }
  if (!keys) {
    core.table.endRound(a.reg);
    return refusal(core, tx, a, 500, 'challenge-without-keys', 'the S-CSCF sent a 401 without ik/ck: no SA set can be built (24.229 §5.4.1.2)');
  }
  let set: SaSet | undefined;
  try {
    set = await installTemporary(core, a.reg, round, keys);
  } catch (e) {
    core.table.endRound(a.reg);
    return refusal(core, tx, a, 500, 'sa-setup-failed', `cannot build the temporary SA set: ${(e as Error).message}`);
  } finally {
    wipe(keys.ik, keys.ck);
  }
  if (set && round.server) res.headers.append('Security-Server', serializeMechanisms(round.server));
  return res;
}

/** Allocates spi_pc/spi_ps, derives the ESP keys (Annex I) and installs the temporary set (33.203 §7.2). */
async function installTemporary(core: PcscfCore, reg: Registration, round: Round, keys: AkaKeys): Promise<SaSet | undefined> {
  const { alg, ealg, mod, client } = round.choice;
  const [spiC, spiS] = core.backend.allocateSpis(core.address, 2) as [number, number];
  const mode = modeFromMod(mod);
  const set = createSaSet({
    role: 'pcscf',
    id: `${reg.impi}#${++setCounter}`,
    ue: { ip: round.ueIp, portC: client.portC, portS: client.portS, spiC: client.spiC, spiS: client.spiS, ...(round.innerIp ? { innerIp: round.innerIp } : {}) },
    pcscf: { ip: core.address, portC: core.portC, portS: core.portS, spiC, spiS },
    alg,
    ealg,
    keys: expandKeys(keys.ik, keys.ck, alg, ealg),
    mode,
    // The UE's encapsulation port is learnt from its first authenticated packet (spec digest §15A.2).
    ...(mode === 'udp-enc-tunnel' ? { encap: { uePort: NAT_T_PORT, pcscfPort: core.encapPort } } : {}),
    expiresAt: core.clock.now() + core.regAwaitAuthMs,
  });
  await core.table.installTemporary(reg, round, set);
  if (reg.round !== round) {
    // Replaced while installing: this set will never be used.
    await core.table.deleteSet(set, 'deleted', 'registration set-up replaced while installing');
    return undefined;
  }
  const encap = reg.ue.encap;
  if (mode === 'udp-enc-tunnel' && encap && sameAddress(encap.address, round.ueIp)) core.backend.setPeerEncap(set, encap);
  round.server = [buildSecurityServer(round.choice, { spiC, spiS, portC: core.portC, portS: core.portS })];
  core.emit('sa-created', {
    impi: reg.impi, set: set.id, mode, alg, ealg,
    spis: { uc: client.spiC, us: client.spiS, pc: spiC, ps: spiS },
  });
  return set;
}
let setCounter = 0;

/** The S-CSCF's answer to the protected REGISTER (SM11 → SM12, or a failure: spec digest §8 rule 8). */
function afterProtected(core: PcscfCore, tx: ServerTransaction, a: Arrival, res: SipResponse): SipResponse {
  const set = a.set!;
  const reg = a.reg;
  if (res.status >= 300 || set.state !== 'temporary') {
    // Relayed over the temporary set, which is deleted once the answer is out; the current set stays.
    if (set.live) {
      const r = core.toUe(set, tx.context);
      const why = `the S-CSCF answered ${res.status} to the protected REGISTER`;
      tx.setResponseRoute({ to: r.to, transport: afterSend(r.transport, () => void core.table.deleteSet(set, 'failed', why)) });
    }
    return res;
  }
  const expires = grantedExpires(res, uriOf(a.req.headers.get('Contact') ?? '')) ?? DEFAULT_EXPIRES_S;
  if (a.dereg || expires === 0) return deregister(core, tx, reg, set, res);
  applyRegistration(core, reg, res, a.req, a.round, expires);
  // Spec digest §5.7: the set becomes current; the 200 OK goes out over it (the layer's response
  // route pins the set the request came over, which is this one).
  core.table.promote(reg, set, lifetimeAfterSuccess(core.clock.now(), expires, reg.current?.expiresAt));
  core.emit('registered', { impi: reg.impi, impus: reg.impus, expires });
  return res;
}

/** Spec digest §8 rule 7: the 200 OK goes out protected over `set`, then every set of the registration is deleted. */
function deregister(core: PcscfCore, tx: ServerTransaction, reg: Registration, set: SaSet, res: SipResponse): SipResponse {
  const r = core.toUe(set, tx.context);
  tx.setResponseRoute({ to: r.to, transport: afterSend(r.transport, () => void core.table.deleteAll(reg, 'deleted', 'de-registered')) });
  return res;
}

function applyRegistration(core: PcscfCore, reg: Registration, res: SipResponse, req: SipRequest, round: Round | undefined, expires: number): void {
  reg.impus = associatedIdentities(res, req);
  const contact = uriOf(req.headers.get('Contact') ?? '');
  if (contact !== undefined) reg.contact = contact;
  const sr = res.headers.getAll('Service-Route');
  if (sr.length > 0) reg.serviceRoute = sr;
  reg.expiresAt = core.clock.now() + expires * 1000;
  if (round) {
    const encap = reg.ue.encap && sameAddress(reg.ue.encap.address, round.ueIp) ? reg.ue.encap : undefined;
    reg.ue = { ip: round.ueIp, ...(round.innerIp ? { innerIp: round.innerIp } : {}), ...(encap ? { encap } : {}) };
    reg.natDetected = round.natDetected;
  }
}

function refusal(core: PcscfCore, tx: ServerTransaction, a: Arrival, status: number, reason: RejectReason, message: string): SipResponse {
  core.refused({ reason, message, status, method: 'REGISTER', from: tx.context.remote, impi: a.reg.impi });
  return createResponse(tx.request, status, undefined, [['Warning', warningValue(core.address, message)]]);
}
