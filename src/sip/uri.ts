// SIP, SIPS (RFC 3261 §19.1, §25.1 SIP-URI) and tel (RFC 3966) URIs: parse and format.
// The user part, parameters and headers keep their %-escapes as written (compare escaped forms
// only after unescaping, §19.1.4); the host is stored without IPv6 brackets and gets them back on output.
import { err, ok, type Result } from '../util/result.ts';
import { SipParseError, show } from './errors.ts';
import { Params, parseParams } from './params.ts';

/** A SIP or SIPS URI (RFC 3261 §19.1): user, host, port, parameters and headers. */
export interface SipUri {
  readonly scheme: 'sip' | 'sips';
  /** Escaped as written; may contain ';' (RFC 4475 §3.1.1.9) and other user-unreserved chars. */
  readonly user?: string;
  readonly password?: string;
  /** Hostname, IPv4 or IPv6 (no brackets). */
  readonly host: string;
  readonly port?: number;
  readonly params: Params;
  /** `?name=value&…` headers, escaped as written. */
  readonly headers: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

/** A tel URI (RFC 3966), as IMS public identities use them. */
export interface TelUri {
  readonly scheme: 'tel';
  /** The telephone-subscriber up to the first ';' (global "+…" or local number). */
  readonly number: string;
  readonly params: Params;
}

/** A SIP, SIPS or tel URI. */
export type Uri = SipUri | TelUri;

const HOSTNAME_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?$/;
const IPV6_RE = /^[0-9A-Fa-f:.]+$/;
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+\-.]*$/;
const ESCAPE_OK_RE = /^(?:[^%]|%[0-9A-Fa-f]{2})*$/;

function bad(uri: string, why: string): SipParseError {
  return new SipParseError('SIP_BAD_URI', `URI ${show(uri)}: ${why}`);
}

/** The scheme of an absolute URI in lower case, or undefined when there is none. */
export function uriScheme(uri: string): string | undefined {
  const i = uri.indexOf(':');
  if (i <= 0) return undefined;
  const s = uri.slice(0, i);
  return SCHEME_RE.test(s) ? s.toLowerCase() : undefined;
}

/** True when `host` is a host name or IPv4 address as RFC 3261 §25.1 `hostname` / `IPv4address` admit them here (no brackets, no port). */
export function isHostname(host: string): boolean {
  return HOSTNAME_RE.test(host);
}

/** True when `host` is an IPv6 address (it has a colon; brackets already removed). */
export function isIpv6(host: string): boolean {
  return host.includes(':');
}

/**
 * Parses `host [":" port]` where host may be `[ipv6]`; throws SipParseError. A building block of
 * parseUri and parseVia (which return results), not for input on its own.
 */
export function parseHostPort(s: string, where: string): { host: string; port?: number } {
  let host: string;
  let rest: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw bad(where, 'unterminated IPv6 reference');
    host = s.slice(1, close);
    if (!IPV6_RE.test(host) || !host.includes(':')) throw bad(where, `bad IPv6 address ${show(host)}`);
    rest = s.slice(close + 1);
  } else {
    const colon = s.indexOf(':');
    host = colon < 0 ? s : s.slice(0, colon);
    rest = colon < 0 ? '' : s.slice(colon);
    if (!HOSTNAME_RE.test(host)) throw bad(where, `bad host ${show(host)}`);
  }
  if (rest === '') return { host };
  if (!/^:[0-9]{1,5}$/.test(rest)) throw bad(where, `bad port ${show(rest)}`);
  const port = Number(rest.slice(1));
  if (port > 65535) throw bad(where, `port ${port} out of range`);
  return { host, port };
}

/** Formats host and optional port, bracketing an IPv6 address (RFC 3261 §25.1 hostport). */
export function formatHostPort(host: string, port?: number): string {
  const h = isIpv6(host) ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

/** Parses a sip:, sips: or tel: URI from the network; anything else is a SipParseError (SIP_BAD_URI) result. */
export function parseUri(uri: string): Result<Uri, SipParseError> {
  // attempt()'s contract inline: no closure per call (the P-CSCF parses several per REGISTER).
  try {
    return ok(parseUriOrThrow(uri));
  } catch (e) {
    if (e instanceof SipParseError) return err(e);
    throw e;
  }
}

/** parseUri for trusted input (tests, configuration already checked, URIs this process wrote): throws SipParseError. */
export function parseUriOrThrow(uri: string): Uri {
  if (/[\s<>"]/.test(uri)) throw bad(uri, 'contains whitespace, angle brackets or quotes');
  const scheme = uriScheme(uri);
  if (scheme === 'tel') return parseTel(uri);
  if (scheme !== 'sip' && scheme !== 'sips') throw bad(uri, `unsupported scheme ${show(scheme ?? '')}`);
  let rest = uri.slice(scheme.length + 1);

  let user: string | undefined;
  let password: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    if (colon >= 0) password = userinfo.slice(colon + 1);
    if (user.length === 0) throw bad(uri, 'empty user part before "@"');
    if (!ESCAPE_OK_RE.test(userinfo)) throw bad(uri, 'bad %-escape in the user part');
  }

  const q = rest.indexOf('?');
  const headerPart = q < 0 ? undefined : rest.slice(q + 1);
  if (q >= 0) rest = rest.slice(0, q);
  // The host ends at the first ';' outside an IPv6 reference (an IPv6 address has no ';').
  const semi = rest.indexOf(';');
  const hostport = semi < 0 ? rest : rest.slice(0, semi);
  const { host, port } = parseHostPort(hostport, uri);
  const params = parseParams(semi < 0 ? '' : rest.slice(semi), 'uri', 'SIP_BAD_URI', 'URI');
  let headers: SipUri['headers'] = NO_HEADERS;
  if (headerPart !== undefined) {
    const list: { name: string; value: string }[] = [];
    for (const h of headerPart.split('&')) {
      const eq = h.indexOf('=');
      if (eq <= 0) throw bad(uri, `bad URI header ${show(h)}`);
      list.push({ name: h.slice(0, eq), value: h.slice(eq + 1) });
    }
    headers = list;
  }
  // Literals, not spreads of conditional objects (a temporary per field and a slower-shaped result):
  // every From, To, Contact and Request-URI comes through here.
  if (password !== undefined) {
    return user !== undefined
      ? port !== undefined
        ? { scheme, user, password, host, port, params, headers }
        : { scheme, user, password, host, params, headers }
      : port !== undefined
        ? { scheme, password, host, port, params, headers }
        : { scheme, password, host, params, headers };
  }
  return user !== undefined
    ? port !== undefined
      ? { scheme, user, host, port, params, headers }
      : { scheme, user, host, params, headers }
    : port !== undefined
      ? { scheme, host, port, params, headers }
      : { scheme, host, params, headers };
}

/** The headers of a URI without any (shared: a URI's headers are read-only). */
const NO_HEADERS: SipUri['headers'] = Object.freeze([]);

function parseTel(uri: string): TelUri {
  const rest = uri.slice(4);
  const semi = rest.indexOf(';');
  const number = semi < 0 ? rest : rest.slice(0, semi);
  if (!/^\+?[0-9A-Fa-f*#.()\-]+$/.test(number) || !/[0-9A-Fa-f*#]/.test(number)) throw bad(uri, `bad telephone number ${show(number)}`);
  return { scheme: 'tel', number, params: parseParams(semi < 0 ? '' : rest.slice(semi), 'uri', 'SIP_BAD_URI', 'URI') };
}

/** Formats a URI back to text (RFC 3261 §19.1.1, RFC 3966). */
export function formatUri(u: Uri): string {
  if (u.scheme === 'tel') return `tel:${u.number}${u.params.toString()}`;
  const userinfo = u.user === undefined ? '' : `${u.user}${u.password === undefined ? '' : `:${u.password}`}@`;
  const headers = u.headers.length === 0 ? '' : `?${u.headers.map((h) => `${h.name}=${h.value}`).join('&')}`;
  return `${u.scheme}:${userinfo}${formatHostPort(u.host, u.port)}${u.params.toString()}${headers}`;
}
