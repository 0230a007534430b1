// Parses one SIP message from bytes (RFC 3261 §7; datagram rules of §18.3). Order: size limit →
// skip leading CRLFs → split head/body at the first empty line → UTF-8 head → start line → header
// lines (unfolding LWS continuations, §7.3.1) → Content-Length → body. Tolerant in (LF-only line ends,
// folding, spacing); every failure is a SipParseError with a code and a reason, nothing else is thrown.
import { SipParseError, show } from './errors.ts';
import {
  SipRequest,
  SipResponse,
  canonicalHeaderName,
  headersFromLines,
  type HeaderField,
  type SipHeaders,
  type SipMessage,
} from './message.ts';
import { isToken, isWs, trimWs } from './_syntax.ts';
import { uriScheme } from './uri.ts';
import { err, ok, type Result } from '../util/result.ts';

/** Size limits the parser enforces before it allocates (RFC 3261 leaves them to the implementation; RFC 4475 torture tests need them). */
export interface ParseLimits {
  /** Whole message, head and body (default 64 KiB). */
  readonly maxMessageSize: number;
  /** Header lines after unfolding (default 256). */
  readonly maxHeaders: number;
  /** One header line after unfolding, name included (default 16 KiB). */
  readonly maxHeaderLineLength: number;
}

/** The limits `parseMessage` applies unless given others. */
export const DEFAULT_LIMITS: ParseLimits = { maxMessageSize: 64 * 1024, maxHeaders: 256, maxHeaderLineLength: 16 * 1024 };

const LF = 0x0a;
const CR = 0x0d;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A datagram or stream chunk made only of CR/LF: a keep-alive (RFC 5626 §3.5.1), not a message. */
export function isKeepAlive(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  for (const b of bytes) if (b !== CR && b !== LF) return false;
  return true;
}

/** Index of the first byte of the body: after the first empty line (CRLF CRLF, or LF LF); -1 if none. */
export function findHeadEnd(bytes: Uint8Array, from = 0): number {
  for (let i = from; i < bytes.length; i++) {
    if (bytes[i] !== LF) continue;
    if (bytes[i + 1] === LF) return i + 2;
    if (bytes[i + 1] === CR && bytes[i + 2] === LF) return i + 3;
  }
  return -1;
}

/** Characters examined while splitting a head (the linear-cost test reads it; nothing else does). */
export interface SplitStats {
  scanned: number;
}

/**
 * Splits a head into logical lines, unfolding continuation lines (§7.3.1: folded LWS → one SP).
 * Linear in the head's length whatever the limits (issue 10 §5): each physical line is scanned and
 * trimmed once, and a folded header's pieces are joined once, when the next header starts.
 */
export function splitHeadLines(head: string, limits: ParseLimits = DEFAULT_LIMITS, stats?: SplitStats): string[] {
  return (stats === undefined && plainLines(head, limits.maxHeaderLineLength)) || unfoldLines(head, limits, stats);
}

/**
 * The common head, with nothing to unfold, no bare CR and no line over the limit, split in one pass
 * (no intermediate arrays); undefined sends anything else to unfoldLines, which also words the errors.
 */
function plainLines(head: string, maxLine: number): string[] | undefined {
  const lines: string[] = [];
  let cr = head.indexOf('\r');
  for (let s = 0; ;) {
    let nl = head.indexOf('\n', s);
    const last = nl < 0;
    if (last) nl = head.length;
    let e = nl;
    if (cr >= 0 && cr < nl) {
      if (cr !== nl - 1) return undefined; // a bare CR inside the line
      e = cr;
      cr = head.indexOf('\r', nl);
    }
    if (e - s > maxLine) return undefined;
    const c = head.charCodeAt(s);
    if (lines.length > 0 && (c === 0x20 || c === 0x09)) return undefined; // a continuation line
    lines.push(head.slice(s, e));
    if (last) break;
    s = nl + 1;
  }
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function unfoldLines(head: string, limits: ParseLimits, stats?: SplitStats): string[] {
  const physical = head.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (physical.length > 0 && physical[physical.length - 1] === '') physical.pop();
  const lines: string[] = [];
  // The logical line being assembled: its pieces (already trimmed but the first) and their length.
  let pieces: string[] = [];
  let length = 0;
  const flush = (): void => {
    if (pieces.length === 0) return;
    lines.push(pieces.length === 1 ? pieces[0]! : pieces.join(' '));
    if (stats && pieces.length > 1) stats.scanned += length;
    pieces = [];
  };
  for (const [n, line] of physical.entries()) {
    if (stats) stats.scanned += line.length;
    if (line.includes('\r')) throw new SipParseError('SIP_BAD_HEADER', `line ${n + 1}: bare CR inside a line`);
    if (line.length > limits.maxHeaderLineLength)
      throw new SipParseError('SIP_TOO_LARGE', `line ${n + 1}: ${line.length} characters, limit ${limits.maxHeaderLineLength}`);
    if (n > 0 && isWs(line[0])) {
      if (lines.length + (pieces.length > 0 ? 1 : 0) < 2)
        throw new SipParseError('SIP_BAD_HEADER', `line ${n + 1}: continuation line before any header`);
      if (pieces.length === 1) {
        pieces[0] = trimWs(pieces[0]!);
        length = pieces[0].length;
      }
      const piece = trimWs(line);
      if (stats) stats.scanned += line.length;
      if (piece === '') continue; // a blank continuation line is LWS only: nothing to join
      length += 1 + piece.length;
      if (length > limits.maxHeaderLineLength)
        throw new SipParseError('SIP_TOO_LARGE', `line ${n + 1}: folded header longer than ${limits.maxHeaderLineLength}`);
      pieces.push(piece);
    } else {
      flush();
      pieces = [line];
      length = line.length;
    }
  }
  flush();
  return lines;
}

/** Parses `Name : value` (HCOLON allows SP/HTAB before the colon). */
export function parseHeaderLine(text: string): HeaderField {
  // Values are kept long after the message (an IMPU, a Contact, a Service-Route in a registration):
  // as slices of the decoded head they would keep the whole head alive (1-2 KB per registration).
  // A cons string sliced is flattened into a copy of this line only (V8; a memcpy, no decode).
  const line = text.length > 12 ? (' ' + text).slice(1) : text;
  const colon = line.indexOf(':');
  if (colon < 0) throw new SipParseError('SIP_BAD_HEADER', `header line without ':': ${show(line)}`);
  const name = trimWs(line.slice(0, colon));
  if (!isToken(name) || isWs(line[0])) throw new SipParseError('SIP_BAD_HEADER', `bad header name ${show(line.slice(0, colon))}`);
  return { name: canonicalHeaderName(name), value: trimWs(line.slice(colon + 1)) };
}

const VERSION_RE = /^SIP\/[0-9]+\.[0-9]+$/i;

type StartLine =
  { kind: 'request'; method: string; uri: string; version: string } | { kind: 'response'; status: number; reason: string; version: string };

/** The message as far as it parsed, for an error's `partial` (a function: no closure made per message). */
function partialMessage(startLine: StartLine, headers: SipHeaders): SipMessage {
  return startLine.kind === 'request'
    ? new SipRequest(startLine.method, startLine.uri, headers)
    : new SipResponse(startLine.status, startLine.reason, headers);
}

function parseStartLine(line: string): StartLine {
  if (/^SIP\//i.test(line)) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; a missing/empty reason is tolerated.
    const m = /^(\S+) +([0-9]+)(?:[ \t](.*))?$/.exec(line);
    if (!m) throw startLineError(line, 'expected "SIP/2.0 <code> <reason>"');
    const [, version, code, reason] = m as unknown as [string, string, string, string | undefined];
    if (!VERSION_RE.test(version)) throw startLineError(line, 'bad SIP-Version');
    if (code.length !== 3 || Number(code) < 100) throw startLineError(line, `status code ${show(code)} is not 3 digits in 100..699`);
    const status = Number(code);
    if (status > 699) throw startLineError(line, `status code ${status} above 699`);
    return { kind: 'response', status, reason: trimWs(reason ?? ''), version };
  }
  // Request-Line = Method SP Request-URI SP SIP-Version. Runs of SP and trailing SP are tolerated
  // (RFC 4475 §3.1.2.9/§3.1.2.10 allow a liberal receiver); LWS inside the URI is not (§3.1.2.8).
  // Nearly every line has exactly two single spaces: cut there, without the split/filter arrays.
  const a = line.indexOf(' ');
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
  let parts: string[];
  if (a > 0 && b > a + 1 && b < line.length - 1 && line.indexOf(' ', b + 1) < 0)
    parts = [line.slice(0, a), line.slice(a + 1, b), line.slice(b + 1)];
  else parts = line.split(' ').filter((p) => p.length > 0);
  if (parts.length !== 3) throw startLineError(line, `expected 3 space-separated parts, got ${parts.length}`);
  const [method, uri, version] = parts as [string, string, string];
  if (!isToken(method)) throw startLineError(line, `method ${show(method)} is not a token`);
  if (uriScheme(uri) === undefined || /[\x00-\x1f\x7f<>"]/.test(uri))
    throw startLineError(line, `Request-URI ${show(uri)} is not an absolute URI`);
  if (!VERSION_RE.test(version)) throw startLineError(line, `bad SIP-Version ${show(version)}`);
  return { kind: 'request', method, uri, version };
}

function startLineError(line: string, why: string): SipParseError {
  return new SipParseError('SIP_BAD_START_LINE', `start line ${show(line)}: ${why}`);
}

/**
 * Parses one message from a datagram (or one framed stream message). Without Content-Length the body
 * is the rest of the bytes; RFC 3261 §18.3: "Any additional bytes in the transport packet beyond the
 * end of the body MUST be discarded", and a packet ending before the body is an error (SIP_TRUNCATED).
 * The returned headers hold no Content-Length. Bad input is a result with a SipParseError (its
 * `partial` holds the message as far as it parsed, enough for a 400/505); nothing is thrown.
 */
export function parseMessage(bytes: Uint8Array, limits: Partial<ParseLimits> = DEFAULT_LIMITS): Result<SipMessage, SipParseError> {
  // attempt()'s contract inline: no closure per call (the P-CSCF parses several per REGISTER).
  try {
    return ok(parseMessageOrThrow(bytes, limits));
  } catch (e) {
    if (e instanceof SipParseError) return err(e);
    throw e;
  }
}

/** parseMessage for trusted input (tests, fixtures, messages this process built): throws SipParseError. */
export function parseMessageOrThrow(bytes: Uint8Array, limits: Partial<ParseLimits> = DEFAULT_LIMITS): SipMessage {
  const lim: ParseLimits = limits === DEFAULT_LIMITS ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...limits };
  if (bytes.length > lim.maxMessageSize)
    throw new SipParseError('SIP_TOO_LARGE', `message of ${bytes.length} octets, limit ${lim.maxMessageSize}`);
  // RFC 3261 §7.5: "Implementations processing SIP messages over stream-oriented transports MUST ignore
  // any CRLF appearing before the start-line"; done for datagrams too.
  let start = 0;
  while (start < bytes.length && (bytes[start] === CR || bytes[start] === LF)) start++;
  if (start === bytes.length) throw new SipParseError('SIP_BAD_START_LINE', 'empty message');
  const end = findHeadEnd(bytes, start);
  const headEnd = end < 0 ? bytes.length : end;
  let head: string;
  try {
    head = utf8.decode(bytes.subarray(start, headEnd));
  } catch {
    throw new SipParseError('SIP_BAD_HEADER', 'start line or headers are not valid UTF-8');
  }
  const lines = splitHeadLines(head, lim);
  if (isWs(head[0])) throw new SipParseError('SIP_BAD_START_LINE', 'start line begins with whitespace');
  const startLine = parseStartLine(lines[0] ?? '');
  if (lines.length - 1 > lim.maxHeaders)
    throw new SipParseError('SIP_TOO_LARGE', `${lines.length - 1} header lines, limit ${lim.maxHeaders}`);
  const lengths: string[] = [];
  const headers = headersFromLines(lines, 1, lengths);

  if (startLine.version.toUpperCase() !== 'SIP/2.0') {
    throw new SipParseError('SIP_BAD_VERSION', `unsupported ${show(startLine.version)}`, undefined, partialMessage(startLine, headers));
  }
  const available = bytes.length - headEnd;
  let bodyLength = available;
  if (lengths.length > 0) {
    const v = lengths[0]!;
    if (lengths.length > 1) {
      const values = new Set(lengths);
      if (values.size > 1)
        throw new SipParseError(
          'SIP_BAD_CONTENT_LENGTH',
          `${values.size} different Content-Length values`,
          'Content-Length',
          partialMessage(startLine, headers),
        );
    }
    if (!/^[0-9]+$/.test(v))
      throw new SipParseError(
        'SIP_BAD_CONTENT_LENGTH',
        `Content-Length ${show(v)} is not a number`,
        'Content-Length',
        partialMessage(startLine, headers),
      );
    bodyLength = v.length > 10 ? Infinity : Number(v);
    if (bodyLength > available || (end < 0 && bodyLength > 0)) {
      throw new SipParseError(
        'SIP_TRUNCATED',
        `Content-Length ${v} but ${end < 0 ? 0 : available} octets of body`,
        'Content-Length',
        partialMessage(startLine, headers),
      );
    }
  }
  const body = bodyLength === 0 ? undefined : new Uint8Array(bytes.subarray(headEnd, headEnd + bodyLength));
  return startLine.kind === 'request'
    ? new SipRequest(startLine.method, startLine.uri, headers, body)
    : new SipResponse(startLine.status, startLine.reason, headers, body);
}
