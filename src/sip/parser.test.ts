// Parsing and serialising whole messages: RFC 3261 §24 examples, an IMS REGISTER flow (TS 33.203 §6.1,
// spec digest §5), tolerant input forms and the typed errors of each limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseMessage, parseMessageOrThrow, splitHeadLines, type SplitStats } from './parser.ts';
import { serializeMessage } from './serializer.ts';
import { SipParseError } from './errors.ts';
import { SipRequest, SipResponse, type SipMessage } from './message.ts';
import { parseViaOrThrow, viaBranch, viaRport } from './via.ts';
import { parseNameAddrOrThrow } from './name-addr.ts';
import { validateRequest } from './validate.ts';
import { crlf, bytes } from './_test-helpers.ts';

function req(m: SipMessage): SipRequest {
  assert.ok(m instanceof SipRequest);
  return m;
}
function res(m: SipMessage): SipResponse {
  assert.ok(m instanceof SipResponse);
  return m;
}
function code(c: string) {
  return (e: unknown) => e instanceof SipParseError && e.code === c;
}

// RFC 3261 §24.1, the REGISTER of Bob and its 200 OK (the 200 folds its Via).
const RFC3261_REGISTER = `REGISTER sip:registrar.biloxi.com SIP/2.0
Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>
From: Bob <sip:bob@biloxi.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.0.2.4>
Expires: 7200
Content-Length: 0

`;

const RFC3261_REGISTER_200 = `SIP/2.0 200 OK
Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7
 ;received=192.0.2.4
To: Bob <sip:bob@biloxi.com>;tag=2493k59kd
From: Bob <sip:bob@biloxi.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.0.2.4>
Expires: 7200
Content-Length: 0

`;

const SDP =
  'v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com\r\ns=-\r\nc=IN IP4 pc33.atlanta.com\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

// RFC 3261 §24.2 F1 (with an SDP of our own, its length in Content-Length).
const RFC3261_INVITE = `INVITE sip:bob@biloxi.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.com>
Content-Type: application/sdp
Content-Length: ${SDP.length}

`;

test('parses the RFC 3261 §24.1 REGISTER', () => {
  const m = req(parseMessageOrThrow(crlf(RFC3261_REGISTER)));
  assert.equal(m.method, 'REGISTER');
  assert.equal(m.uri, 'sip:registrar.biloxi.com');
  assert.equal(viaBranch(parseViaOrThrow(m.headers.get('Via')!)), 'z9hG4bKnashds7');
  assert.equal(parseNameAddrOrThrow(m.headers.get('From')!).params.get('tag'), '456248');
  assert.equal(m.headers.get('Expires'), '7200');
  assert.equal(m.headers.has('Content-Length'), false, 'Content-Length lives in body.length');
  assert.equal(m.body.length, 0);
  assert.ok(validateRequest(m).ok);
});

test('parses the RFC 3261 §24.1 200 OK whose Via is folded onto two lines', () => {
  const m = res(parseMessageOrThrow(crlf(RFC3261_REGISTER_200)));
  assert.equal(m.status, 200);
  assert.equal(m.reason, 'OK');
  const via = parseViaOrThrow(m.headers.get('Via')!);
  assert.equal(via.params.get('received'), '192.0.2.4');
  assert.equal(via.port, 5060);
});

test('parses the RFC 3261 §24.2 INVITE and cuts the body at Content-Length', () => {
  const m = req(parseMessageOrThrow(new Uint8Array([...crlf(RFC3261_INVITE), ...bytes(SDP), ...bytes('trailing junk')])));
  assert.equal(m.method, 'INVITE');
  assert.equal(Buffer.from(m.body).toString(), SDP);
  assert.equal(m.headers.get('Content-Type'), 'application/sdp');
});

// An IMS initial REGISTER as the spec digest §5.1 describes it (24.229 §5.1.1.2.1).
const IMS_REGISTER = `REGISTER sip:ims.mnc001.mcc001.3gppnetwork.org SIP/2.0
Via: SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bK4f3c2a;rport
Max-Forwards: 70
From: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=8a1f
To: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>
Call-ID: 3c26700857bc-1@2001:db8::10
CSeq: 1 REGISTER
Contact: <sip:001010000000001@[2001:db8::10]:5060>;expires=600000;+sip.instance="<urn:gsma:imei:35209900-176148-0>";+g.3gpp.smsip
Expires: 600000
Supported: path, sec-agree
Require: sec-agree
Proxy-Require: sec-agree
Authorization: Digest username="001010000000001@ims.mnc001.mcc001.3gppnetwork.org", realm="ims.mnc001.mcc001.3gppnetwork.org", uri="sip:ims.mnc001.mcc001.3gppnetwork.org", nonce="", response=""
Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=3929102;spi-s=3929103;port-c=42311;port-s=42312, ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=3929102;spi-s=3929103;port-c=42311;port-s=42312
Content-Length: 0

`;

test('parses an IMS REGISTER with Security-Client, Authorization, Require and Proxy-Require', () => {
  const m = req(parseMessageOrThrow(crlf(IMS_REGISTER)));
  assert.ok(validateRequest(m).ok);
  const via = parseViaOrThrow(m.headers.get('Via')!);
  assert.equal(via.host, '2001:db8::10');
  assert.equal(viaRport(via), 'flag');
  const contact = parseNameAddrOrThrow(m.headers.get('Contact')!);
  assert.equal(contact.uri, 'sip:001010000000001@[2001:db8::10]:5060');
  assert.equal(contact.params.get('expires'), '600000');
  assert.equal(contact.params.getUnquoted('+sip.instance'), '<urn:gsma:imei:35209900-176148-0>');
  assert.equal(contact.params.get('+g.3gpp.smsip'), null);
  assert.deepEqual(m.headers.getAll('Supported'), ['path', 'sec-agree']);
  assert.deepEqual(m.headers.getAll('Require'), ['sec-agree']);
  assert.deepEqual(m.headers.getAll('Proxy-Require'), ['sec-agree']);
  assert.equal(m.headers.getAll('Security-Client').length, 2);
  assert.match(m.headers.getAll('Security-Client')[1]!, /^ipsec-3gpp;alg=hmac-md5-96;/);
  // Opaque to this layer: one value, commas and empty quoted strings intact.
  assert.deepEqual(m.headers.getAll('Authorization'), [
    'Digest username="001010000000001@ims.mnc001.mcc001.3gppnetwork.org", realm="ims.mnc001.mcc001.3gppnetwork.org", uri="sip:ims.mnc001.mcc001.3gppnetwork.org", nonce="", response=""',
  ]);
});

test('parses an IMS 200 OK with Path, Service-Route and a P-Associated-URI list', () => {
  const m = res(
    parseMessageOrThrow(
      crlf(`SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.45.0.2:42312;branch=z9hG4bK99;rport=42312;received=10.45.0.2
From: <sip:001010000000001@ims.example>;tag=8a1f
To: <sip:001010000000001@ims.example>;tag=as5f
Call-ID: 3c26700857bc-2
CSeq: 2 REGISTER
Path: <sip:term@pcscf.ims.example:5060;lr>
Service-Route: <sip:orig@scscf.ims.example:6060;lr>
P-Associated-URI: <sip:001010000000001@ims.example>, <tel:+15551234567>
Contact: <sip:001010000000001@10.45.0.2:42312>;expires=600000
Content-Length: 0

`),
    ),
  );
  assert.deepEqual(m.headers.getAll('P-Associated-URI'), ['<sip:001010000000001@ims.example>', '<tel:+15551234567>']);
  assert.equal(parseNameAddrOrThrow(m.headers.get('Service-Route')!).uri, 'sip:orig@scscf.ims.example:6060;lr');
  assert.equal(viaRport(parseViaOrThrow(m.headers.get('Via')!)), 42312);
});

test('accepts LF-only line ends, folded lines, compact names and spacing before the colon', () => {
  const text =
    'OPTIONS sip:x@example.com SIP/2.0\n' +
    'v: SIP/2.0/UDP 192.0.2.1\n  ;branch=z9hG4bKa\n' +
    'f: <sip:a@example.com>;tag=1\nt : <sip:x@example.com>\ni:abc\n' +
    'CSeq: 1\n\tOPTIONS\nSubject: a\n   b  \n l: 0\n\n';
  const m = req(parseMessageOrThrow(bytes(text)));
  assert.equal(m.headers.get('Via'), 'SIP/2.0/UDP 192.0.2.1 ;branch=z9hG4bKa');
  assert.equal(m.headers.get('CSeq'), '1 OPTIONS');
  assert.equal(m.headers.get('Call-ID'), 'abc');
  assert.equal(m.headers.get('Subject'), 'a b l: 0', 'a line starting with whitespace continues the previous one');
  assert.ok(validateRequest(m).ok);
});

test('serialises with CRLF, canonical names and a computed Content-Length', () => {
  const msg = req(parseMessageOrThrow(bytes('MESSAGE sip:a@b SIP/2.0\ni: x\nc: text/plain\n\nhello')));
  const out = Buffer.from(serializeMessage(msg)).toString();
  assert.equal(out, 'MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
});

test('skips CRLFs before the start line (RFC 3261 §7.5)', () => {
  assert.equal(req(parseMessageOrThrow(crlf('\n\nOPTIONS sip:a@b SIP/2.0\nl: 0\n\n'))).method, 'OPTIONS');
});

test('a Content-Length longer than the datagram is SIP_TRUNCATED and carries the parsed head', () => {
  let caught: unknown;
  try {
    parseMessageOrThrow(crlf('MESSAGE sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nContent-Length: 10\n\nabc'));
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SipParseError && caught.code === 'SIP_TRUNCATED');
  assert.equal(caught.partial?.kind, 'request');
  assert.equal(caught.partial?.headers.get('Via'), 'SIP/2.0/UDP h;branch=z9hG4bK1');
});

test('negative, non-numeric and disagreeing Content-Length values are SIP_BAD_CONTENT_LENGTH', () => {
  assert.throws(() => parseMessageOrThrow(crlf('OPTIONS sip:a@b SIP/2.0\nl: -1\n\n')), code('SIP_BAD_CONTENT_LENGTH'));
  assert.throws(() => parseMessageOrThrow(crlf('OPTIONS sip:a@b SIP/2.0\nl: 1x\n\nx')), code('SIP_BAD_CONTENT_LENGTH'));
  assert.throws(() => parseMessageOrThrow(crlf('OPTIONS sip:a@b SIP/2.0\nl: 1\nContent-Length: 2\n\nxy')), code('SIP_BAD_CONTENT_LENGTH'));
});

test('limits: message size, header count and header line length raise SIP_TOO_LARGE', () => {
  const big = new Uint8Array(70_000).fill(0x61);
  assert.throws(() => parseMessageOrThrow(big), code('SIP_TOO_LARGE'));
  const many = `OPTIONS sip:a@b SIP/2.0\n${'X-H: 1\n'.repeat(300)}\n`;
  assert.throws(() => parseMessageOrThrow(crlf(many)), code('SIP_TOO_LARGE'));
  assert.throws(
    () => parseMessageOrThrow(crlf(`OPTIONS sip:a@b SIP/2.0\nX-H: ${'a'.repeat(100)}\n\n`), { maxHeaderLineLength: 50 }),
    code('SIP_TOO_LARGE'),
  );
  assert.doesNotThrow(() => parseMessageOrThrow(crlf(many), { maxHeaders: 300 }));
});

test('start-line errors: garbage, a bad status code, a missing version', () => {
  assert.throws(() => parseMessageOrThrow(bytes('hello\r\n\r\n')), code('SIP_BAD_START_LINE'));
  assert.throws(() => parseMessageOrThrow(bytes('SIP/2.0 20 OK\r\n\r\n')), code('SIP_BAD_START_LINE'));
  assert.throws(() => parseMessageOrThrow(bytes('SIP/2.0 700 Huh\r\n\r\n')), code('SIP_BAD_START_LINE'));
  assert.throws(() => parseMessageOrThrow(bytes('OPTIONS sip:a@b\r\n\r\n')), code('SIP_BAD_START_LINE'));
  assert.throws(() => parseMessageOrThrow(bytes('   \r\n\r\n')), code('SIP_BAD_START_LINE'));
});

test('header errors: no colon, a space in the name, a continuation before any header, invalid UTF-8', () => {
  assert.throws(() => parseMessageOrThrow(crlf('OPTIONS sip:a@b SIP/2.0\nNoColon\n\n')), code('SIP_BAD_HEADER'));
  assert.throws(() => parseMessageOrThrow(crlf('OPTIONS sip:a@b SIP/2.0\nBad Name: x\n\n')), code('SIP_BAD_HEADER'));
  assert.throws(() => parseMessageOrThrow(crlf('OPTIONS sip:a@b SIP/2.0\n folded: x\n\n')), code('SIP_BAD_HEADER'));
  assert.throws(
    () => parseMessageOrThrow(new Uint8Array([...bytes('OPTIONS sip:a@b SIP/2.0\r\nX: '), 0xff, 0xfe, 13, 10, 13, 10])),
    code('SIP_BAD_HEADER'),
  );
});

test('a response with an empty reason phrase parses (RFC 4475 §3.1.1.13)', () => {
  assert.equal(res(parseMessageOrThrow(crlf('SIP/2.0 100\nl: 0\n\n'))).reason, '');
  assert.equal(res(parseMessageOrThrow(crlf('SIP/2.0 100 \nl: 0\n\n'))).reason, '');
});

test('a datagram without the empty line after the headers is read as headers only', () => {
  const m = req(parseMessageOrThrow(bytes('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n')));
  assert.equal(m.headers.get('Call-ID'), 'x');
  assert.throws(() => parseMessageOrThrow(bytes('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n')), code('SIP_TRUNCATED'));
});

test('issue 10 §5: header folding costs linear work in the head, whatever the limits (counted, not timed)', () => {
  const cost = (n: number) => {
    const head = `OPTIONS sip:a@b SIP/2.0\r\nSubject: x\r\n${' y\r\n'.repeat(n)}Call-ID: c\r\n`;
    const stats: SplitStats = { scanned: 0 };
    const lines = splitHeadLines(head, { maxMessageSize: Infinity, maxHeaders: Infinity, maxHeaderLineLength: Infinity }, stats);
    assert.equal(lines.length, 3);
    assert.equal(lines[1], `Subject: x${' y'.repeat(n)}`);
    return { scanned: stats.scanned, size: head.length };
  };
  for (const n of [1_000, 20_000]) {
    const { scanned, size } = cost(n);
    assert.ok(scanned >= size, `every character is looked at (${scanned} >= ${size})`);
    assert.ok(scanned <= 3 * size, `${n} continuation lines: ${scanned} characters examined for a ${size}-character head`);
  }
});

test('unfolding matches a naive model: folded pieces trimmed and joined with one SP', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.stringMatching(/^[a-z]{1,5}$/), fc.array(fc.stringMatching(/^[ \t]{1,3}[a-z ]{0,6}$/), { maxLength: 4 }))),
      (hs) => {
        const head = ['M sip:a SIP/2.0', ...hs.flatMap(([name, conts]) => [`${name}: v `, ...conts])].join('\r\n');
        const model = [
          'M sip:a SIP/2.0',
          ...hs.map(([name, conts]) =>
            conts.length === 0
              ? `${name}: v `
              : [`${name}: v`, ...conts.map((c) => c.replace(/^[ \t]+|[ \t]+$/g, '')).filter((c) => c !== '')].join(' '),
          ),
        ];
        assert.deepEqual(splitHeadLines(head), model);
      },
    ),
    { numRuns: 300 },
  );
});

test('issue 12 §4: parseMessage returns a result: the value, or a typed error with the partial message', () => {
  const good = parseMessage(crlf('OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nContent-Length: 0\n\n'));
  assert.ok(good.ok);
  assert.equal(good.value.kind, 'request');
  const bad = parseMessage(crlf('OPTIONS sip:a@b SIP/3.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\n'));
  assert.ok(!bad.ok);
  assert.ok(bad.error instanceof SipParseError);
  assert.equal(bad.error.code, 'SIP_BAD_VERSION');
  assert.equal(bad.error.partial?.kind, 'request');
  assert.equal(parseMessage(new Uint8Array([0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a])).ok, false);
});

test('the one-pass split of a plain head agrees with the unfolding one (results and errors) on any head', () => {
  const piece = fc.constantFrom('a', 'Via: x', ' ', '\t', '\r', '\n', '\r\n', ':', 'é', 'b c');
  const limits = { maxMessageSize: 1 << 20, maxHeaders: 256, maxHeaderLineLength: 12 };
  const run = (f: () => string[]) => {
    try {
      return f();
    } catch (e) {
      return (e as Error).message;
    }
  };
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 30 }), (parts) => {
      const head = parts.join('');
      // With `stats` the unfolding path always runs: the reference.
      assert.deepEqual(
        run(() => splitHeadLines(head, limits)),
        run(() => splitHeadLines(head, limits, { scanned: 0 })),
      );
    }),
    { numRuns: 2000 },
  );
});
