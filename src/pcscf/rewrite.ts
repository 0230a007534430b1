// The P-CSCF's message edits, pure (message in, message changed in place): proxy basics (RFC 3261
// §16.6 Via, Max-Forwards, Route; §16.7 own Via off responses), the REGISTER edits of 24.229
// §5.2.2 (Path, integrity-protected, sec-agree removal), ik/ck removal (33.203 §7.2, pitfall 4)
// and identity assertion (24.229 §5.2.6.3.x, P-Asserted-Identity).
import { getParam, parseDigestHeader, removeParams, serializeDigestHeader, setParam, type DigestHeader } from '../aka/index.ts';
import { removeSecAgreeTag } from '../secagree/index.ts';
import { newBranch } from '../sip/builders.ts';
import type { SipMessage, SipRequest, SipResponse } from '../sip/message.ts';
import { parseNameAddr } from '../sip/name-addr.ts';
import { formatHostPort } from '../sip/uri.ts';
import { fromHex } from '../util/bytes.ts';
import type { InputError } from '../util/errors.ts';
import type { Result } from '../util/result.ts';

/**
 * RFC 3261 §16.6 step 3: decrement Max-Forwards (absent: 70 minus one). Returns false when the
 * request arrived with 0 (§16.3 step 3: answer 483 Too Many Hops).
 */
export function decrementMaxForwards(req: SipRequest): boolean {
  const v = req.headers.get('Max-Forwards');
  const n = v === undefined ? 70 : Number(v);
  if (n <= 0) return false;
  req.headers.set('Max-Forwards', String(n - 1));
  return true;
}

/** RFC 3261 §16.6 step 8 (+ RFC 3581 rport): our Via on top, with a fresh branch. Returns the branch. */
export function pushVia(req: SipRequest, host: string, port: number, protocol: 'udp' | 'tcp' = 'udp'): string {
  const branch = newBranch();
  req.headers.prepend('Via', `SIP/2.0/${protocol.toUpperCase()} ${formatHostPort(host, port)};branch=${branch};rport`);
  return branch;
}

/** RFC 3261 §16.7 step 3: a copy of the response without the topmost Via (ours). */
export function popVia(res: SipResponse): SipResponse {
  const out = res.clone();
  out.headers.removeFirst('Via');
  return out;
}

/**
 * 24.229 §5.2.2 (spec digest §5.2, §5.6): Security-Client / -Server / -Verify removed, `sec-agree`
 * removed from Require and Proxy-Require, each header dropped once empty (24.228 flows).
 */
export function stripSecAgree(req: SipRequest): void {
  for (const h of ['Security-Client', 'Security-Server', 'Security-Verify']) req.headers.remove(h);
  for (const h of ['Require', 'Proxy-Require']) {
    const values = req.headers.raw(h);
    if (values.length === 0) continue;
    const rest = removeSecAgreeTag(values);
    if (rest === undefined) req.headers.remove(h);
    else req.headers.set(h, rest);
  }
}

/**
 * The Digest credentials of one Authorization value. A REGISTER's line is read up to three times in
 * a row (the IMPI for the table, the identity check, markIntegrityProtected): the last text and its
 * parse are kept, so it is parsed once. Equal text parses to an equal (immutable) result.
 */
function parseCredentials(line: string): Result<DigestHeader, InputError> {
  if (line !== lastCredentialsText || lastCredentials === undefined) {
    lastCredentials = parseDigestHeader(line);
    lastCredentialsText = line;
  }
  return lastCredentials;
}
let lastCredentialsText = '';
let lastCredentials: Result<DigestHeader, InputError> | undefined;

/** Separators a credentials line may end with (spaces, empty list elements): never inside a value. */
const TRAILING_SEPARATORS = /[ \t,]+$/;

/**
 * 24.229 §5.2.2: `integrity-protected="yes"` when the REGISTER came over an SA, `"no"` otherwise,
 * on every Digest Authorization value. Values that do not parse are left as they are. A value
 * without the parameter keeps its text and gets it appended (no re-serialization); one where the
 * UE wrote it already has it replaced (a UE cannot claim protection).
 */
export function markIntegrityProtected(req: SipRequest, protectedArrival: boolean): void {
  const lines = req.headers.raw('Authorization');
  if (lines.length === 0) return;
  const flag = protectedArrival ? 'yes' : 'no';
  const out = lines.map((line) => {
    const h = parseCredentials(line);
    if (!h.ok || h.value.scheme.toLowerCase() !== 'digest') return line;
    if (h.value.params.length > 0 && getParam(h.value, 'integrity-protected') === undefined)
      return `${line.replace(TRAILING_SEPARATORS, '')}, integrity-protected="${flag}"`;
    return serializeDigestHeader(setParam(h.value, 'integrity-protected', flag));
  });
  req.headers.set('Authorization', out.length === 1 ? out[0]! : out); // one line (the rule): SipHeaders.set's in-place path
}

/** The IMPI: `username` of the first Digest Authorization value (24.229 §5.1.1.2.1). */
export function impiOf(req: SipRequest): string | undefined {
  for (const line of req.headers.raw('Authorization')) {
    const h = parseCredentials(line);
    const u = h.ok ? getParam(h.value, 'username') : undefined;
    if (u) return u;
  }
  return undefined;
}

/** 24.229 §5.2.2 / RFC 3327: our Path entry on top, so the S-CSCF routes terminating requests through us. */
export function addPath(req: SipRequest, pathUri: string): void {
  req.headers.prepend('Path', `<${pathUri}>`);
}

const MAY_HOLD_KEY = /\b(?:ik|ck)\s*=/i;

/** ik / ck as the S-CSCF writes them (24.229 §5.4.1.2.1): 16 octets in hex. */
const KEY_HEX = /^(?:0[xX])?[0-9a-fA-F]{32}$/;

export interface AkaKeys {
  readonly ik: Uint8Array;
  readonly ck: Uint8Array;
}

/**
 * 33.203 §7.2, spec digest pitfall 4: reads `ik`/`ck` and removes them from every
 * WWW-Authenticate / Proxy-Authenticate value, so the UE never sees them. Returns the keys of the
 * first challenge carrying both (16 octets each), or undefined.
 */
export function takeAkaKeys(res: SipResponse): AkaKeys | undefined {
  let keys: AkaKeys | undefined;
  for (const name of ['WWW-Authenticate', 'Proxy-Authenticate']) {
    const lines = res.headers.raw(name);
    if (lines.length === 0) continue;
    // A parameter named ik or ck follows a separator and precedes "=": text without that pattern
    // anywhere holds no key (the relay of a 401 whose keys register.ts took already skips the parse).
    if (!lines.some((l) => MAY_HOLD_KEY.test(l))) continue;
    const out: string[] = [];
    for (const line of lines) {
      const parsed = parseDigestHeader(line);
      if (!parsed.ok) {
        // Not parseable: it cannot be relayed safely either (it may hold the keys in some form).
        if (MAY_HOLD_KEY.test(line)) continue;
        out.push(line);
        continue;
      }
      const h = parsed.value;
      const ik = getParam(h, 'ik');
      const ck = getParam(h, 'ck');
      // Malformed keys are removed below and not used.
      if (keys === undefined && ik !== undefined && ck !== undefined && KEY_HEX.test(ik) && KEY_HEX.test(ck)) {
        keys = { ik: fromHex(ik, 'ik', 16), ck: fromHex(ck, 'ck', 16) };
      }
      out.push(ik === undefined && ck === undefined ? line : serializeDigestHeader(removeParams(h, 'ik', 'ck')));
    }
    if (out.length === 0) res.headers.remove(name);
    else res.headers.set(name, out);
  }
  return keys;
}

/**
 * Removes the leading Route entries that point at this P-CSCF (RFC 3261 §16.4: "the proxy MUST
 * remove that value"). Returns how many were removed.
 */
/**
 * The copy a proxy forwards (RFC 3261 §16.6 steps 1, 3, 4): the request cloned, Max-Forwards
 * decremented, our own Route entries removed. Undefined when Max-Forwards ran out (the caller
 * answers 483, or drops an ACK).
 */
export function forwardCopy(req: SipRequest, isMine: (uri: string) => boolean): SipRequest | undefined {
  const out = req.clone();
  if (!decrementMaxForwards(out)) return undefined;
  removeOwnRoutes(out, isMine);
  return out;
}

export function removeOwnRoutes(req: SipRequest, isMine: (uri: string) => boolean): number {
  let n = 0;
  for (;;) {
    const top = req.headers.get('Route');
    if (top === undefined) return n;
    const route = parseNameAddr(top, 'Route');
    if (!route.ok || !isMine(route.value.uri)) return n;
    req.headers.removeFirst('Route');
    n++;
  }
}

/**
 * 24.229 §5.2.6.3.x: the P-CSCF asserts the identity it checked: P-Preferred-Identity removed,
 * any P-Asserted-Identity from the UE removed (untrusted), `P-Asserted-Identity: <identity>` added.
 */
export function assertIdentity(req: SipRequest, identity: string): void {
  req.headers.remove('P-Preferred-Identity');
  req.headers.remove('P-Asserted-Identity');
  req.headers.append('P-Asserted-Identity', `<${identity}>`);
}

/** RFC 3261 §20.43: `399 host "text"` (399 = miscellaneous warning), for the reason of a refusal. */
export function warningValue(host: string, text: string): string {
  const clean = text
    .replace(/[\r\n]+/g, ' ')
    .replace(/["\\]/g, (c) => `\\${c}`)
    .slice(0, 240);
  return `399 ${formatHostPort(host)} "${clean}"`;
}

/** The start line of a message, for logs. */
export function startLine(m: SipMessage): string {
  return m.kind === 'request' ? `${m.method} ${m.uri}` : `${m.status} ${m.reason}`;
}
