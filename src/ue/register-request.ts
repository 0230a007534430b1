// What the UE puts on the wire and reads back, without I/O: REGISTER (24.229 §5.1.1.2.1,
// §5.1.1.4.1, §5.1.1.5.1, §5.1.1.6; 33.203 §7.2), the Authorization values (RFC 3310; digest §3),
// the AKA challenge of a 401, the bindings of a 200 OK, and requests over the SAs (digest §6.2).
import { randomHex } from '../util/random-hex.ts';
import {
  AKA_ALGORITHMS,
  buildDigestHeader,
  getParam,
  parseDigestHeader,
  parseNonce,
  serializeDigestHeader,
  type AkaAlgorithm,
} from '../aka/index.ts';
import { createRequest, formatHostPort, newBranch, parseNameAddr, parseUri, type SipRequest, type SipResponse } from '../sip/index.ts';

/** The UE's identities from the ISIM: private (IMPI), public (IMPU) and home domain (TS 23.228 §4.3.3). */
export interface UeIdentity {
  readonly impi: string;
  readonly impu: string;
  /** Home domain: Request-URI `sip:DOMAIN`, realm and digest-uri of the first REGISTER. */
  readonly domain: string;
}

/** The Call-ID, From tag and CSeq counter shared by the REGISTERs of one registration. */
export interface RegDialog {
  callId: string;
  fromTag: string;
  cseq: number;
}

/** The user part of the Contact: the IMPU's user (or number), else the IMPI's user. */
export function contactUser(id: UeIdentity): string {
  // A malformed IMPU falls through: it is the network's business to refuse it.
  const r = parseUri(id.impu);
  if (r.ok && r.value.scheme === 'tel') return r.value.number;
  if (r.ok && r.value.scheme !== 'tel' && r.value.user) return r.value.user;
  return id.impi.split('@')[0] ?? id.impi;
}

const sipAddr = (uri: string): string => (uri.startsWith('<') ? uri : `<${uri}>`);

export interface RegisterInput {
  readonly id: UeIdentity;
  readonly dialog: RegDialog;
  /** Via sent-by and Contact: the unprotected port, or port_us when the REGISTER goes over an SA. */
  readonly localIp: string;
  readonly port: number;
  /**
   * The Contact's host when it is not `localIp`: behind a NAT the protected REGISTER carries the
   * UE's public address, the unprotected one its private address (24.229 F.2.1.2.2, pitfall 18).
   */
  readonly contactIp?: string;
  /** Seconds; 0 de-registers (Expires header and Contact expires=0, 24.229 §5.1.1.6). */
  readonly expires: number;
  readonly authorization: string;
  /** The Security-Client value, identical in every REGISTER of one security set-up (Annex H). */
  readonly securityClient: string;
  /** The Security-Server values exactly as received (digest §5.5, pitfall 5). */
  readonly securityVerify?: readonly string[];
  /** contactUser(id), when the caller has it already (a procedure's REGISTERs share it: no URI parse each). */
  readonly contactUser?: string;
}

/** One REGISTER; the caller bumps dialog.cseq before each new one. */
export function buildRegister(i: RegisterInput): SipRequest {
  const hp = formatHostPort(i.localIp, i.port);
  const user = i.contactUser ?? contactUser(i.id);
  const headers: [string, string][] = [
    // 33.203 §7.1 / 17.1 (Kamailio): Contact on every request, with the port the UE receives on.
    ['Contact', `<sip:${user}@${formatHostPort(i.contactIp ?? i.localIp, i.port)}>;expires=${i.expires}`],
    ...(i.expires === 0 ? [['Expires', '0'] as [string, string]] : []),
    ['Authorization', i.authorization],
    ['Security-Client', i.securityClient],
    ...(i.securityVerify ?? []).map((v): [string, string] => ['Security-Verify', v]),
    // 24.229 §5.1.1.2.1: sec-agree in Require and Proxy-Require; path and sec-agree supported.
    ['Require', 'sec-agree'],
    ['Proxy-Require', 'sec-agree'],
    ['Supported', 'path, sec-agree'],
    // No Allow, no User-Agent: optional in a REGISTER, and every octet counts (see below).
  ];
  const req = createRequest({
    method: 'REGISTER',
    uri: `sip:${i.id.domain}`,
    // RFC 3581: rport, so that a NAT'd UE gets the 401 back (digest §15A point 2).
    via: `SIP/2.0/UDP ${hp};branch=${newBranch()};rport`,
    from: `${sipAddr(i.id.impu)};tag=${i.dialog.fromTag}`,
    to: sipAddr(i.id.impu),
    callId: i.dialog.callId,
    cseq: i.dialog.cseq,
    headers,
  });
  // RFC 3261 §18.1.1: a request over 1,300 octets belongs on a congestion-controlled transport. The
  // protected REGISTER with five offers is ~1,450 octets even so; the compact header names (§7.3.3)
  // keep it as small as it honestly gets when it has to stay on UDP (userspace backend).
  req.compact = true;
  return req;
}

/** 24.229 §5.1.1.2.1: the first REGISTER's credentials, with an empty nonce and response. */
export function initialAuthorization(id: UeIdentity): string {
  return serializeDigestHeader(
    buildDigestHeader({ username: id.impi, realm: id.domain, uri: `sip:${id.domain}`, nonce: '', response: '' }),
  );
}

/** The parts of a Digest AKA challenge (RFC 3310) that the UE answers. */
export interface AkaChallenge {
  readonly realm: string;
  readonly nonce: string;
  readonly algorithm: AkaAlgorithm;
  /** The qop the UE answers with (auth preferred), absent when the challenge has none. */
  readonly qop?: 'auth' | 'auth-int';
  readonly opaque?: string;
  readonly rand: Uint8Array;
  readonly autn: Uint8Array;
}

export type ChallengeResult = { readonly ok: true; readonly challenge: AkaChallenge } | { readonly ok: false; readonly reason: string };

/** The first WWW-Authenticate Digest challenge with an AKA algorithm (RFC 3310 §3.1). */
export function parseAkaChallenge(values: readonly string[]): ChallengeResult {
  let why = 'no WWW-Authenticate header';
  for (const v of values) {
    const parsed = parseDigestHeader(v);
    if (!parsed.ok) {
      why = parsed.error.message;
      continue;
    }
    const h = parsed.value;
    if (h.scheme.toLowerCase() !== 'digest') {
      why = `scheme ${h.scheme} is not Digest`;
      continue;
    }
    const alg = AKA_ALGORITHMS.find((a) => a.toLowerCase() === (getParam(h, 'algorithm') ?? 'MD5').toLowerCase());
    if (!alg) {
      why = `algorithm ${getParam(h, 'algorithm') ?? 'MD5'} is not AKAv1-MD5 or AKAv2-MD5`;
      continue;
    }
    const nonce = getParam(h, 'nonce');
    const realm = getParam(h, 'realm');
    if (nonce === undefined || realm === undefined) {
      why = 'the challenge lacks nonce or realm';
      continue;
    }
    const parsedNonce = parseNonce(nonce);
    if (!parsedNonce.ok) {
      why = parsedNonce.error.message;
      continue;
    }
    const { rand, autn } = parsedNonce.value;
    const qops = (getParam(h, 'qop') ?? '').split(',').map((s) => s.trim().toLowerCase());
    const qop = qops.includes('auth') ? 'auth' : qops.includes('auth-int') ? 'auth-int' : undefined;
    const opaque = getParam(h, 'opaque');
    return {
      ok: true,
      challenge: { realm, nonce, algorithm: alg, rand, autn, ...(qop && { qop }), ...(opaque !== undefined && { opaque }) },
    };
  }
  return { ok: false, reason: why };
}

export interface AkaCredentials {
  readonly username: string;
  readonly uri: string;
  readonly challenge: AkaChallenge;
  /** The Digest response (lowercase hex), or '' for a network authentication failure. */
  readonly response: string;
  readonly nc?: string;
  readonly cnonce?: string;
  /** base64 AUTS for a synchronisation failure (RFC 3310 §3.4). */
  readonly auts?: string;
}

/** A fresh cnonce (RFC 2617 §3.2.2): 16 random octets, hex. */
export function newCnonce(): string {
  return randomHex(16);
}

/** The Authorization value answering an AKA challenge (RFC 3310 §3.3/§3.4; RFC 2617 §3.2.2). */
export function akaAuthorization(c: AkaCredentials): string {
  const ch = c.challenge;
  const withQop = ch.qop !== undefined && c.response !== '';
  return serializeDigestHeader(
    buildDigestHeader({
      username: c.username,
      realm: ch.realm,
      uri: c.uri,
      nonce: ch.nonce,
      response: c.response,
      algorithm: ch.algorithm,
      ...(withQop && { qop: ch.qop, nc: c.nc, cnonce: c.cnonce }),
      ...(ch.opaque !== undefined && { opaque: ch.opaque }),
      ...(c.auts !== undefined && { auts: c.auts }),
    }),
  );
}

export interface RegisterOk {
  /** The expiry the registrar granted for our Contact, in seconds. */
  readonly expires: number;
  /** P-Associated-URI (24.229 §5.1.1.2.2): the IMPUs registered implicitly. */
  readonly impus: string[];
  /** Service-Route values in order (RFC 3608): the Route set for later requests. */
  readonly serviceRoute: string[];
}

/** Reads a 2xx to our REGISTER (24.229 §5.1.1.2.2). `contact` is the host and port we registered. */
export function parseRegisterOk(res: SipResponse, contact: { host: string; port: number }, requested: number): RegisterOk {
  let expires: number | undefined;
  for (const v of res.headers.getAll('Contact')) {
    const na = parseNameAddr(v, 'Contact');
    const u = na.ok ? parseUri(na.value.uri) : undefined;
    if (!na.ok || !u?.ok) continue; // a Contact we cannot read is not ours
    if (u.value.scheme === 'tel' || u.value.host.toLowerCase() !== contact.host.toLowerCase() || (u.value.port ?? 5060) !== contact.port)
      continue;
    const e = na.value.params.get('expires');
    if (typeof e === 'string' && /^[0-9]+$/.test(e)) expires = Number(e);
  }
  if (expires === undefined) {
    const h = res.headers.get('Expires');
    if (h !== undefined && /^[0-9]+$/.test(h.trim())) expires = Number(h.trim());
  }
  const impus: string[] = [];
  for (const v of res.headers.getAll('P-Associated-URI')) {
    const na = parseNameAddr(v, 'P-Associated-URI');
    if (na.ok) impus.push(na.value.uri); // a malformed entry is skipped, the others kept
  }
  return { expires: expires ?? requested, impus, serviceRoute: res.headers.getAll('Service-Route') };
}

export interface ProtectedRequestInput {
  readonly method: string;
  readonly target: string;
  readonly id: UeIdentity;
  readonly localIp: string;
  /** port_us: Via sent-by and Contact (digest §6.2: responses come back to port_us over SA2). */
  readonly portUs: number;
  /** The Contact's host when it is not `localIp` (the public address behind a NAT, 24.229 F.2). */
  readonly contactIp?: string;
  readonly pcscfIp: string;
  /** port_ps: the first Route entry (ARCHITECTURE message contract). */
  readonly portPs: number;
  readonly serviceRoute: readonly string[];
  readonly callId: string;
  readonly cseq?: number;
  readonly fromTag: string;
  readonly contentType?: string;
  readonly body?: Uint8Array;
}

/** An out-of-dialog request from port_uc over SA1 (24.229 §5.1.2A.1: Route = P-CSCF, then Service-Route). */
export function buildProtectedRequest(i: ProtectedRequestInput): SipRequest {
  const us = formatHostPort(i.localIp, i.portUs);
  const body = i.body ?? new Uint8Array(0);
  return createRequest({
    method: i.method,
    uri: i.target,
    via: `SIP/2.0/UDP ${us};branch=${newBranch()};rport`,
    from: `${sipAddr(i.id.impu)};tag=${i.fromTag}`,
    to: sipAddr(i.target),
    callId: i.callId,
    cseq: i.cseq ?? 1,
    headers: [
      ['Route', `<sip:${formatHostPort(i.pcscfIp, i.portPs)};lr>`],
      ...i.serviceRoute.map((r): [string, string] => ['Route', r]),
      ['Contact', `<sip:${contactUser(i.id)}@${formatHostPort(i.contactIp ?? i.localIp, i.portUs)}>`],
      // 24.229 §5.1.2A.1.1: the identity the UE wants asserted; the P-CSCF checks it (digest §5.7).
      ['P-Preferred-Identity', sipAddr(i.id.impu)],
      ['User-Agent', 'imsec-ue'],
      ...(body.length > 0 ? [['Content-Type', i.contentType ?? 'text/plain'] as [string, string]] : []),
    ],
    body,
  });
}
