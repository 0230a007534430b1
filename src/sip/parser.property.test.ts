// Properties of the message codec: parse ∘ serialize is the identity on generated messages; arbitrary
// bytes and mutated valid messages either parse or fail with SipParseError (never another exception),
// and the same holds for validateRequest/validateResponse on whatever parses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseMessageOrThrow } from './parser.ts';
import { serializeMessage } from './serializer.ts';
import { SipParseError } from './errors.ts';
import { SipHeaders, SipRequest, SipResponse, type SipMessage } from './message.ts';
import { validateRequest, validateResponse } from './validate.ts';
import { parseVia } from './via.ts';
import { parseNameAddr } from './name-addr.ts';
import { parseUri } from './uri.ts';
import * as T from './testdata/rfc4475.ts';
import { bytes } from './_test-helpers.ts';

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~";
const token = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 12 });
/** Header value text: printable ASCII, tabs, some UTF-8; no CR/LF; no leading/trailing SP/HTAB. */
const valueChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.constantFrom(' ', '\t') },
  { weight: 1, arbitrary: fc.constantFrom('é', '大', 'ж', '\u{1F600}') },
);
const value = fc.array(valueChar, { maxLength: 40 }).map((a) => a.join('').replace(/^[ \t]+|[ \t]+$/g, ''));
const KNOWN = [
  'Via',
  'From',
  'To',
  'Call-ID',
  'CSeq',
  'Contact',
  'Security-Client',
  'Authorization',
  'WWW-Authenticate',
  'Supported',
  'Path',
  'Subject',
  'Date',
];
const headerName = fc.oneof(
  fc.constantFrom(...KNOWN),
  token.map((t) => `X-${t}`),
);
const headers = fc.array(fc.tuple(headerName, value), { maxLength: 12 }).map((l) => new SipHeaders(l));
const body = fc.uint8Array({ maxLength: 300 }).map((b) => new Uint8Array(b));

const requestArb = fc
  .record({ method: token, uri: token.map((t) => `sip:${t}@example.com`), headers, body })
  .map((r) => new SipRequest(r.method, r.uri, r.headers, r.body));
const responseArb = fc
  .record({ status: fc.integer({ min: 100, max: 699 }), reason: value, headers, body })
  .map((r) => new SipResponse(r.status, r.reason, r.headers, r.body));
const messageArb: fc.Arbitrary<SipMessage> = fc.oneof(requestArb, responseArb);

test('parseMessageOrThrow(serializeMessage(msg)) equals msg for generated messages', () => {
  fc.assert(
    fc.property(messageArb, (m) => {
      assert.deepEqual(parseMessageOrThrow(serializeMessage(m)), m);
    }),
    { numRuns: 500 },
  );
});

/** Parse, then run every validator and codec a receiver would: only SipParseError may escape. */
function receive(input: Uint8Array): void {
  try {
    const m = parseMessageOrThrow(input);
    if (m instanceof SipRequest) validateRequest(m);
    else validateResponse(m);
    // The header codecs return results: they must not throw at all.
    for (const v of m.headers.getAll('Via')) parseVia(v);
    for (const v of m.headers.getAll('Contact')) parseNameAddr(v);
    if (m instanceof SipRequest) parseUri(m.uri);
    serializeMessage(m);
  } catch (e) {
    if (!(e instanceof SipParseError)) throw e;
  }
}

test('arbitrary bytes either parse or throw SipParseError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => receive(b)),
    { numRuns: 1000 },
  );
});

test('arbitrary SIP-like text either parses or throws SipParseError', () => {
  const piece = fc.constantFrom(
    'INVITE ',
    'SIP/2.0',
    ' ',
    '\r\n',
    '\n',
    ':',
    ';',
    ',',
    '"',
    '\\',
    '<',
    '>',
    '[',
    ']',
    'sip:',
    '@',
    'Via',
    'l',
    'Content-Length',
    '0',
    '9',
    '-',
    '\t',
    'branch=',
    '=',
  );
  fc.assert(
    fc.property(fc.array(fc.oneof(piece, fc.string({ maxLength: 4 })), { maxLength: 80 }), (parts) => receive(bytes(parts.join('')))),
    { numRuns: 1000 },
  );
});

const SEEDS = [T.WSINV, T.INTMETH, T.ESC01, T.LONGREQ, T.TRANSPORTS, T.UNREASON, ...T.INVALID.map((c) => c.text)].map(bytes);
type Mutation =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'insert'; at: number; data: Uint8Array }
  | { kind: 'dup'; at: number; len: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    byte: fc.constantFrom(0, 9, 10, 13, 32, 34, 44, 58, 59, 60, 62, 92, 0xff, 0x80),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
);
function mutate(src: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = [...src];
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.kind === 'set') b[at] = m.byte;
    else if (m.kind === 'delete') b.splice(at, m.len);
    else if (m.kind === 'insert') b.splice(at, 0, ...m.data);
    else b.splice(at, 0, ...b.slice(at, at + m.len));
  }
  return new Uint8Array(b);
}

test('mutated valid and torture messages either parse or throw SipParseError', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: SEEDS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), (i, ms) =>
      receive(mutate(SEEDS[i]!, ms)),
    ),
    { numRuns: 1000 },
  );
});
