// The header model: canonical names, case-insensitive access, comma splitting (RFC 3261 §7.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SipHeaders, canonicalHeaderName } from './message.ts';
import { SipError } from './errors.ts';

test('compact forms expand to canonical names (RFC 3261 §7.3.3)', () => {
  const expected: Record<string, string> = {
    i: 'Call-ID',
    m: 'Contact',
    f: 'From',
    t: 'To',
    v: 'Via',
    l: 'Content-Length',
    c: 'Content-Type',
    k: 'Supported',
    e: 'Content-Encoding',
    s: 'Subject',
    o: 'Event',
    u: 'Allow-Events',
    r: 'Refer-To',
    b: 'Referred-By',
    x: 'Session-Expires',
  };
  for (const [short, long] of Object.entries(expected)) {
    assert.equal(canonicalHeaderName(short), long);
    assert.equal(canonicalHeaderName(short.toUpperCase()), long);
  }
});

test('known header names are restored to their canonical spelling; unknown ones are kept as written', () => {
  assert.equal(canonicalHeaderName('call-id'), 'Call-ID');
  assert.equal(canonicalHeaderName('CSEQ'), 'CSeq');
  assert.equal(canonicalHeaderName('www-authenticate'), 'WWW-Authenticate');
  assert.equal(canonicalHeaderName('security-client'), 'Security-Client');
  assert.equal(canonicalHeaderName('X-Custom'), 'X-Custom');
});

test('lookups ignore case and compact forms', () => {
  const h = new SipHeaders([
    ['v', 'SIP/2.0/UDP a;branch=z9hG4bK1'],
    ['VIA', 'SIP/2.0/UDP b;branch=z9hG4bK2'],
  ]);
  assert.deepEqual(h.getAll('via'), ['SIP/2.0/UDP a;branch=z9hG4bK1', 'SIP/2.0/UDP b;branch=z9hG4bK2']);
  assert.equal(h.get('Via'), 'SIP/2.0/UDP a;branch=z9hG4bK1');
  assert.equal(h.entries()[1]!.name, 'Via');
});

test('comma-joined values split at top level only, never inside quotes or angle brackets (§7.3.1)', () => {
  const h = new SipHeaders([['Contact', '"Doe, John" <sip:j@a.example;x=1,2>;q=0.5, <sip:k@b.example>, sip:l@c.example']]);
  assert.deepEqual(h.getAll('Contact'), ['"Doe, John" <sip:j@a.example;x=1,2>;q=0.5', '<sip:k@b.example>', 'sip:l@c.example']);
  assert.equal(h.get('Contact'), '"Doe, John" <sip:j@a.example;x=1,2>;q=0.5');
});

test('a quoted string with an escaped quote and a comma stays one element', () => {
  const h = new SipHeaders([['Contact', '"a \\", b" <sip:a@x>, <sip:b@y>']]);
  assert.deepEqual(h.getAll('Contact'), ['"a \\", b" <sip:a@x>', '<sip:b@y>']);
});

test('authentication headers and dates are never split (§7.3.1)', () => {
  const auth = 'Digest username="u@r", realm="r", nonce="", uri="sip:r", response=""';
  const h = new SipHeaders([
    ['Authorization', auth],
    ['WWW-Authenticate', 'Digest realm="r", nonce="abc", algorithm=AKAv1-MD5'],
    ['WWW-Authenticate', 'Digest realm="r2", nonce="def"'],
    ['Date', 'Sat, 13 Nov 2010 23:29:00 GMT'],
    ['Proxy-Authenticate', 'Digest realm="p", qop="auth,auth-int"'],
  ]);
  assert.deepEqual(h.getAll('Authorization'), [auth]);
  assert.deepEqual(h.getAll('WWW-Authenticate'), ['Digest realm="r", nonce="abc", algorithm=AKAv1-MD5', 'Digest realm="r2", nonce="def"']);
  assert.equal(h.get('Date'), 'Sat, 13 Nov 2010 23:29:00 GMT');
  assert.equal(h.getAll('Proxy-Authenticate').length, 1);
});

test('set replaces every line in place; append adds at the end; remove deletes all', () => {
  const h = new SipHeaders([
    ['X-A', '1'],
    ['Supported', 'path'],
    ['X-B', '2'],
    ['k', 'gruu'],
  ]);
  h.set('supported', 'sec-agree');
  assert.deepEqual(
    h.entries().map((f) => `${f.name}:${f.value}`),
    ['X-A:1', 'Supported:sec-agree', 'X-B:2'],
  );
  h.append('Supported', 'path');
  assert.deepEqual(h.getAll('Supported'), ['sec-agree', 'path']);
  assert.equal(h.remove('SUPPORTED'), 2);
  assert.equal(h.has('Supported'), false);
});

test('prepend puts a Via/Record-Route/Path value above the existing ones', () => {
  const h = new SipHeaders([
    ['From', '<sip:a@x>'],
    ['Via', 'SIP/2.0/UDP old;branch=z9hG4bK1'],
  ]);
  h.prepend('Via', 'SIP/2.0/UDP new;branch=z9hG4bK2');
  assert.deepEqual(h.getAll('Via'), ['SIP/2.0/UDP new;branch=z9hG4bK2', 'SIP/2.0/UDP old;branch=z9hG4bK1']);
  h.prepend('Path', '<sip:pcscf.example;lr>');
  assert.equal(h.entries()[0]!.name, 'Path');
});

test('removeFirst takes the top value off a comma-joined line', () => {
  const h = new SipHeaders([['Via', 'SIP/2.0/UDP p;branch=z9hG4bK1, SIP/2.0/UDP ue;branch=z9hG4bK2']]);
  assert.equal(h.removeFirst('Via'), 'SIP/2.0/UDP p;branch=z9hG4bK1');
  assert.deepEqual(h.getAll('Via'), ['SIP/2.0/UDP ue;branch=z9hG4bK2']);
  assert.equal(h.removeFirst('Via'), 'SIP/2.0/UDP ue;branch=z9hG4bK2');
  assert.equal(h.has('Via'), false);
});

test('values with CR or LF and non-token names are refused (no header injection)', () => {
  const h = new SipHeaders();
  assert.throws(
    () => h.append('Subject', 'x\r\nVia: evil'),
    (e: unknown) => e instanceof SipError && e.code === 'SIP_INVALID_ARGUMENT',
  );
  assert.throws(() => h.set('Bad Name', 'x'), SipError);
});
