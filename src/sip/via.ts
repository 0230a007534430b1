// Via (RFC 3261 §20.42, §25.1 via-parm) with the branch (§8.1.1.7), received (§18.2.1) and rport
// (RFC 3581) parameters: parse one value, format, and stamp the top Via of a received request.
// LWS is allowed around '/', ':', ';' and '=' (RFC 4475 §3.1.1.1).
import { err, ok, type Result } from '../util/result.ts';
import { SipParseError, show } from './errors.ts';
import { Params, parseParams, type Param } from './params.ts';
import { isTokenCode, skipWs } from './_syntax.ts';
import { formatHostPort, isHostname, parseHostPort } from './uri.ts';

/** One Via header value (RFC 3261 §20.42): protocol, transport, sent-by and parameters. */
export interface Via {
  /** "SIP/2.0" (LWS removed). */
  readonly protocol: string;
  /** Upper case: UDP, TCP, TLS, SCTP, WS, or any other token. */
  readonly transport: string;
  readonly host: string;
  readonly port?: number;
  readonly params: Params;
}

/** RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this specification MUST always begin with the characters z9hG4bK". */
export const BRANCH_MAGIC_COOKIE = 'z9hG4bK';

/** Parses one Via value from the network: a SipParseError (SIP_BAD_VIA) comes back as a result, nothing is thrown. */
export function parseVia(value: string): Result<Via, SipParseError> {
  // attempt()'s contract inline: no closure per call (the P-CSCF parses several per REGISTER).
  try {
    return ok(parseViaOrThrow(value));
  } catch (e) {
    if (e instanceof SipParseError) return err(e);
    throw e;
  }
}

/** parseVia for trusted input (tests, fixtures, a Via this process wrote): throws SipParseError. */
export function parseViaOrThrow(value: string): Via {
  const s = value;
  let i = skipWs(s, 0);
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS allowed around SLASH.
  let start = i;
  while (i < s.length && isTokenCode(s.charCodeAt(i))) i++;
  if (i === start) throw viaError(value, `expected a token at offset ${start}`);
  const name = s.slice(start, i);
  i = viaSlash(s, skipWs(s, i), value);
  start = i;
  while (i < s.length && isTokenCode(s.charCodeAt(i))) i++;
  if (i === start) throw viaError(value, `expected a token at offset ${start}`);
  const version = s.slice(start, i);
  i = viaSlash(s, skipWs(s, i), value);
  start = i;
  while (i < s.length && isTokenCode(s.charCodeAt(i))) i++;
  if (i === start) throw viaError(value, `expected a token at offset ${start}`);
  const transport = s.slice(start, i).toUpperCase();
  i = skipWs(s, i);
  // sent-by = host [ COLON port ]; collect it without the LWS that may surround the colon.
  let hostEnd = i;
  if (s[i] === '[') {
    hostEnd = s.indexOf(']', i) + 1;
    if (hostEnd === 0) throw viaError(value, 'unterminated IPv6 reference');
  } else {
    while (hostEnd < s.length && s[hostEnd] !== ';' && s[hostEnd] !== ':' && s[hostEnd] !== ' ' && s[hostEnd] !== '\t') hostEnd++;
  }
  const hostText = s.slice(i, hostEnd);
  i = skipWs(s, hostEnd);
  let portStart = -1;
  let portEnd = -1;
  if (s[i] === ':') {
    i = skipWs(s, i + 1);
    portStart = i;
    while (i < s.length && s[i]! >= '0' && s[i]! <= '9') i++;
    portEnd = i;
  }
  // The common sent-by (a host name or IPv4 address, 1-5 digits of port up to 65535) is taken as is;
  // anything else goes through parseHostPort, which judges it and words the error.
  const digits = portEnd - portStart;
  const port = portStart < 0 || digits < 1 || digits > 5 ? undefined : Number(s.slice(portStart, portEnd));
  let hp: { host: string; port?: number };
  if ((portStart < 0 || (port !== undefined && port <= 65535)) && isHostname(hostText)) {
    hp = port === undefined ? { host: hostText } : { host: hostText, port };
  } else {
    const sentBy = portStart < 0 ? hostText : `${hostText}:${s.slice(portStart, portEnd)}`;
    try {
      hp = parseHostPort(sentBy, sentBy);
    } catch (e) {
      throw viaError(value, `bad sent-by ${show(sentBy)}${e instanceof Error ? ` (${e.message})` : ''}`);
    }
  }
  const params = parseParams(i === s.length ? '' : s.slice(i), 'header', 'SIP_BAD_VIA', 'Via');
  const rport = params.get('rport');
  if (typeof rport === 'string' && !validPort(rport)) throw viaError(value, `bad rport ${show(rport)}`);
  const protocol = name === 'SIP' && version === '2.0' ? 'SIP/2.0' : `${name.toUpperCase()}/${version}`;
  // Two literals, two hidden classes (a spread of a conditional object gave each Via a slower shape).
  return hp.port !== undefined
    ? { protocol, transport, host: hp.host, port: hp.port, params }
    : { protocol, transport, host: hp.host, params };
}

function viaError(value: string, why: string): SipParseError {
  return new SipParseError('SIP_BAD_VIA', `Via: ${why} in ${show(value)}`, 'Via');
}

function viaSlash(s: string, i: number, value: string): number {
  if (s.charCodeAt(i) !== 0x2f) throw viaError(value, `expected '/' at offset ${i}`);
  return skipWs(s, i + 1);
}

function validPort(s: string): boolean {
  return /^[0-9]{1,5}$/.test(s) && Number(s) <= 65535;
}

/** Formats a Via header value. */
export function formatVia(v: Via): string {
  return `${v.protocol}/${v.transport} ${formatHostPort(v.host, v.port)}${v.params.toString()}`;
}

/** The branch parameter of a Via (RFC 3261 §8.1.1.7), if any. */
export function viaBranch(v: Via): string | undefined {
  const b = v.params.get('branch');
  return typeof b === 'string' ? b : undefined;
}

/** The default port of a transport (RFC 3261 §18.2.2, §19.1.2): 5061 for TLS, 5060 otherwise. */
export function defaultPort(transport: string): number {
  return transport.toUpperCase() === 'TLS' ? 5061 : 5060;
}

/** `host:port` of sent-by with the default port filled in, host in lower case (for matching). */
export function sentByKey(v: Via): string {
  return formatHostPort(v.host.toLowerCase(), v.port ?? defaultPort(v.transport));
}

/** rport: a number, 'flag' when present without a value (RFC 3581 §3), undefined when absent. */
export function viaRport(v: Via): number | 'flag' | undefined {
  const r = v.params.get('rport');
  if (r === undefined) return undefined;
  return r === null ? 'flag' : Number(r);
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * The server-transport step on a received request's top Via. Returns a new Via; the input is kept.
 * - RFC 3261 §18.2.1: "If the host portion of the "sent-by" parameter contains a domain name, or if it
 *   contains an IP address that differs from the packet source address, the server MUST add a
 *   "received" parameter to that Via header field value."
 * - RFC 3581 §4: if "rport" has no value, the server "MUST set the value of the parameter to the source
 *   port of the request" and "MUST insert a "received" parameter containing the source IP address …
 *   even if it is identical to the value of the "sent-by" component".
 */
export function stampVia(v: Via, source: { readonly address: string; readonly port: number }): Via {
  if (v.params.get('rport') === null) {
    // Written as in the RFC 3581 §4 example: `;received=192.0.2.1;rport=9988` where `;rport` stood.
    // (Every request of ours and of a UE carries `;rport`: this is the common path, a plain loop.)
    const items: Param[] = [];
    for (const p of v.params.items) {
      const name = p.name.toLowerCase();
      if (name === 'received') continue;
      if (name !== 'rport') items.push(p);
      else items.push({ name: 'received', value: source.address }, { name: p.name, value: String(source.port) });
    }
    return withParams(v, new Params(items, true));
  }
  if (sameAddress(v.host, source.address)) return v;
  return withParams(v, v.params.clone().set('received', source.address));
}

/** `v` with other parameters: one of parseVia's two literals (a spread or Object.assign gives each copy a hidden class of its own). */
function withParams(v: Via, params: Params): Via {
  const { protocol, transport, host, port } = v;
  return port !== undefined ? { protocol, transport, host, port, params } : { protocol, transport, host, params };
}
