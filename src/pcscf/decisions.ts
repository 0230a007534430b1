// The P-CSCF's decisions as pure functions: NAT detection (24.229 F.1, spec digest §15A.5), the
// mode to negotiate, the admission check (33.203 §7.1 rule 3), de-registration and expiry
// (24.229 §5.2.2, RFC 3261 §10.2), and identity / contact matching (24.229 §5.2.6.3).
import { isIP } from 'node:net';
import { sameAddress } from '../ipsec/sa.ts';
import type { SaSet } from '../ipsec/sa-set.ts';
import type { SecMechanism } from '../secagree/index.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import { isStarContact, parseNameAddr } from '../sip/name-addr.ts';
import { parseUri } from '../sip/uri.ts';
import { toUri } from '../sip/validate.ts';
import { defaultPort, type Via } from '../sip/via.ts';
import { impiOf } from './rewrite.ts';
import type { PcscfMode, RejectReason, Source } from './types.ts';

export interface NatVerdict {
  readonly natDetected: boolean;
  /** What differed, for the log ('address' or 'port'). */
  readonly differs?: 'address' | 'port';
}

/**
 * 24.229 F.1: compare the top Via's sent-by with the packet source of the unprotected REGISTER;
 * for UDP the port takes part too (spec digest §15A.5: a TCP source port is ephemeral).
 * DEVIATION: a sent-by that is a domain name cannot be compared and counts as "no NAT".
 */
export function detectNat(via: Via, source: Source, protocol: 'udp' | 'tcp'): NatVerdict {
  if (isIP(via.host) === 0) return { natDetected: false };
  if (!sameAddress(via.host, source.address)) return { natDetected: true, differs: 'address' };
  if (protocol === 'udp' && (via.port ?? defaultPort(via.transport)) !== source.port) return { natDetected: true, differs: 'port' };
  return { natDetected: false };
}

/**
 * Whether negotiation must pick mod=UDP-enc-tun. 'auto' follows the NAT verdict (33.203 M.7.1);
 * a forced mode wins over detection (DEVIATION for the loopback demo and lab set-ups).
 */
export function wantsUdpEncTun(mode: PcscfMode, natDetected: boolean): boolean {
  return mode === 'auto' ? natDetected : mode === 'udp-enc-tun';
}

/** 33.203 §7.1 NOTE 13: at most six SAs per direction per registered contact for one IMPI. */
export const MAX_SAS_PER_DIRECTION = 6;
/** Each SA set has two SAs in each direction (spec digest §6.2). */
const SAS_PER_DIRECTION_PER_SET = 2;

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: RejectReason; readonly message: string };

/**
 * The naive form of the admission index (a walk over `sets`): for tests and tools only, the
 * P-CSCF uses its table's O(1) index (RegistrationTable.setWithClientPort).
 */
export function clientPortLookupIn(
  sets: readonly SaSet[],
): (ueIp: string, innerIp: string | undefined, portUc: number) => SaSet | undefined {
  return (ueIp, innerIp, portUc) =>
    sets.find(
      (s) =>
        s.live &&
        s.config.ue.portC === portUc &&
        sameAddress(s.config.ue.ip, ueIp) &&
        sameAddress(s.config.ue.innerIp ?? s.config.ue.ip, innerIp ?? ueIp),
    );
}

/**
 * 33.203 §7.1 rule 3: the pair (UE IP = packet source, UE protected client port) must not be tied
 * to a live SA set already, and the IMPI must stay within six SAs per direction with the new set.
 * DEVIATION (Annex M): behind a NAT many UEs share the public address, so the UE's address is the
 * pair (public, private inner address): UEs of one home with equal port_uc are not refused
 * (RFC 3948 §5.1: peers behind one NAT must not be confused); equal private addresses behind one
 * NAT (two homes behind a carrier NAT) still need different port_uc.
 */
export function admissionCheck(
  ueIp: string,
  portUc: number,
  setWithClientPort: (ueIp: string, innerIp: string | undefined, portUc: number) => Pick<SaSet, 'id' | 'live'> | undefined,
  impiSets: readonly Pick<SaSet, 'live'>[],
  innerIp?: string,
): Verdict {
  const clash = setWithClientPort(ueIp, innerIp, portUc);
  if (clash?.live) {
    const who = innerIp ? `${ueIp} (inner ${innerIp})` : ueIp;
    return {
      ok: false,
      reason: 'admission-port-in-use',
      message: `UE address ${who} with protected client port ${portUc} is already tied to SA set ${clash.id} (33.203 §7.1 rule 3)`,
    };
  }
  let live = 0;
  for (const s of impiSets) if (s.live) live++;
  const n = (live + 1) * SAS_PER_DIRECTION_PER_SET;
  if (n > MAX_SAS_PER_DIRECTION) {
    return {
      ok: false,
      reason: 'admission-too-many-sas',
      message: `a new SA set would give this IMPI ${n} SAs per direction, more than ${MAX_SAS_PER_DIRECTION} (33.203 §7.1 NOTE 13)`,
    };
  }
  return { ok: true };
}

function contactExpires(value: string, headerExpires: number | undefined): number | undefined {
  const na = parseNameAddr(value, 'Contact');
  const e = na.ok ? na.value.params.get('expires') : undefined;
  return typeof e === 'string' && /^[0-9]+$/.test(e) ? Number(e) : headerExpires;
}

function expiresHeader(msg: SipRequest | SipResponse): number | undefined {
  const v = msg.headers.get('Expires');
  return v !== undefined && /^[0-9]+$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

/** RFC 3261 §10.2.2 / 24.229 §5.1.1.6: every Contact expires 0 (or `Contact: *`), or Expires: 0 without Contact params. */
export function isDeregistration(req: SipRequest): boolean {
  const contacts = req.headers.getAll('Contact');
  if (contacts.some(isStarContact)) return true;
  const h = expiresHeader(req);
  if (contacts.length === 0) return h === 0;
  return contacts.every((c) => contactExpires(c, h) === 0);
}

/**
 * The registration time the registrar granted (24.229 §5.4.1.2.2): the expires of the Contact that
 * is `contact` (else of the first Contact), else Expires. Each Contact value and `contact` are parsed
 * once (this runs on every 200 OK to a REGISTER).
 */
export function grantedExpires(res: SipResponse, contact?: string): number | undefined {
  const h = expiresHeader(res);
  const contacts = res.headers.getAll('Contact');
  let first: NameAddrResult | undefined;
  let mine: NameAddrResult | undefined;
  // One Contact (the rule: a UE registers one) is the pick whether or not it is `contact`: no URI to compare.
  let want: ReturnType<typeof contactUri> | null = contact === undefined || contacts.length < 2 ? undefined : null;
  for (const c of contacts) {
    if (isStarContact(c)) continue;
    const na = parseNameAddr(c, 'Contact');
    first ??= na;
    if (want === null) want = contactUri(contact!);
    if (want !== undefined && na.ok && sameContactUri(contactUri(na.value.uri), want)) {
      mine = na;
      break;
    }
  }
  const pick = mine ?? first;
  if (pick === undefined) return h;
  const e = pick.ok ? pick.value.params.get('expires') : undefined;
  return typeof e === 'string' && /^[0-9]+$/.test(e) ? Number(e) : h;
}
type NameAddrResult = ReturnType<typeof parseNameAddr>;

/** The URI of a name-addr value, or undefined when it does not parse. */
export function uriOf(value: string): string | undefined {
  const na = parseNameAddr(value);
  return na.ok ? na.value.uri : undefined;
}

/**
 * A comparable form of a public identity: `sip:user@host` (host lower case, no port or
 * parameters) or `tel:number`. Undefined for what does not parse.
 */
export function impuKey(uri: string): string | undefined {
  // A REGISTER's To is keyed up to three times in a row (the round, the identity check, the event):
  // the last answer is kept (a pure function of the text).
  if (uri === lastImpuUri) return lastImpuKey;
  const k = impuKeyOf(uri);
  lastImpuUri = uri;
  lastImpuKey = k;
  return k;
}
let lastImpuUri: string | undefined;
let lastImpuKey: string | undefined;

/** The impuKey of the To of `req` (its URI from the parse validation kept). */
export function toImpuKey(req: SipRequest): string | undefined {
  return impuKey(toUri(req) ?? '');
}

function impuKeyOf(uri: string): string | undefined {
  const r = parseUri(uri);
  if (!r.ok) return undefined;
  const u = r.value;
  if (u.scheme === 'tel') return `tel:${u.number}`;
  if (u.user === undefined) return `sip:${u.host.toLowerCase()}`;
  const user = unescapeUser(u.user);
  return user === undefined ? undefined : `sip:${user}@${u.host.toLowerCase()}`;
}

/** The user part with its %-escapes undone (RFC 3261 §19.1.4), or undefined when they are not UTF-8 (%FF). */
function unescapeUser(user: string): string | undefined {
  if (!user.includes('%')) return user;
  try {
    return decodeURIComponent(user);
  } catch (e) {
    if (e instanceof URIError) return undefined;
    throw e;
  }
}

/** 24.229 §5.2.6.3: the identity the UE asks for: P-Preferred-Identity, else the From URI. */
export function claimedIdentity(req: SipRequest): string | undefined {
  const ppi = req.headers.get('P-Preferred-Identity');
  return uriOf(ppi ?? req.headers.get('From') ?? '');
}

/** The public identities of a 200 OK to REGISTER (P-Associated-URI, 24.229 §5.4.1.2.2), else the To URI. */
export function associatedIdentities(res: SipResponse, req: SipRequest): string[] {
  const uris = res.headers
    .getAll('P-Associated-URI')
    .map(uriOf)
    .filter((u): u is string => u !== undefined);
  if (uris.length > 0) return uris;
  const to = toUri(req);
  return to === undefined ? [] : [to];
}

/** Two contact URIs name the same binding: same user, host and port (default 5060). */
export function sameContact(a: string, b: string): boolean {
  const x = contactUri(a);
  const y = contactUri(b);
  return x !== undefined && y !== undefined && sameContactUri(x, y);
}

/** A SIP URI parsed for sameContact; undefined for a tel URI or what does not parse. */
function contactUri(uri: string): { readonly user?: string; readonly host: string; readonly port?: number } | undefined {
  const r = parseUri(uri);
  return r.ok && r.value.scheme !== 'tel' ? r.value : undefined;
}

function sameContactUri(
  x: { readonly user?: string; readonly host: string; readonly port?: number } | undefined,
  y: { readonly user?: string; readonly host: string; readonly port?: number },
): boolean {
  return (
    x !== undefined &&
    (x.user ?? '') === (y.user ?? '') &&
    sameAddress(x.host.toLowerCase(), y.host.toLowerCase()) &&
    (x.port ?? 5060) === (y.port ?? 5060)
  );
}

/** Host and port of a SIP URI (for Request-URI fallbacks), or undefined. */
export function hostPortOf(uri: string): Source | undefined {
  const r = parseUri(uri);
  if (!r.ok || r.value.scheme === 'tel') return undefined;
  return { address: r.value.host, port: r.value.port ?? 5060 };
}

/**
 * Issue 10 §3: everything a Security-Client says is checked when it arrives, so that a REGISTER
 * whose SAs could never be installed is answered 494 before the S-CSCF spends a vector on it. Each
 * ipsec-3gpp entry: spi-c and spi-s in 256..2^32-1 (RFC 4303 §2.1: 0 is local, 1..255 reserved),
 * spi-c ≠ spi-s (33.203 §7.1: both are the UE's inbound SAs, one SPI each), port-c and port-s in
 * 1..65535. The same rules SaSet's constructor enforces, so an accepted offer always installs.
 */
export function checkSecurityClient(mechs: readonly SecMechanism[]): Verdict {
  // Every REGISTER runs this over five or so entries: no text or arrays unless one is refused.
  for (let i = 0; i < mechs.length; i++) {
    const m = mechs[i]!;
    if (m.name !== 'ipsec-3gpp') continue;
    const why =
      spiFault('spi-c', m.spiC) ??
      spiFault('spi-s', m.spiS) ??
      (m.spiC === m.spiS ? `spi-c must differ from spi-s (33.203 §7.1: two inbound SAs), both are ${String(m.spiC)}` : undefined) ??
      portFault('port-c', m.portC) ??
      portFault('port-s', m.portS);
    if (why !== undefined) return { ok: false, reason: 'bad-security-client', message: `Security-Client entry ${i + 1}: ${why}` };
  }
  return ACCEPTED;
}
const ACCEPTED: Verdict = Object.freeze({ ok: true });

function spiFault(f: string, v: number | undefined): string | undefined {
  return v === undefined || !Number.isInteger(v) || v < 256 || v > 0xffffffff
    ? `${f} must be 256..4294967295 (0 and 1..255 are reserved, RFC 4303 §2.1), got ${String(v)}`
    : undefined;
}

function portFault(f: string, v: number | undefined): string | undefined {
  return v === undefined || !Number.isInteger(v) || v < 1 || v > 65535 ? `${f} must be 1..65535, got ${String(v)}` : undefined;
}

/**
 * Issue 10 §1: a REGISTER that arrives over an SA set must carry the private identity of the
 * registration owning that set (Authorization username) and one of its public identities (To).
 * 24.229 §5.2.2 (P-CSCF, protected REGISTER; paraphrased, wording not verified verbatim): the
 * P-CSCF checks that the private user identity in the Authorization header field of a REGISTER
 * received over an SA is the one previously challenged or authenticated over it, else 403. 33.203
 * §7.4 binds an SA set to the IMPI it was set up for; the S-CSCF then trusts integrity-protected
 * ="yes" only for that identity (24.229 §5.4.1.2.2: it identifies the user by the To and the
 * Authorization username of the protected REGISTER).
 */
export function checkRegisterIdentity(req: SipRequest, impi: string, impuKeys: readonly string[], setId: string): Verdict {
  const username = impiOf(req);
  const to = toImpuKey(req);
  if (username !== impi) {
    return {
      ok: false,
      reason: 'register-identity-mismatch',
      message: `REGISTER over SA set ${setId} of ${impi} names private identity ${JSON.stringify(username ?? '')} (24.229 §5.2.2, 33.203 §7.4)`,
    };
  }
  if (to === undefined || !impuKeys.includes(to)) {
    return {
      ok: false,
      reason: 'register-identity-mismatch',
      message: `REGISTER over SA set ${setId} of ${impi}: To ${JSON.stringify(req.headers.get('To') ?? '')} is not a public identity of that registration (24.229 §5.2.2)`,
    };
  }
  return { ok: true };
}
