// name-addr / addr-spec with header parameters (RFC 3261 §20.10, §20.20, §20.39, §25.1): the shape of
// From, To, Contact, Route, Record-Route, Path, Service-Route, P-Associated-URI. One value at a time:
// split lists first with SipHeaders.getAll. In the addr-spec form (no <>) the parameters after the URI
// belong to the header, not the URI (§20.10).
import { err, ok, type Result } from '../util/result.ts';
import { SipParseError, show } from './errors.ts';
import { Params, parseParams } from './params.ts';
import { isTokenChar, isWs, quote, scanQuoted, skipWs, trimWs, unquote } from './_syntax.ts';
import { uriScheme } from './uri.ts';

/** A name-addr or addr-spec with header parameters (RFC 3261 §20.10, §25.1): From, To, Contact, Path, Service-Route. */
export interface NameAddr {
  /** The display name without quotes or escapes; absent when none was written. */
  readonly displayName?: string;
  /** The URI as written between < and > (parse it with parseUri when it is sip/sips/tel). */
  readonly uri: string;
  readonly params: Params;
}

/**
 * Parses one name-addr / addr-spec value from the network (`header` names it in the error): a
 * SipParseError (SIP_BAD_NAME_ADDR, or SIP_BAD_PARAMS from its parameters) comes back as a result.
 */
export function parseNameAddr(value: string, header = 'name-addr'): Result<NameAddr, SipParseError> {
  // attempt()'s contract inline: no closure per call (the P-CSCF parses several per REGISTER).
  try {
    return ok(parseNameAddrOrThrow(value, header));
  } catch (e) {
    if (e instanceof SipParseError) return err(e);
    throw e;
  }
}

/** parseNameAddr for trusted input (tests, fixtures, values this process wrote): throws SipParseError. */
export function parseNameAddrOrThrow(value: string, header = 'name-addr'): NameAddr {
  const s = value;
  let i = skipWs(s, 0);
  let displayName: string | undefined;

  if (s[i] === '"') {
    const end = scanQuoted(s, i);
    if (end < 0) throw nameAddrError(value, header, 'unterminated quoted display name');
    displayName = unquote(s.slice(i, end));
    i = skipWs(s, end);
    if (s[i] !== '<') throw nameAddrError(value, header, "expected '<' after the display name");
  } else if (s.indexOf('<', i) >= 0) {
    const lt = s.indexOf('<', i);
    const words = trimWs(s.slice(i, lt));
    // display-name = *(token LWS) / quoted-string; UTF-8 is tolerated unquoted, commas are not (RFC 4475 §3.1.2.15).
    for (const ch of words)
      if (!isTokenChar(ch) && !isWs(ch) && ch.charCodeAt(0) < 0x80)
        throw nameAddrError(value, header, `character ${show(ch)} in an unquoted display name`);
    if (words.length > 0) displayName = words;
    i = lt;
  } else {
    // addr-spec: the URI runs to the first ';' or LWS; what follows are header params.
    const start = i;
    while (i < s.length && s[i] !== ';' && !isWs(s[i])) i++;
    const uri = s.slice(start, i);
    checkUri(uri, value, header);
    return { uri, params: parseParams(s.slice(i), 'header', 'SIP_BAD_NAME_ADDR', header) };
  }

  const close = s.indexOf('>', i);
  if (close < 0) throw nameAddrError(value, header, "missing '>'");
  const uri = s.slice(i + 1, close);
  // RFC 4475 §3.1.2.14: no LWS inside the angle brackets.
  checkUri(uri, value, header);
  const params = parseParams(s.slice(close + 1), 'header', 'SIP_BAD_NAME_ADDR', header);
  return displayName !== undefined ? { uri, params, displayName } : { uri, params };
}

// Errors are made by a function, not a closure per parse: every From, To and Contact comes through here.
function nameAddrError(value: string, header: string, why: string): SipParseError {
  return new SipParseError('SIP_BAD_NAME_ADDR', `${header}: ${why} in ${show(value)}`, header);
}

function checkUri(uri: string, value: string, header: string): void {
  if (uri.length === 0) throw nameAddrError(value, header, 'empty URI');
  if (/[\s<>]/.test(uri)) throw nameAddrError(value, header, 'whitespace or angle bracket inside the URI');
  if (uriScheme(uri) === undefined) throw nameAddrError(value, header, `URI without a scheme ${show(uri)}`);
}

/** Always writes the bracketed form, quoting the display name: `"Alice" <sip:a@b>;tag=x`. */
export function formatNameAddr(na: NameAddr): string {
  const name = na.displayName === undefined ? '' : `${quote(na.displayName)} `;
  return `${name}<${na.uri}>${na.params.toString()}`;
}

/** The `tag` parameter (RFC 3261 §19.3), or undefined. */
export function tagOf(na: NameAddr): string | undefined {
  const t = na.params.get('tag');
  return typeof t === 'string' ? t : undefined;
}

/** A Contact value of `*` (RFC 3261 §10.2.2, remove all bindings). */
export function isStarContact(value: string): boolean {
  return trimWs(value) === '*';
}
