// Requests the S-CSCF routes (RFC 3261 §16 as a stateful proxy, 24.229 §5.4.3): its own Route entry
// popped (§16.4), Max-Forwards checked (§16.3), and towards a registered UE the Request-URI set to the
// Contact and the Route set to the stored Path (RFC 3327 §5.4). Pure builders; scscf.ts sends.
import {
  createRequest,
  formatHostPort,
  newBranch,
  newCallId,
  newTag,
  parseNameAddr,
  parseUri,
  type Endpoint,
  type SipRequest,
} from '../sip/index.ts';
import type { Binding } from './bindings.ts';

/** The S-CSCF's own address as it appears in Via, Service-Route and Route. */
export interface Self {
  readonly host: string;
  readonly port: number;
}

/** Where a Route/Path URI points: host and port (5060 when absent, RFC 3263 without DNS). */
export function hopOf(value: string): Endpoint | undefined {
  const na = parseNameAddr(value, 'Route');
  const r = na.ok ? parseUri(na.value.uri) : undefined;
  if (!r?.ok || r.value.scheme === 'tel') return undefined;
  const u = r.value;
  return { address: u.host, port: u.port ?? (u.scheme === 'sips' ? 5061 : 5060) };
}

/** RFC 3261 §16.4: "If the first value in the Route header field indicates this proxy, the proxy MUST remove that value". */
export function popOwnRoutes(req: SipRequest, self: Self): void {
  for (;;) {
    const top = req.headers.get('Route');
    const hop = top === undefined ? undefined : hopOf(top);
    if (!hop || hop.address.toLowerCase() !== self.host.toLowerCase() || hop.port !== self.port) return;
    req.headers.removeFirst('Route');
  }
}

/** The first hop towards a binding: the first Path entry, or the Contact itself when there is no Path. */
export function firstHop(b: Pick<Binding, 'path' | 'contact'>): Endpoint | undefined {
  return hopOf(b.path[0] ?? `<${b.contact}>`);
}

/** The identities in P-Asserted-Identity (RFC 3325), URIs only; unparseable values are skipped. */
export function assertedIdentities(req: SipRequest): string[] {
  const out: string[] = [];
  for (const v of req.headers.getAll('P-Asserted-Identity')) {
    const na = parseNameAddr(v, 'P-Asserted-Identity');
    if (na.ok) out.push(na.value.uri); // else ignored: a P-CSCF we trust writes them well
  }
  return out;
}

/** The URI of the To header, or undefined. */
export function toUri(req: SipRequest): string | undefined {
  const na = parseNameAddr(req.headers.get('To') ?? '', 'To');
  return na.ok ? na.value.uri : undefined;
}

/** Max-Forwards after this hop, or 'exhausted' (§16.3 step 3: 483 Too Many Hops). Absent counts as 70. */
export function nextMaxForwards(req: SipRequest): number | 'exhausted' {
  const v = req.headers.get('Max-Forwards');
  const n = v === undefined ? 70 : Number(v.trim());
  if (!Number.isInteger(n)) return 69; // the transaction layer rejects such requests already
  return n <= 0 ? 'exhausted' : n - 1;
}

function via(self: Self): string {
  return `SIP/2.0/UDP ${formatHostPort(self.host, self.port)};branch=${newBranch()};rport`;
}

/**
 * The request forwarded to a registered UE (§16.6): a copy with Request-URI = Contact, the Route set
 * replaced by the Path (the terminating leg starts at the UE's P-CSCF), our Via on top and
 * Max-Forwards decremented. `req` must already have lost its own Route entries.
 */
export function proxiedRequest(req: SipRequest, b: Binding, self: Self, maxForwards: number): SipRequest {
  const out = req.clone();
  out.uri = b.contact;
  out.headers.remove('Route');
  // Route goes after the mandatory headers; Path values keep their order (first hop first).
  for (const p of b.path) out.headers.append('Route', p);
  out.headers.set('Max-Forwards', String(maxForwards));
  out.headers.prepend('Via', via(self));
  return out;
}

export interface NetworkRequestOptions {
  readonly method?: string;
  readonly domain: string;
  readonly self: Self;
  readonly binding: Binding;
  readonly body: Uint8Array;
  readonly contentType: string;
  /** From URI; default sip:network@DOMAIN. */
  readonly from?: string;
}

/**
 * A network-initiated request towards a registered IMPU (24.229 §5.4.5-style): Request-URI = the
 * registered Contact, `Route: <Path URI>` from the binding, From the network with a tag, To the IMPU,
 * a fresh Call-ID, CSeq 1.
 */
export function networkRequest(o: NetworkRequestOptions): SipRequest {
  const method = o.method ?? 'MESSAGE';
  return createRequest({
    method,
    uri: o.binding.contact,
    via: via(o.self),
    from: `<${o.from ?? `sip:network@${o.domain}`}>;tag=${newTag()}`,
    to: `<${o.binding.impu}>`,
    callId: newCallId(o.self.host),
    cseq: 1,
    headers: [...o.binding.path.map((p): [string, string] => ['Route', p]), ['Content-Type', o.contentType]],
    body: o.body,
  });
}
